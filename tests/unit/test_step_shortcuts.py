"""The hierarchical step's caches change nothing a user sees: a step taken
from a cached plan (`HierarchicalPlans.shortcuts`, the quick and settled
plans) returns exactly what the same step returns on a chart compiled afresh,
whose caches are empty; and `step_in_place` changes only the entity's data,
never its state or history (the pure-step benchmark reuses one entity)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine import ChartSet
from engine.sample.shipment import ONE_MOVE_CASE, STEP_CASES, chart_package
from engine.step import EntityState, StepResult, new_entity, step, step_in_place
from tests.unit.test_shipment_sample import EVENTS

WARM = ChartSet.load([chart_package()])


def _event(charts: ChartSet, event_type: str, payload: dict[str, Any], number: int) -> Any:
    return charts.event_types.make(
        event_type,
        "shipment:1",
        payload,
        event_id=f"e{number}",
        source="test",
        received_at=1000.0 + number,
    )


def _seen(result: StepResult) -> tuple[Any, ...]:
    """Everything a step returns that a caller may read."""
    entity = result.entity
    return (
        result.outcome,
        result.from_state,
        result.to_state,
        result.reason,
        (entity.state, entity.data, entity.version, entity.history),
        result.commands,
        result.timers,
        result.fired,
        result.entered,
    )


def _run(charts: ChartSet, sequence: list[tuple[str, dict[str, Any]]]) -> list[tuple[Any, ...]]:
    chart = charts.by_kind["shipment"]
    current = new_entity(chart, "shipment:1")
    seen = []
    for number, (event_type, payload) in enumerate(sequence):
        result = step(chart, current, _event(charts, event_type, payload, number))
        seen.append(_seen(result))
        current = result.entity
    return seen


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(EVENTS), max_size=20), st.integers(min_value=1, max_value=3))
def test_a_step_from_the_caches_returns_what_a_cold_chart_returns(sequence, repeats):
    for _ in range(repeats):  # the warm chart has seen this sequence (and others) before
        warm = _run(WARM, sequence)
    cold = _run(ChartSet.load([chart_package()]), sequence)
    assert warm == cold


def test_step_in_place_leaves_state_and_history_and_repeats_alike():
    chart = WARM.by_kind["shipment"]
    for number, case in enumerate((ONE_MOVE_CASE, *STEP_CASES)):
        history = {key: list(value) for key, value in (case.history or {}).items()} or None
        entity = EntityState("shipment:1", "shipment", case.state, {}, 1, 1, history)
        event = _event(WARM, case.event_type, case.payload, number)
        results = []
        for _ in range(3):  # cold, then from the caches
            entity.data = dict(case.data)
            result = step_in_place(chart, entity, event)
            assert entity.state == case.state and entity.history == history, case.name
            results.append((_seen(result), result.data_json, result.command_json))
        assert results[0][0][2] == case.expected
        assert results[0] == results[1] == results[2], case.name


def test_a_return_through_history_is_not_taken_from_another_historys_cache():
    # The same event in the same configuration, but what history recorded
    # differs: the step that returned to `open` must not answer for `packed`.
    charts = ChartSet.load([chart_package()])
    chart = charts.by_kind["shipment"]
    for number, held_in in enumerate(["open", "packed", "open", "packed"]):
        start = f"lifecycle.active.{held_in},sync.synced,push.waiting"
        entity = EntityState("shipment:1", "shipment", start, {}, 1, 1)
        held = step(chart, entity, _event(charts, "shipment.hold", {}, 2 * number))
        released = step(chart, held.entity, _event(charts, "shipment.release", {}, 2 * number + 1))
        assert released.to_state == start
