"""The pure step, flat and with three parallel regions, side by side.

    python -m benchmarks.step [--runs 3]

Both are measured as the bus steps (`step_in_place`), on a fresh entity for
each event so the data stays small:

- flat: the parcel chart (engine/sample) and its `parcel.note`, an internal
  transition with one action, as since the first benchmark;
- three regions: the shipment chart (engine/sample/shipment), whose events
  move no region, one, two or all three, with entry and exit actions, history,
  a done event and timers (its `STEP_CASES`, in turn).

The two alternate (flat, regions, flat, ...) so that a machine that slows
down during the run weighs on both alike; each figure is the median of its runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

N_STEPS = 200_000
THREE_REGION_TARGET = 150_000


def flat_step() -> float:
    from engine import ChartSet
    from engine.sample import chart_package
    from engine.step import EntityState, step_in_place

    charts = ChartSet.load([chart_package()])
    chart = charts.by_kind["parcel"]
    events = [
        charts.event_types.make(
            "parcel.note",
            f"parcel:{n % 1000}",
            {"text": "n"},
            event_id=f"e{n}",
            source="b",
            received_at=1.0,
        )
        for n in range(N_STEPS)
    ]
    started = time.perf_counter()
    for event in events:
        # As the bus steps (in place), on a fresh entity each time: data stays small.
        entity = EntityState("parcel:1", "parcel", "packed", {"weight_kg": 1.0}, 1)
        step_in_place(chart, entity, event)
    return N_STEPS / (time.perf_counter() - started)


def _shipment_steps() -> tuple[Any, list[tuple[Any, Any]]]:
    """The shipment chart and N_STEPS (case, event) pairs, the cases in turn,
    after checking that every case reaches its expected configuration: a
    benchmark of steps that are silently ignored would measure nothing."""
    from engine import ChartSet
    from engine.sample.shipment import STEP_CASES, chart_package
    from engine.step import EntityState, Outcome, step

    charts = ChartSet.load([chart_package()])
    chart = charts.by_kind["shipment"]
    steps = []
    for n in range(N_STEPS):
        case = STEP_CASES[n % len(STEP_CASES)]
        event = charts.event_types.make(
            case.event_type,
            f"shipment:{n % 1000}",
            case.payload,
            event_id=f"e{n}",
            source="b",
            received_at=1.0,
        )
        steps.append((case, event))
    for case, event in steps[: len(STEP_CASES)]:
        history = {key: list(value) for key, value in (case.history or {}).items()} or None
        entity = EntityState("shipment:1", "shipment", case.state, dict(case.data), 1, 1, history)
        result = step(chart, entity, event)
        if result.outcome is not Outcome.TRANSITIONED or result.to_state != case.expected:
            raise AssertionError(
                f"shipment case {case.name!r}: {result.outcome} to {result.to_state!r}"
                f" ({result.reason}), expected transitioned to {case.expected!r}"
            )
    return chart, steps


def three_region_step() -> float:
    from engine.step import EntityState, step_in_place

    chart, steps = _shipment_steps()
    started = time.perf_counter()
    for case, event in steps:
        history = case.history
        entity = EntityState(
            "shipment:1",
            "shipment",
            case.state,
            dict(case.data),
            1,
            1,
            # The step may record history into it: a fresh copy each time.
            {key: list(value) for key, value in history.items()} if history else None,
        )
        step_in_place(chart, entity, event)
    return N_STEPS / (time.perf_counter() - started)


def alternated(runs: int = 3) -> dict[str, Any]:
    measures: dict[str, Callable[[], float]] = {
        "flat_step_per_s": flat_step,
        "three_region_step_per_s": three_region_step,
    }
    rates: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(runs):
        for name, measure in measures.items():
            rates[name].append(measure())
    result: dict[str, Any] = {name: statistics.median(values) for name, values in rates.items()}
    result["runs"] = {name: [round(value) for value in values] for name, values in rates.items()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rates = alternated(args.runs)
    flat, regions = rates["flat_step_per_s"], rates["three_region_step_per_s"]
    runs = rates["runs"]
    print(f"pure step, flat parcel chart {flat:>10,.0f} events/s  runs {runs['flat_step_per_s']}")
    print(
        f"pure step, three regions     {regions:>10,.0f} events/s  "
        f"runs {runs['three_region_step_per_s']}  "
        f"({regions / flat:.2f} of flat; target >= {THREE_REGION_TARGET:,})"
    )


if __name__ == "__main__":
    main()
