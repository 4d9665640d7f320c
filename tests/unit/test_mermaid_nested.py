"""Diagrams of charts with compound and parallel states (issue 15): composites
with their own initial, regions separated by ``--``, every state declared once
under its parent, transitions at every level, history, timers and entry/exit
actions visible. Read back with `tests.unit.mermaid_syntax` (no renderer runs)."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from engine.charts.mermaid import to_mermaid
from engine.charts.schema import ChartSpec, StateSpec
from tests.unit.mermaid_syntax import Diagram, parse_state_diagram

ORDER = """
name: shop_order
entity_kind: shop_order
parallel: true
states:
  lifecycle:
    label: Lifecycle
    initial: open
    states:
      open: {label: Open, entry: [stamp_opened]}
      on_hold: {label: On hold}
      closed: {label: Closed, final: true}
  sync:
    label: Shoplazza sync
    initial: idle
    states:
      idle: {label: Not synced}
      working:
        label: Syncing
        initial: sending
        exit: [clear_attempt]
        states:
          sending: {label: Sending}
          waiting: {label: Waiting}
      failed: {label: Failed}
      done: {label: Synced, final: true}
events: [order.hold, order.close, sync.start, sync.sent, sync.fail, sync.retry, sync.ok, order.note]
transitions:
  - {event: order.hold, source: lifecycle.open, target: lifecycle.on_hold}
  - {event: order.close, source: lifecycle, target: lifecycle.closed}
  - {event: sync.start, source: sync.idle, target: sync.working}
  - {event: sync.sent, source: sync.working.sending, target: sync.working.waiting}
  - {event: sync.fail, source: sync.working, target: sync.failed}
  - {event: sync.retry, source: sync.failed, target: sync.working, history: deep}
  - {event: sync.ok, source: sync.working.waiting, target: sync.done}
  - {event: order.note, source: "*"}
timers:
  - {name: sync_deadline, state: sync.working, event: sync.fail, after: 15m}
"""

REVIEW = """
name: listing
entity_kind: listing
initial: draft
states:
  draft: {label: Draft}
  review:
    label: In review
    parallel: true
    states:
      content:
        label: Content
        initial: checking
        states:
          checking: {label: Checking}
          passed: {label: Passed, final: true}
      images:
        label: Images
        initial: scanning
        states:
          scanning: {label: Scanning}
          clean: {label: Clean, final: true}
  live: {label: Live}
events: [listing.submit, content.ok, images.ok, listing.withdraw]
transitions:
  - {event: listing.submit, source: draft, target: review}
  - {event: content.ok, source: review.content.checking, target: review.content.passed}
  - {event: images.ok, source: review.images.scanning, target: review.images.clean}
  - {event: done.state.review, source: review, target: live}
  - {event: listing.withdraw, source: review, target: draft, history: shallow}
"""


def _spec(text: str) -> ChartSpec:
    return ChartSpec.model_validate(yaml.safe_load(text))


def test_a_parallel_chart_draws_its_regions_as_composites_separated_by_dashes():
    diagram = parse_state_diagram(to_mermaid(_spec(ORDER)))
    assert diagram.initials[None] == ["shop_order_regions"]
    assert diagram.regions["shop_order_regions"] == [["lifecycle"], ["sync"]]
    assert diagram.parents["sync__working__waiting"] == "sync__working"
    assert diagram.parents["sync__working"] == "sync"
    assert diagram.labels["sync__working"] == "Syncing"
    assert diagram.initials["lifecycle"] == ["lifecycle__open"]
    assert diagram.initials["sync__working"] == ["sync__working__sending"]
    # Each transition sits in the innermost composite that holds both its ends.
    assert diagram.block_of_edge("sync__working__sending", "sync__working__waiting") == (
        "sync__working"
    )
    assert diagram.block_of_edge("sync__working__waiting", "sync__done") == "sync"
    # A parent transition starts at the composite.
    assert diagram.edge_labels("lifecycle", "lifecycle__closed") == ["order.close"]
    assert diagram.edge_labels("sync__failed", "sync__working") == ["sync.retry (deep history)"]
    assert ("lifecycle__closed", "[*]", None, "lifecycle") in diagram.edges


def test_timers_and_entry_exit_actions_are_notes_on_their_state():
    diagram = parse_state_diagram(to_mermaid(_spec(ORDER)))
    notes = {(state, text) for state, text, _block in diagram.notes}
    assert ("sync__working", "timer sync_deadline, after 15m, fires sync.fail") in notes
    assert ("sync__working", "on exit clear_attempt") in notes
    assert ("lifecycle__open", "on entry stamp_opened") in notes


def test_internal_transitions_are_listed_by_full_id_unless_drawn():
    text = to_mermaid(_spec(ORDER))
    listed = [c for c in parse_state_diagram(text).comments if "order.note" in c]
    assert listed == [
        "%% internal order.note in lifecycle.open, lifecycle.on_hold, sync.idle, "
        "sync.working.sending, sync.working.waiting, sync.failed"
    ]
    drawn = parse_state_diagram(to_mermaid(_spec(ORDER), internal=True))
    assert drawn.edge_labels("sync__working__waiting", "sync__working__waiting") == ["order.note"]
    assert not drawn.edge_labels("lifecycle__closed", "lifecycle__closed"), "finals are left out"


def test_a_parallel_state_inside_a_compound_top():
    diagram = parse_state_diagram(to_mermaid(_spec(REVIEW)))
    assert diagram.initials[None] == ["draft"]
    assert diagram.regions["review"] == [["review__content"], ["review__images"]]
    assert "review" not in diagram.initials, "a parallel state has no single initial"
    assert diagram.initials["review__images"] == ["review__images__scanning"]
    assert diagram.edge_labels("review", "live") == ["done.state.review"]
    assert diagram.edge_labels("review", "draft") == ["listing.withdraw (history)"]
    assert diagram.block_of_edge("review", "live") is None


def test_ids_that_would_clash_are_told_apart():
    spec = _spec(
        """
