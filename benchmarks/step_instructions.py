"""Instructions per pure step, counted by callgrind: a figure load cannot move.

    python -m benchmarks.step_instructions [--count 5000] [--loop fresh|reused] [measure ...]

Timings on a shared machine move by a third between runs; the number of
instructions a step executes does not. Each measure (``flat``, ``one``,
``mix``, as in benchmarks/step.py: the parcel chart's note, the shipment
chart's `ONE_MOVE_CASE`, its `STEP_CASES` in turn) runs ``count`` steps
inside ``builtins.any`` under ``valgrind --tool=callgrind
--toggle-collect=builtin_any``, so only those steps are counted (charts,
events and a warm-up of 100 steps come before); the same run with an empty
body is subtracted. Two loops: ``fresh`` makes an `EntityState` per event
(benchmarks/step.py's loop before step150), ``reused`` resets one entity's
data per event (its loop since). Needs valgrind; takes about a minute per
measure on an idle machine.
"""

from __future__ import annotations

import argparse
import gc
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from typing import Any

MEASURES = ("flat", "one", "mix")


def _steps(measure: str, count: int, loop: str) -> tuple[Callable[[Any], None], list[Any]]:
    """The body run once per item, and the items."""
    from benchmarks.step import _shipment_steps, parcel_notes
    from engine.sample.shipment import ONE_MOVE_CASE, STEP_CASES
    from engine.step import EntityState, step_in_place

    if measure == "empty":
        return (lambda item: None), list(range(count))
    if measure == "flat":
        chart, events = parcel_notes(count)
        items = [("packed", {"weight_kg": 1.0}, None, event) for event in events]
    else:
        cases = (ONE_MOVE_CASE,) if measure == "one" else STEP_CASES
        chart, steps = _shipment_steps(cases, count)
        items = [(case.state, case.data, case.history, event) for case, event in steps]
    kind = chart.entity_kind
    if loop == "fresh":

        def fresh(item: Any) -> None:
            state, data, history, event = item
            copied = {key: list(value) for key, value in history.items()} if history else None
            entity = EntityState(f"{kind}:1", kind, state, dict(data), 1, 1, copied)
            step_in_place(chart, entity, event)

        return fresh, items
    entities: dict[tuple[str, str], EntityState] = {}
    reused_items = []
    for state, data, history, event in items:
        entity = entities.get((state, event.type))
        if entity is None:
            copied = {key: list(value) for key, value in history.items()} if history else None
            entity = entities[(state, event.type)] = EntityState(
                f"{kind}:1", kind, state, {}, 1, 1, copied
            )
        reused_items.append((entity, data, event))

    def reused(item: Any) -> None:
        entity, data, event = item
        entity.data = dict(data)
        step_in_place(chart, entity, event)

    return reused, reused_items


def inner(measure: str, count: int, loop: str) -> None:
    """What runs under valgrind: the steps, only they inside ``any``."""
    body, items = _steps(measure, count, loop)
    for item in items[:100]:
        body(item)  # warm the caches, as a long benchmark run has them
    gc.collect()
    gc.freeze()
    any(map(body, items))


def collected(measure: str, count: int, loop: str) -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--collect-atstart=no",
        "--toggle-collect=builtin_any",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "benchmarks.step_instructions",
        "--inner",
        measure,
        "--count",
        str(count),
        "--loop",
        loop,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stderr
    found = re.search(r"Collected : (\d+)", output)
    if found is None:
        raise RuntimeError(f"no callgrind total in: {output[-500:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("measures", nargs="*", default=list(MEASURES))
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--loop", choices=("fresh", "reused"), default="reused")
    parser.add_argument("--inner", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(args.inner, args.count, args.loop)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed")
    empty = collected("empty", args.count, args.loop)
    per_event = {}
    for measure in args.measures:
        per_event[measure] = (collected(measure, args.count, args.loop) - empty) / args.count
        print(f"{measure:5} {per_event[measure]:>10,.0f} instructions per step ({args.loop} loop)")
    if "flat" in per_event:
        for measure, value in per_event.items():
            print(f"{measure} / flat: {value / per_event['flat']:.2f}")


if __name__ == "__main__":
    main()
