"""The pure step, flat and with three parallel regions, side by side.

    python -m benchmarks.step [--runs 3] [--cases]

Both are measured as the bus steps (`step_in_place`), on a fresh entity for
each event so the data stays small:

- flat: the parcel chart (engine/sample) and its `parcel.note`, an internal
  transition with one action, as since the first benchmark;
- three regions, one move: the shipment chart (engine/sample/shipment) and
  its `ONE_MOVE_CASE`, one region's transition with one action (and its
  state's timer cancelled): the same kind of work per event as the flat
  figure, so the figure to set beside it (the target applies to it);
- three regions, mix: the same chart's `STEP_CASES` in turn, whose events
  move no region, one, two or all three, with entry and exit actions that
  emit commands, history, a done event and timers: more work per event than
  the flat step, shown as a second line.

The two alternate (flat, regions, flat, ...) so that a machine that slows
down during the run weighs on both alike; each figure is the median of its
runs. Each is given per second of elapsed time (the table's figure, as every
earlier run) and per second of the process's CPU time: the step neither
waits nor does I/O, so on an idle machine the two agree, and on a machine
other work shares the CPU figure is the one that load moves least.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

N_STEPS = 200_000
THREE_REGION_TARGET = 150_000


class Rate(NamedTuple):
    wall: float  # events per second of elapsed time
    cpu: float  # events per second of this process's CPU time


class Clock:
    """Started on creation; `rate` gives both rates since then."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def rate(self, count: int) -> Rate:
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        return Rate(count / wall, count / cpu)


def parcel_notes(count: int = N_STEPS) -> tuple[Any, list[Any]]:
    """The parcel chart and ``count`` `parcel.note` events (the flat measure's)."""
    from engine import ChartSet
    from engine.sample import chart_package

    charts = ChartSet.load([chart_package()])
    events = [
        charts.event_types.make(
            "parcel.note",
            f"parcel:{n % 1000}",
            {"text": "n"},
            event_id=f"e{n}",
            source="b",
            received_at=1.0,
        )
        for n in range(count)
    ]
    return charts.by_kind["parcel"], events


def flat_step() -> Rate:
    from engine.step import EntityState, step_in_place

    chart, events = parcel_notes()
    # As the bus steps (in place: the step changes the entity's data, never its
    # state or history), with the data made afresh for each event so that it
    # stays small. The bus makes no entity per event either: one is reused.
    entity = EntityState("parcel:1", "parcel", "packed", {}, 1)
    clock = Clock()
    for event in events:
        entity.data = {"weight_kg": 1.0}
        step_in_place(chart, entity, event)
    return clock.rate(N_STEPS)


def _shipment_steps(
    cases: Sequence[Any] | None = None, count: int = N_STEPS
) -> tuple[Any, list[tuple[Any, Any]]]:
    """The shipment chart and ``count`` (case, event) pairs, the cases (all of
    `STEP_CASES` by default) in turn, after checking that every case reaches
    its expected configuration: a benchmark of steps that are silently
    ignored would measure nothing."""
    from engine import ChartSet
    from engine.sample.shipment import STEP_CASES, chart_package
    from engine.step import EntityState, Outcome, step

    cases = cases or STEP_CASES
    charts = ChartSet.load([chart_package()])
    chart = charts.by_kind["shipment"]
    steps = []
    for n in range(count):
        case = cases[n % len(cases)]
        event = charts.event_types.make(
            case.event_type,
            f"shipment:{n % 1000}",
            case.payload,
            event_id=f"e{n}",
            source="b",
            received_at=1.0,
        )
        steps.append((case, event))
    for case, event in steps[: len(cases)]:
        history = {key: list(value) for key, value in (case.history or {}).items()} or None
        entity = EntityState("shipment:1", "shipment", case.state, dict(case.data), 1, 1, history)
        result = step(chart, entity, event)
        if result.outcome is not Outcome.TRANSITIONED or result.to_state != case.expected:
            raise AssertionError(
                f"shipment case {case.name!r}: {result.outcome} to {result.to_state!r}"
                f" ({result.reason}), expected transitioned to {case.expected!r}"
            )
    return chart, steps


