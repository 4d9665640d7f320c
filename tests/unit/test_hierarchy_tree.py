"""The state tree: ids, kinds, document order, regions and the helpers the step uses."""

from __future__ import annotations

import yaml

from engine.charts.hierarchy import TOP, StateTree, expand_sources, inner_first
from engine.charts.schema import ChartSpec

ORDER = """
name: order
entity_kind: order
parallel: true
events: [pay, sync, fail, hold]
states:
  lifecycle:
    label: Lifecycle
    initial: open
    states:
      open: {label: Open}
      on_hold: {label: On hold}
      closed: {label: Closed, final: true}
  sync:
    label: Sync
    initial: idle
    states:
      idle: {label: Idle}
      busy:
        label: Busy
        initial: sending
        states:
          sending: {label: Sending}
          waiting: {label: Waiting}
  push:
    label: Push
    parallel: true
    states:
      left:
        label: Left
        initial: a
        states:
          a: {label: A}
      right:
        label: Right
        initial: b
        states:
          b: {label: B}
transitions:
  - {event: pay, source: "*", target: lifecycle.closed}
"""


def tree() -> StateTree:
    return StateTree.from_spec(ChartSpec.model_validate(yaml.safe_load(ORDER)))


def test_nodes_have_dotted_ids_kinds_and_document_order():
    nodes = tree().nodes
    assert list(nodes)[:5] == [
        "lifecycle",
        "lifecycle.open",
        "lifecycle.on_hold",
        "lifecycle.closed",
        "sync",
    ]
    busy = nodes["sync.busy"]
    assert (busy.kind, busy.parent, busy.initial, busy.depth) == (
        "compound",
        "sync",
        "sync.busy.sending",
        2,
    )
    assert busy.children == ("sync.busy.sending", "sync.busy.waiting")
    assert nodes["lifecycle.closed"].kind == "final"
    assert nodes["push"].kind == "parallel"
    assert [n.order for n in nodes.values()] == list(range(len(nodes)))


def test_regions_flatness_and_ancestors():
    t = tree()
    assert t.regions() == ("lifecycle", "sync", "push")
    assert not t.is_flat
    assert t.ancestors("sync.busy.waiting") == ("sync.busy", "sync")
    assert t.ancestors("sync") == ()
    assert inner_first(t, "sync.busy.waiting") == ("sync.busy.waiting", "sync.busy", "sync")
    assert t.atomic_under("sync") == ("sync.idle", "sync.busy.sending", "sync.busy.waiting")
    assert t.atomic_under("sync.idle") == ("sync.idle",)


def test_initial_configuration_enters_every_region_in_document_order():
    assert tree().initial_configuration() == (
        "lifecycle.open",
        "sync.idle",
        "push.left.a",
        "push.right.b",
    )


def test_domain_is_the_nearest_compound_ancestor_or_none():
    t = tree()
    assert t.domain("sync.busy.sending", "sync.busy.waiting") == "sync.busy"
    assert t.domain("sync.busy", "sync.busy.waiting") == "sync"
    assert t.domain("sync.idle", None) is None
    assert t.domain("sync.idle", "sync.idle") is None
    # Between regions of the parallel top: the top itself.
    assert t.domain("sync.idle", "lifecycle.closed") == TOP
    # Inside a parallel state, the nearest compound ancestor skips it.
    assert t.domain("push.left.a", "push.right.b") == TOP
    assert t.in_different_regions("push.left.a", "push.right.b")
    assert t.in_different_regions("sync.idle", "lifecycle.open")  # regions of the top
    assert not t.in_different_regions("sync.idle", "sync.busy.waiting")


def test_star_expands_to_atomic_states_that_are_not_final():
    spec = ChartSpec.model_validate(yaml.safe_load(ORDER))
    sources = expand_sources(spec, spec.transitions[0])
    assert "lifecycle.closed" not in sources
    assert "sync.busy" not in sources
    assert sources[:3] == ["lifecycle.open", "lifecycle.on_hold", "sync.idle"]


def test_a_flat_chart_is_flat_and_keeps_its_names():
    spec = ChartSpec.model_validate(
        {
            "name": "p",
            "entity_kind": "p",
            "initial": "a",
            "events": ["go"],
            "states": {"a": {"label": "A"}, "b": {"label": "B", "final": True}},
            "transitions": [{"event": "go", "source": "*", "target": "b"}],
        }
    )
    t = StateTree.from_spec(spec)
    assert t.is_flat
    assert t.regions() == (TOP,)
    assert t.initial_configuration() == ("a",)
    assert expand_sources(t, spec.transitions[0]) == ["a"]
