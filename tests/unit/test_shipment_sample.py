"""ENG-8 on the three-region sample chart (engine/sample/shipment), the chart
the pure-step benchmark measures: each of its measured steps reaches the
configuration it claims, and the features it shows (regions moved by one
event, entry after transition actions, history, done events, `in_state`,
timers on a compound state) do what docs/chart-files.md says."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import ChartSet
from engine.charts.configuration import atomic_states
from engine.sample.shipment import STEP_CASES, StepCase, chart_package
from engine.step import EntityState, Outcome, StepResult, new_entity, step

CHARTS = ChartSet.load([chart_package()])
CHART = CHARTS.by_kind["shipment"]
TRACKING = "1Z999AA10123456784"
PACKED = "lifecycle.active.packed"


def event(event_type: str, payload: dict | None = None, number: int = 0):
    return CHARTS.event_types.make(
        event_type,
        "shipment:1",
        payload or {},
        event_id=f"e{number}",
        source="test",
        received_at=1000.0,
    )


def entity(state: str, data: dict | None = None, history=None) -> EntityState:
    return EntityState("shipment:1", "shipment", state, dict(data or {}), 1, 1, history)


def run(case: StepCase) -> StepResult:
    history = {key: list(value) for key, value in (case.history or {}).items()} or None
    return step(CHART, entity(case.state, case.data, history), event(case.event_type, case.payload))


@pytest.mark.parametrize("case", STEP_CASES, ids=[case.name for case in STEP_CASES])
def test_each_benchmarked_step_reaches_the_configuration_it_claims(case):
    result = run(case)
    assert result.outcome is Outcome.TRANSITIONED, result.reason
    assert result.to_state == case.expected


def test_a_new_shipment_enters_every_region_and_arms_the_timer_of_its_compound_state():
    result = step(CHART, new_entity(CHART, "shipment:1"), event("shipment.note", {"text": "hello"}))
    assert result.to_state == "lifecycle.active.open,sync.idle,push.waiting"
    assert result.entity.data["notes"] == ["hello"]
    assert {timer.name for timer in result.timers if timer.due_at is not None} == {"expiry"}
    expiry = next(timer for timer in result.timers if timer.name == "expiry")
    assert expiry.due_at == pytest.approx(1000.0 + 30 * 86400)


def test_one_event_moves_two_regions_and_entry_actions_follow_the_transitions_actions():
    result = run(next(case for case in STEP_CASES if case.name == "ship"))
    assert result.entity.data["tracking_number"] == TRACKING
    assert result.entity.data["sync_attempts"] == 1
    # Entries run outermost first, equal depth in document order: sync before push.
    assert [command.type for command in result.commands] == ["sync_shipment", "push_tracking"]
    assert result.commands[1].payload["tracking_number"] == TRACKING
    assert {timer.name for timer in result.timers if timer.due_at is not None} == {"sync_deadline"}


def test_in_state_holds_back_the_push_while_the_shipment_is_on_hold():
    result = step(
        CHART,
        entity("lifecycle.on_hold,sync.synced,push.waiting"),
        event("shipment.ship", {"tracking_number": TRACKING}),
    )
    assert result.to_state == "lifecycle.on_hold,sync.syncing,push.waiting"
    assert "tracking_number" not in result.entity.data


def test_completing_the_push_region_runs_its_done_event_in_the_same_step():
    result = run(next(case for case in STEP_CASES if case.name == "pushed"))
    assert result.entity.data["tracking_sent"] is True


def test_holding_and_releasing_returns_to_the_state_held_in_and_restarts_its_timer():
    held = step(CHART, entity(f"{PACKED},sync.synced,push.waiting"), event("shipment.hold"))
    assert held.to_state == "lifecycle.on_hold,sync.synced,push.waiting"
    assert [(timer.name, timer.due_at) for timer in held.timers] == [("expiry", None)]
    released = step(CHART, held.entity, event("shipment.release", number=1))
    assert released.to_state == f"{PACKED},sync.synced,push.waiting"
    assert [timer.name for timer in released.timers if timer.due_at is not None] == ["expiry"]


def test_leaving_failed_runs_its_exit_action_before_the_transitions_action():
    result = run(next(case for case in STEP_CASES if case.name == "sync"))
    assert "sync_error" not in result.entity.data
    assert result.entity.data["sync_attempts"] == 2
    assert [command.type for command in result.commands] == ["sync_shipment"]


EVENTS = [
    ("shipment.note", {"text": "n"}),
    ("shipment.pack", {}),
    ("shipment.hold", {}),
    ("shipment.release", {}),
    ("shipment.cancel", {}),
    ("shipment.expire", {"timer": "expiry", "due_at": 1000.0}),
    ("shipment.sync", {}),
    ("shipment.synced", {}),
    ("shipment.sync_failed", {}),
    ("shipment.sync_timeout", {"timer": "sync_deadline", "due_at": 1000.0}),
    ("shipment.ship", {"tracking_number": TRACKING}),
    ("shipment.pushed", {}),
]


@settings(max_examples=60)
@given(st.lists(st.sampled_from(EVENTS), max_size=25))
def test_any_sequence_keeps_one_state_per_region_and_never_leaves_a_final_state(sequence):
    current = new_entity(CHART, "shipment:1")
    for number, (event_type, payload) in enumerate(sequence):
        before = atomic_states(current.state) if current.version else ()
        result = step(CHART, current, event(event_type, payload, number))
        assert result.outcome is not Outcome.ERROR, result.reason
        current = result.entity
        after = atomic_states(current.state)
        assert [state.split(".")[0] for state in after] == ["lifecycle", "sync", "push"]
        for was, now in zip(before, after, strict=False):  # before is () for a new entity
            if was in CHART.final_states:
                assert now == was, f"{event_type} left the final state {was}"
