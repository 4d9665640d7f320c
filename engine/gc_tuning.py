"""Garbage-collector settings for a process whose main job is the engine.

Each event leaves a dozen short-lived container objects (a future, its queue
item, the step's context and result, the row written). With CPython's default
thresholds (700, 10, 10) the collector runs every few dozen events and keeps
promoting live batches into the older generations, whose sweeps then walk the
whole heap, a large share of the engine's time under load.
Reference counting still frees all of this at once; only cycle detection is
made less frequent. Nothing here changes what the engine guarantees.

The settings are process-wide, so the engine never applies them by itself: a
process that is mostly the engine (``channelsync serve``, ``ingest``,
``replay``, ``check``, the benchmarks) asks for them, and a host service
decides for its own process. ``CHANNELSYNC_GC_TUNING=0`` in the environment
keeps the interpreter's defaults everywhere (the test suite sets it: the CLI
runs inside the test process there).
"""

from __future__ import annotations

import gc
import os

# Young-generation threshold: one collection per this many allocations. Past
# this the gain levels off, and it bounds the garbage waiting for cycle
# detection to a few MB.
GEN0_THRESHOLD = 50_000
OLDER_THRESHOLDS = (20, 20)


def tune_gc(*, freeze: bool = True) -> tuple[int, int, int]:
    """Raise the collection thresholds and (``freeze``) move everything alive now
    (modules, charts, pydantic models) out of the collector's sight. Returns
    the thresholds that were in force, for `restore_gc`. Does nothing when
    already tuned or when ``CHANNELSYNC_GC_TUNING=0``."""
    previous = gc.get_threshold()
    if os.environ.get("CHANNELSYNC_GC_TUNING", "1") == "0" or previous[0] == GEN0_THRESHOLD:
        return previous
    if freeze:
        gc.collect()
        gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, *OLDER_THRESHOLDS)
    from engine.logs import get_logger  # structlog: not imported until it is needed

    get_logger("channelsync.gc").debug(
        "gc tuned", thresholds=gc.get_threshold(), frozen=gc.get_freeze_count()
    )
    return previous


def restore_gc(previous: tuple[int, int, int]) -> None:
    """Undo `tune_gc` (thresholds and freeze)."""
    gc.unfreeze()
    gc.set_threshold(*previous)


__all__ = ["GEN0_THRESHOLD", "restore_gc", "tune_gc"]