name: clash
entity_kind: clash
initial: a
states:
  a: {label: A, initial: b, states: {b: {label: A.B}}}
  a__b: {label: A__B}
events: [go]
transitions:
  - {event: go, source: a.b, target: a__b}
"""
    )
    diagram = parse_state_diagram(to_mermaid(spec))
    assert diagram.labels == {"a": "A", "a__b": "A.B", "a__b_2": "A__B"}
    assert diagram.edge_labels("a__b", "a__b_2") == ["go"]


# ------------------------------------------------------------------ for any nested chart

NAMES = ["a", "b", "a__b", "c_d", "x"]


@st.composite
def state_trees(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    """Children by name: atomic (some final), compound or parallel states."""
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
    children: dict[str, Any] = {}
    for name in names:
        kind = draw(
            st.sampled_from(["atomic", "final", "compound", "parallel"][: 2 + 2 * (depth < 2)])
        )
        state: dict[str, Any] = {"label": "?", "entry": draw(st.lists(st.just("act"), max_size=1))}
        if kind == "final":
            state["final"] = True
        elif kind != "atomic":
            state["states"] = draw(state_trees(depth + 1))
            if kind == "parallel":
                state["parallel"] = True
            else:
                state["initial"] = next(iter(state["states"]))
        children[name] = state
    return children


def _ids(states: dict[str, Any], prefix: str = "") -> list[str]:
    found = []
    for name, state in states.items():
        found.append(prefix + name)
        found += _ids(state.get("states", {}), f"{prefix}{name}.")
    return found


def _label_with_ids(states: dict[str, Any], prefix: str = "") -> None:
    for name, state in states.items():
        state["label"] = f"L {prefix}{name}"
        _label_with_ids(state.get("states", {}), f"{prefix}{name}.")


@st.composite
def nested_charts(draw: st.DrawFn) -> ChartSpec:
    states = draw(state_trees())
    _label_with_ids(states)
    ids = _ids(states)
    parallel = draw(st.booleans())
    transitions = [
        {
            "event": f"e{index}",
            "source": draw(st.sampled_from([*ids, "*"])),
            "target": draw(st.one_of(st.none(), st.sampled_from(ids))),
        }
        for index in range(draw(st.integers(0, 6)))
    ]
    timers = [{"name": "t", "state": draw(st.sampled_from(ids)), "event": "tick", "after": 60}]
    doc = {
        "name": "generated",
        "entity_kind": "generated",
        "parallel": parallel,
        "initial": None if parallel else next(iter(states)),
        "states": states,
        "events": ["tick"],
        "transitions": transitions,
        "timers": timers,
    }
    return ChartSpec.model_validate(doc)


def _state_id(diagram: Diagram, diagram_id: str | None) -> str | None:
    if diagram_id is None or diagram_id == "generated_regions":
        return None
    return diagram.labels[diagram_id].removeprefix("L ")


def _spec_ids(states: dict[str, StateSpec], prefix: str = "") -> list[str]:
    found = []
    for name, state in states.items():
        found.append(prefix + name)
        found += _spec_ids(state.states, f"{prefix}{name}.")
    return found


def _lookup(spec: ChartSpec, state_id: str) -> StateSpec:
    states, found = spec.states, None
    for part in state_id.split("."):
        found = states[part]
        states = found.states
    assert found is not None
    return found


@given(spec=nested_charts(), internal=st.booleans())
def test_every_nested_chart_draws_every_state_once_under_its_parent(spec, internal):
    diagram = parse_state_diagram(to_mermaid(spec, internal=internal))
    drawn = {_state_id(diagram, d): _state_id(diagram, p) for d, p in diagram.parents.items()}
    drawn.pop(None, None)  # a parallel chart's composite of its regions
    ids = _spec_ids(spec.states)
    assert drawn == {state_id: state_id.rpartition(".")[0] or None for state_id in ids}
    for diagram_id in diagram.composites - {"generated_regions"}:
        state = _lookup(spec, diagram.labels[diagram_id].removeprefix("L "))
        if state.parallel:
            assert len(diagram.regions[diagram_id]) == len(state.states), "a group per region"
            assert diagram_id not in diagram.initials
        else:
            assert len(diagram.regions[diagram_id]) == 1
            assert len(diagram.initials[diagram_id]) == 1, "a compound's own initial"


@given(spec=nested_charts())
def test_every_transition_with_a_target_is_drawn(spec):
    diagram = parse_state_diagram(to_mermaid(spec))
    drawn = sorted(label for _s, t, label, _b in diagram.edges if t != "[*]" and label)
    atomic = [i for i in _spec_ids(spec.states) if not _lookup(spec, i).states]
    expected = []
    for transition in spec.transitions:
        if transition.target is not None:
            sources = transition.source
            if "*" in sources:
                sources = [i for i in atomic if not _lookup(spec, i).final]
            expected += [transition.event] * len(sources)
    assert drawn == sorted(expected)