def _time_shipment(chart: Any, steps: list[tuple[Any, Any]]) -> Rate:
    """As `flat_step`: one entity per case, reused, its data made afresh for
    each event (the step records history into a new dict, never into the
    entity's, and leaves its state alone)."""
    from engine.step import EntityState, step_in_place

    entities: dict[str, EntityState] = {}
    timed = []
    for case, event in steps:
        entity = entities.get(case.name)
        if entity is None:
            history = {key: list(value) for key, value in (case.history or {}).items()} or None
            entity = EntityState("shipment:1", "shipment", case.state, {}, 1, 1, history)
            entities[case.name] = entity
        timed.append((entity, case.data, event))
    clock = Clock()
    for entity, data, event in timed:
        entity.data = dict(data)
        step_in_place(chart, entity, event)
    return clock.rate(len(steps))


def three_region_step() -> Rate:
    return _time_shipment(*_shipment_steps())


def three_region_one_move() -> Rate:
    from engine.sample.shipment import ONE_MOVE_CASE

    return _time_shipment(*_shipment_steps((ONE_MOVE_CASE,)))


def per_case(count: int = 20_000) -> dict[str, Rate]:
    """Each shipment case on its own (``count`` steps), to see which kind of
    step costs what; one run each, so a rough guide, not a figure to quote."""
    from engine.sample.shipment import ONE_MOVE_CASE, STEP_CASES

    cases = (ONE_MOVE_CASE, *STEP_CASES)
    return {case.name: _time_shipment(*_shipment_steps((case,), count)) for case in cases}


def alternated(runs: int = 3) -> dict[str, Any]:
    """Medians of ``runs`` alternated runs of each, by elapsed time (the
    figure the table shows) and by this process's CPU time (``*_cpu_per_s``:
    on a machine other work shares, the figure that load moves least)."""
    measures: dict[str, Callable[[], Rate]] = {
        "flat_step": flat_step,
        "three_region_one_move": three_region_one_move,
        "three_region_step": three_region_step,
    }
    rates: dict[str, list[Rate]] = {name: [] for name in measures}
    for _ in range(runs):
        for name, measure in measures.items():
            rates[name].append(measure())
    result: dict[str, Any] = {"runs": {}}
    for name, values in rates.items():
        result[f"{name}_per_s"] = statistics.median(rate.wall for rate in values)
        result[f"{name}_cpu_per_s"] = statistics.median(rate.cpu for rate in values)
        result["runs"][f"{name}_per_s"] = [round(rate.wall) for rate in values]
        result["runs"][f"{name}_cpu_per_s"] = [round(rate.cpu) for rate in values]
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--cases", action="store_true", help="also each shipment case alone (20,000 steps each)"
    )
    args = parser.parse_args()
    rates = alternated(args.runs)
    flat = rates["flat_step_per_s"]
    runs = rates["runs"]
    labels = (
        ("flat parcel chart", "flat_step"),
        ("3 regions, 1 move", "three_region_one_move"),
        ("3 regions, mix", "three_region_step"),
    )
    for label, name in labels:
        print(
            f"pure step, {label:17} {rates[f'{name}_per_s']:>10,.0f} events/s"
            f" (runs {runs[f'{name}_per_s']}),"
            f" {rates[f'{name}_cpu_per_s']:>10,.0f} per CPU second"
        )
    for label, name in labels[1:]:
        cpu_ratio = rates[f"{name}_cpu_per_s"] / rates["flat_step_cpu_per_s"]
        print(f"{label} / flat: {rates[f'{name}_per_s'] / flat:.2f} (CPU: {cpu_ratio:.2f})")
    print(f"target: 3 regions, 1 move >= {THREE_REGION_TARGET:,} events/s")
    if args.cases:
        for name, rate in per_case().items():
            print(
                f"  case {name:8} {rate.wall:>10,.0f} events/s ({rate.wall / flat:.2f} of flat),"
                f" {rate.cpu:>10,.0f} per CPU second"
            )


if __name__ == "__main__":
    main()
