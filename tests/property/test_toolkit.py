"""engine.testing on the sample chart: the README's example, walks, coverage."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from engine import ChartSet
from engine.sample import chart_package
from engine.testing import (
    ChartHarness,
    CoverageRecorder,
    chart_state_machine,
    deliveries,
    drive_transitions,
    shortest_paths,
    transition_paths,
    walks,
)

CHARTS = ChartSet.load([chart_package()])
ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_property_test_example_runs_as_written():
    readme = (ROOT / "README.md").read_text()
    example = re.search(r"```python\n(# test_my_chart\.py.*?)```", readme, re.S).group(1)
    assert len([line for line in example.splitlines() if line.strip()]) < 15
    namespace: dict = {}
    exec(compile(example, "README example", "exec"), namespace)
    namespace["TestParcel"]("runTest").runTest()


@settings(max_examples=300, deadline=None)
@given(walks(CHARTS, "parcel", {"parcel.note": st.fixed_dictionaries({"text": st.just("n")})}))
def test_walks_follow_the_graph_and_every_step_fires(walk):
    harness = ChartHarness(CHARTS)
    for kind, payload in walk:
        result = harness.send(kind, "parcel:1", payload)
        assert result.outcome.value == "transitioned", (kind, result.reason)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_deliveries_of_a_walk_with_repeats_and_losses_keep_replay_equal_to_live(data):
    walk = data.draw(walks(CHARTS, "parcel"))
    harness = ChartHarness(CHARTS)
    events = [harness.make(kind, "parcel:1", payload) for kind, payload in walk]
    for event in data.draw(deliveries(events)):
        harness.apply(event)
    assert harness.replay() == harness.entities


def test_shortest_paths_reach_every_state_and_every_transition():
    chart = CHARTS.by_name["parcel"]
    paths = shortest_paths(chart)
    assert set(paths) == set(chart.spec.states)
    assert [e.event for e in paths["delivered"]] == ["parcel.pack", "parcel.ship", "parcel.deliver"]
    for edge, path in transition_paths(chart).items():
        assert path[-1] == edge and path[0].source == chart.initial


def test_coverage_reports_transitions_never_exercised():
    chart = CHARTS.by_name["parcel"]
    coverage = CoverageRecorder()
    coverage.record("parcel", "created", "parcel.pack", "packed")
    report = coverage.report(chart)
    assert report.startswith("parcel: 1 of ")
    assert "never: packed --parcel.ship--> shipped" in report
    assert "never: created --parcel.pack--> packed" not in report


def test_every_parcel_transition_is_driven_and_the_machine_runs_clean():
    """Every transition of the chart is taken (drive_transitions), and the
    generated state machine runs with its built-in invariants."""
    coverage = CoverageRecorder()
    _driven, stuck = drive_transitions(CHARTS, "parcel", recorder=coverage)
    assert stuck == [] and coverage.unexercised(CHARTS.by_name["parcel"]) == []
    machine = chart_state_machine(CHARTS, "parcel")
    machine.TestCase.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)
    machine.TestCase("runTest").runTest()
