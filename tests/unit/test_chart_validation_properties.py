"""ENG-1 over generated nested and parallel charts: a well-formed chart of any
shape loads, and however many of its names are broken, each one is reported,
once, on its own line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import ChartLoadError, Rules, load_chart
from engine.charts.hierarchy import TOP, StateTree
from engine.charts.schema import ChartSpec

MAX_EVENTS = 60
rules = Rules()
rules.register_events({f"gen.e{n}": None for n in range(MAX_EVENTS)})
NAMES = ["a", "b", "c", "sync", "failed", "x_1", "idle"]


@st.composite
def state_trees(draw: st.DrawFn, depth: int, region: bool = False) -> dict[str, Any]:
    """One state (dict as in a chart file) and its children, down to ``depth``."""
    shape = draw(
        st.sampled_from(["atomic", "compound", "parallel"]) if depth else st.just("atomic")
    )
    state: dict[str, Any] = {"label": "L"}
    if shape == "atomic":
        return state
    names = draw(st.lists(st.sampled_from(NAMES), min_size=2, max_size=3, unique=True))
    children = {name: draw(state_trees(depth - 1, region=shape == "parallel")) for name in names}
    state["states"] = children
    if shape == "parallel":
        state["parallel"] = True
    else:
        state["initial"] = names[0]
        # A final child, never the initial one: the entity still has somewhere to go.
        for name in names[1:]:
            if "states" not in children[name] and draw(st.booleans()):
                children[name]["final"] = True
    return state


@st.composite
def charts(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed chart: every state entered by a '*' transition of its own event."""
    top = draw(state_trees(3).filter(lambda s: "states" in s))
    doc: dict[str, Any] = {"name": "gen", "entity_kind": "gen", "states": top["states"]}
    if top.get("parallel"):
        doc["parallel"] = True
    else:
        doc["initial"] = top["initial"]
    spec_ids = list(StateTree.from_spec(_spec(doc)).nodes)[:MAX_EVENTS]
    doc["events"] = [f"gen.e{n}" for n in range(len(spec_ids))]
    doc["transitions"] = [
        {"event": f"gen.e{n}", "source": "*", "target": state_id}
        for n, state_id in enumerate(spec_ids)
    ]
    return doc


def _spec(doc: dict[str, Any]) -> ChartSpec:
    """The chart's states alone, for the tree its ids come from."""
    return ChartSpec.model_validate({**doc, "events": [], "transitions": []})


def write(folder: Path, doc: dict[str, Any]) -> tuple[Path, list[str]]:
    text = yaml.safe_dump(doc, sort_keys=False)
    path = folder / "gen.yaml"
    path.write_text(text)
    return path, text.splitlines()


SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(charts())
def test_a_well_formed_chart_of_any_shape_loads(tmp_path, doc):
    path, _ = write(tmp_path, doc)
    load_chart(path, rules)


@SETTINGS
@given(charts(), st.data())
def test_every_broken_target_is_reported_once_on_its_own_line(tmp_path, doc, data):
    broken = data.draw(
        st.sets(st.integers(0, len(doc["transitions"]) - 1), min_size=1), label="broken"
    )
    for index in broken:
        doc["transitions"][index]["target"] = f"gone_{index}"
    path, lines = write(tmp_path, doc)
    try:
        load_chart(path, rules)
    except ChartLoadError as err:
        found = err.problems
    else:
        raise AssertionError("a chart with unknown targets loaded")
    assert sorted(p.place for p in found) == sorted(
        f"transitions[{i}] (event 'gen.e{i}')" for i in broken
    )
    for problem in found:
        index = int(problem.place.split("[")[1].split("]")[0])
        assert f"unknown target state 'gone_{index}'" in problem.message
        assert problem.line is not None and f"target: gone_{index}" in lines[problem.line - 1]


@SETTINGS
@given(charts())
def test_without_transitions_exactly_the_states_outside_the_initial_configuration_are_reported(
    tmp_path, doc
):
    """Each state no initial or region entry reaches is reported, once, at its
    outermost unreachable level."""
    doc["transitions"], doc["events"] = [], ["gen.e0"]
    tree = StateTree.from_spec(_spec(doc))
    entered = set(tree.default_entry(TOP))
    expected = {
        f"state {node.id!r}"
        for node in tree.nodes.values()
        if node.id not in entered and (node.parent is None or node.parent in entered)
    }
    path, lines = write(tmp_path, doc)
    try:
        load_chart(path, rules)
        found = []
    except ChartLoadError as err:
        found = err.problems
    assert sorted(p.place for p in found) == sorted(expected)
    for problem in found:
        name = problem.place.split("'")[1].rsplit(".", 1)[-1]
        assert problem.line is not None and lines[problem.line - 1].strip().startswith(name + ":")
