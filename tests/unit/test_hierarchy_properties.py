"""Rules of the hierarchical step that hold for every event sequence: the
configuration is always a legal one, the three step variants agree, and a
flat chart reports what fired and what it entered."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.charts.configuration import atomic_states
from engine.charts.hierarchy import StateTree
from engine.step import EntityState, Outcome, step, step_in_place, step_trusted
from engine.step_data import json_copy
from tests.unit.hierarchy_charts import Walker, event

CHART = """
parallel: true
events: [a, b, c, d, flip]
states:
  left:
    label: Left
    initial: one
    states:
      one: {label: One, entry: [put=left:one]}
      two:
        label: Two
        initial: x
        exit: [put=left:out]
        states:
          x: {label: X}
          y: {label: Y}
          end: {label: End, final: true}
      three: {label: Three}
  right:
    label: Right
    parallel: true
    states:
      up:
        label: Up
        initial: p
        states:
          p: {label: P}
          q: {label: Q}
          stop: {label: Stop, final: true}
      down:
        label: Down
        initial: r
        states:
          r: {label: R}
          s: {label: S}
          stop: {label: Stop, final: true}
  after: {label: After}
transitions:
  - {event: a, source: left.one, target: left.two.y, actions: [put=flag:a]}
  - {event: a, source: right.up.p, target: right.up.q}
  - {event: b, source: left.two, target: left.two.end, guards: [flag=flag]}
  - {event: b, source: left.two.y, target: left.two.x}
  - {event: c, source: right, target: right.down.s, history: deep}
  - {event: c, source: left.two.x, target: left.three}
  - {event: d, source: right.up.q, target: right.up.stop}
  - {event: d, source: right.down.s, target: right.down.stop}
  - {event: done.state.right, source: left, target: left.one}
  - {event: done.state.left.two, source: left.two.end, target: left.three}
  - {event: flip, source: left, target: left.three, guards: [in_state=right.up.q]}
  - {event: flip, source: left.three, target: left.two, history: deep}
"""

EVENTS = st.lists(st.sampled_from(["a", "b", "c", "d", "flip"]), max_size=25)


def legal(tree: StateTree, state: str) -> bool:
    """Every active compound state has exactly one active child, every
    active parallel state all its regions, and the top its due share."""
    leaves = atomic_states(state)
    active = set(tree.active_states(leaves))
    if len(leaves) != len(set(leaves)) or not all(tree.nodes[leaf].is_atomic for leaf in leaves):
        return False
    for holder in [*active, ""]:
        if holder and tree.nodes[holder].is_atomic:
            continue
        children = [c for c in tree.children(holder) if c in active]
        expected = len(tree.children(holder)) if tree.kind(holder) == "parallel" else 1
        if len(children) != expected:
            return False
    return True


@settings(max_examples=60)
@given(EVENTS)
def test_every_step_leaves_a_legal_configuration(events):
    walker = Walker(CHART)
    assert legal(walker.chart.tree, walker.state)
    for name in events:
        result = walker.send(name)
        assert result.outcome is not Outcome.ERROR, result.reason
        assert legal(walker.chart.tree, walker.state), walker.state
        if result.outcome is Outcome.TRANSITIONED:
            assert result.to_state == walker.state
            assert result.fired


@settings(max_examples=40)
@given(EVENTS)
def test_the_three_step_variants_agree(events):
    walker = Walker(CHART)
    chart = walker.chart
    entity = walker.entity
    for n, name in enumerate(events):
        happening = event(name, n=n)
        kept = _copy(entity)
        pure = step(chart, entity, happening)
        # `step` is pure: its input is left as it was, data and history.
        assert (entity.state, entity.data, entity.history) == (kept.state, kept.data, kept.history)
        in_place = step_in_place(chart, _copy(entity), happening)
        trusted = step_trusted(chart, _copy(entity), happening)
        for other in (in_place, trusted):
            assert (other.outcome, other.to_state, other.fired, other.entered) == (
                pure.outcome,
                pure.to_state,
                pure.fired,
                pure.entered,
            )
            assert other.entity.data == pure.entity.data
            assert other.entity.history == pure.entity.history
        entity = pure.entity


def _copy(entity: EntityState) -> EntityState:
    return EntityState(
        entity.key,
        entity.chart,
        entity.state,
        json_copy(entity.data),
        entity.version,
        entity.chart_version,
        json_copy(entity.history),
    )


def test_a_flat_chart_reports_what_fired_and_what_it_entered():
    walker = Walker(
        """
initial: open
events: [close, poke]
states:
  open: {label: Open}
  closed: {label: Closed, final: true}
transitions:
  - {event: poke, source: open}
  - {event: close, source: open, target: closed}
"""
    )
    assert walker.chart.plans is None  # flat: today's table
    poked = walker.send("poke")
    assert (poked.fired, poked.entered) == ((0,), ())
    closed = walker.send("close")
    assert (closed.fired, closed.entered, closed.to_state) == ((1,), ("closed",), "closed")
