"""The worker's background tasks: rounds stopped quietly, bounded waits.

A worker's loops (timers, outbox, purge) are stopped by an event rather than
cancelled, so a command under way is finished and recorded instead of run
again by another worker; what does not end in time is cancelled, and what
ignores even that is logged and left (the process then ends, see
`engine.cluster.worker.EngineWedged`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from engine.logs import error_fields, get_logger

log = get_logger("channelsync.cluster.worker")


async def every(
    quiet: asyncio.Event, name: str, work: Callable[[], Awaitable[Any]], interval: float
) -> None:
    """Run ``work`` every ``interval`` seconds until ``quiet`` is set; a failed
    round is logged and the next one tries again."""
    while not quiet.is_set():
        try:
            await work()
        except Exception as err:
            log.error(f"{name} round failed", **error_fields(err))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(quiet.wait(), interval)


async def wait_any(stop: asyncio.Event, tasks: list[asyncio.Task[None]], timeout: float) -> None:
    """Sleep up to ``timeout``, waking early for ``stop`` or a task's end."""
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([stopper, *tasks], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()


async def finish(tasks: list[asyncio.Task[None]], timeout: float) -> None:
    """Let ``tasks`` end (a draining feed's last fetch committed), then cancel
    stragglers, giving up on any that ignores its cancellation for a second."""
    pending = [task for task in tasks if not task.done()]
    if pending:
        _done, late = await asyncio.wait(pending, timeout=timeout)
        for task in late:
            task.cancel()
        if late:
            _done, stuck = await asyncio.wait(late, timeout=1.0)
            for task in stuck:
                log.error("task did not stop when cancelled", task=task.get_name())
    for task in tasks:
        error = None if not task.done() or task.cancelled() else task.exception()
        if error is not None:
            log.warning("task ended with an error", task=task.get_name(), **error_fields(error))


__all__ = ["every", "finish", "wait_any"]
