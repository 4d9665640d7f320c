"""engine.testing stepping a chart with parallel regions for real: walks fire,
every transition is driven (history and parent transitions included), the
stateful machine runs clean with its configuration invariants, and those
invariants do catch an entity outside the chart's configurations or one that
left a region's final state."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.step import EntityState
from engine.testing import (
    ChartHarness,
    CoverageRecorder,
    chart_state_machine,
    drive_transitions,
    walks,
)
from tests.support_nested_chart import nested_chart_set

CHARTS = nested_chart_set()
CHART = CHARTS.by_name["shop_order"]
PAYLOADS = {"order.note": st.fixed_dictionaries({"text": st.sampled_from(["n", "urgent"])})}


@settings(max_examples=150, deadline=None)
@given(walks(CHARTS, "shop_order", PAYLOADS))
def test_walks_through_regions_fire_every_step(walk):
    harness = ChartHarness(CHARTS)
    for kind, payload in walk:
        result = harness.send(kind, "shop_order:1", payload)
        assert result.outcome.value == "transitioned", (kind, result.reason)


def test_every_transition_of_a_nested_chart_is_driven_and_fires_by_its_index():
    coverage = CoverageRecorder()
    driven, stuck = drive_transitions(CHARTS, "shop_order", PAYLOADS, coverage)
    assert stuck == [], "could not take:\n" + "\n".join(map(str, stuck))
    assert coverage.unexercised(CHART) == [], coverage.report(CHART)
    retry = next(events for edge, events in driven.items() if edge.event == "sync.retry")
    assert [kind for kind, _payload in retry] == ["sync.start", "sync.fail", "sync.retry"]
    # A guard on data an earlier payload gives: that payload is searched with the edge's.
    escalate = next(events for edge, events in driven.items() if edge.event == "order.escalate")
    assert ("order.note", {"text": "urgent"}) in escalate
    # A guard on another region's state: a step of that region comes first.
    abandon = [
        kind
        for edge, events in driven.items()
        if edge.event == "sync.abandon"
        for kind, _payload in events
    ]
    assert "order.hold" in abandon and abandon[-1] == "sync.abandon"


def test_the_machine_runs_clean_and_its_coverage_shows_regions_and_history():
    coverage = CoverageRecorder()
    machine = chart_state_machine(CHARTS, "shop_order", payloads_for=PAYLOADS, coverage=coverage)
    machine.TestCase.settings = settings(
        max_examples=60, stateful_step_count=30, deadline=None, derandomize=True, database=None
    )
    machine.TestCase("runTest").runTest()
    report = coverage.report(CHART)
    assert "region lifecycle:" in report and "region sync:" in report
    assert coverage.visited["shop_order"] >= {"lifecycle.on_hold", "sync.working.waiting"}
    assert "history: sync.working entered through history" in report
    assert coverage.never_fired(CHART) != list(range(len(CHART.spec.transitions)))


def _machine_with(state: str):
    machine = chart_state_machine(CHARTS, "shop_order", payloads_for=PAYLOADS)()
    machine.harness.entities["shop_order:0"] = EntityState("shop_order:0", "shop_order", state, {})
    return machine


@pytest.mark.parametrize(
    "state",
    ["lifecycle.open", "lifecycle.open,sync.working", "lifecycle.open,lifecycle.on_hold,sync.idle"],
)
def test_the_configuration_invariant_catches_a_state_the_chart_cannot_be_in(state):
    machine = _machine_with(state)
    with pytest.raises(AssertionError, match="no configuration of the chart"):
        machine.every_configuration_is_valid()


def test_the_final_invariant_catches_a_region_that_left_its_final_state():
    machine = _machine_with("lifecycle.closed,sync.idle")
    machine.final_states_are_never_left()
    machine.harness.entities["shop_order:0"].state = "lifecycle.closed,sync.failed"
    machine.final_states_are_never_left()  # the other region goes on
    machine.harness.entities["shop_order:0"].state = "lifecycle.open,sync.failed"
    with pytest.raises(AssertionError, match="left final"):
        machine.final_states_are_never_left()
