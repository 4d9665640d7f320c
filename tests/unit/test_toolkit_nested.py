"""engine.testing on a chart with parallel regions and compound states: valid
configurations, events per configuration, paths through nested states and the
coverage report per transition, per region and for history entries."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.testing import ChartShape, CoverageRecorder, shortest_paths, transition_paths
from engine.testing.paths import entered_by
from engine.testing.strategies import configurations
from tests.support_nested_chart import nested_chart_set

CHARTS = nested_chart_set()
CHART = CHARTS.by_name["shop_order"]
SHAPE = ChartShape(CHART)


@pytest.mark.parametrize(
    "state",
    [
        "lifecycle.open,sync.idle",
        "lifecycle.closed,sync.working.waiting",
        "lifecycle.on_hold,sync.done",
    ],
)
def test_a_configuration_with_one_atomic_state_per_region_is_valid(state):
    assert SHAPE.problems(state) == []


@pytest.mark.parametrize(
    ("state", "problem"),
    [
        ("lifecycle.open", "regions with no active state: ['sync']"),
        ("lifecycle.open,lifecycle.on_hold,sync.idle", "lifecycle has 2 active children"),
        ("lifecycle.open,sync.working", "'sync.working' is not an atomic state"),
        ("lifecycle.open,sync.busy", "undeclared state 'sync.busy'"),
        ("sync.idle,lifecycle.open", "not once each in document order"),
        ("lifecycle.open,sync.idle,sync.idle", "not once each in document order"),
        ("", "regions with no active state"),
    ],
)
def test_a_configuration_the_chart_cannot_be_in_is_told_why(state, problem):
    assert any(problem in found for found in SHAPE.problems(state)), SHAPE.problems(state)


@given(configurations(CHART))
def test_every_drawn_configuration_is_valid(state):
    assert SHAPE.problems(state) == []
    assert all(len(leaves) == 1 for leaves in SHAPE.region_states(state).values())


@given(configurations(CHART), st.data())
def test_a_configuration_missing_a_region_or_with_an_extra_sibling_is_invalid(state, data):
    leaves = state.split(",")
    dropped = data.draw(st.sampled_from(leaves))
    assert SHAPE.problems(",".join(leaf for leaf in leaves if leaf != dropped))
    sibling = data.draw(st.sampled_from(["lifecycle.on_hold", "sync.failed", "lifecycle.open"]))
    if sibling not in leaves:
        grown = SHAPE.tree.in_document_order({*leaves, sibling})
        assert SHAPE.problems(",".join(grown))


def test_a_flat_chart_is_one_region_holding_one_state():
    from engine import ChartSet
    from engine.sample import chart_package

    parcel = ChartShape(ChartSet.load([chart_package()]).by_name["parcel"])
    assert parcel.regions == ("",)
    assert parcel.problems("packed") == []
    assert parcel.problems("lost") == ["undeclared state 'lost'"]
    assert parcel.region_states("packed") == {"": ("packed",)}
    assert parcel.is_top_final("delivered") and not parcel.is_top_final("packed")
    assert parcel.enabled_events("packed") == [
        "parcel.cancel",
        "parcel.note",
        "parcel.ship",
        "parcel.ship_deadline",
    ]


def test_events_enabled_in_a_configuration_come_from_every_active_state_and_its_parents():
    assert SHAPE.enabled_events("lifecycle.open,sync.working.sending") == [
        "order.close",
        "order.escalate",
        "order.hold",
        "order.note",  # "*": every atomic state that is not final
        "sync.deadline",  # from the parent sync.working
        "sync.fail",
        "sync.sent",
    ]
    assert SHAPE.enabled_events("lifecycle.closed,sync.done") == []


def test_regions_and_the_finals_that_end_them():
    assert SHAPE.regions == ("lifecycle", "sync")
    assert SHAPE.region_states("lifecycle.closed,sync.working.waiting") == {
        "lifecycle": ("lifecycle.closed",),
        "sync": ("sync.working.waiting",),
    }
    assert SHAPE.is_top_final("sync.done") and SHAPE.is_top_final("lifecycle.closed")
    assert not SHAPE.is_top_final("sync.working.waiting")


# ------------------------------------------------------------------ paths


def test_entering_a_compound_state_enters_its_initial_child():
    assert entered_by(SHAPE.tree, "sync.working") == [
        "sync",
        "sync.working",
        "sync.working.sending",
    ]


def test_shortest_paths_reach_every_state_through_regions_and_parents():
    paths = shortest_paths(CHART)
    assert set(paths) == set(SHAPE.tree.nodes)
    assert paths["lifecycle.open"] == [] and paths["sync.idle"] == []
    assert [e.event for e in paths["sync.working.sending"]] == ["sync.start"]
    assert [e.event for e in paths["sync.working.waiting"]] == ["sync.start", "sync.sent"]
    assert [e.event for e in paths["lifecycle.closed"]] == ["order.close"]


def test_every_edge_has_a_path_ending_with_it_including_history_and_parent_transitions():
    paths = transition_paths(CHART)
    by_edge = {
        (edge.event, edge.source): path
        for edge, path in paths.items()
        if edge.source != edge.target
    }
    retry = by_edge["sync.retry", "sync.failed"]
    assert [e.event for e in retry] == ["sync.start", "sync.fail", "sync.retry"]
    assert [e.event for e in by_edge["sync.fail", "sync.working"]] == ["sync.start", "sync.fail"]
    assert [e.event for e in by_edge["order.close", "lifecycle.on_hold"]] == [
        "order.hold",
        "order.close",
    ]
    assert {edge.index for edge in paths} == set(range(len(CHART.spec.transitions)))


# ------------------------------------------------------------------ coverage


def _result(before: str, after: str, fired: tuple[int, ...], entered: tuple[str, ...] = ()):
    return SimpleNamespace(from_state=before, to_state=after, fired=fired, entered=entered)


def test_coverage_reports_per_transition_per_region_and_history_entries():
    coverage = CoverageRecorder()
    start = "lifecycle.open,sync.idle"
    working = "lifecycle.open,sync.working.sending"
    failed = "lifecycle.open,sync.failed"
    coverage.record_step(CHART, _result(start, working, (3,), ("sync.working",)))
    coverage.record_step(CHART, _result(working, failed, (5,), ("sync.failed",)))
    coverage.record_step(
        CHART, _result(failed, working, (6,), ("sync.working@history", "sync.working.sending"))
    )
    report = coverage.report(CHART)
    assert "  by transition: 3 of 12 fired" in report
    assert "    never fired #7: sync.working.waiting --sync.ok--> sync.done" in report
    assert "    never fired #8: * --order.note--> (stays)" in report
    assert (
        "  region lifecycle: 2 of 4 visited; never: lifecycle.on_hold, lifecycle.closed" in report
    )
    assert "  region sync: 5 of 7 visited; never: sync.working.waiting, sync.done" in report
    assert "  history: sync.working entered through history 1 times" in report
    # sync.fail's source is the parent sync.working: the edge from it was taken.
    never = {str(edge) for edge in coverage.unexercised(CHART)}
    assert "sync.working --sync.fail--> sync.failed" not in never
    assert "sync.working.waiting --sync.ok--> sync.done" in never
    assert coverage.never_fired(CHART) == [0, 1, 2, 4, 7, 8, 9, 10, 11]


def test_a_transition_found_from_several_active_sources_marks_each_of_them():
    coverage = CoverageRecorder()
    state = "lifecycle.on_hold,sync.idle"
    coverage.record_step(CHART, _result(state, state, (8,)))
    never = {(edge.source, edge.event) for edge in coverage.unexercised(CHART)}
    assert ("lifecycle.on_hold", "order.note") not in never
    assert ("sync.idle", "order.note") not in never
    assert ("lifecycle.open", "order.note") in never, "not active: not taken"
