"""Parallel regions and done events: configuration and action order against
the documented semantics (docs/statechart-semantics.md)."""

from __future__ import annotations

from engine.step import Outcome
from tests.unit.hierarchy_charts import Walker

ORDER = """
parallel: true
events: [pay, ship, sync, synced, fail, cancel]
states:
  lifecycle:
    label: Lifecycle
    initial: open
    entry: [log=+lifecycle]
    states:
      open: {label: Open, entry: [log=+open], exit: [log=-open]}
      paid:
        label: Paid
        initial: packing
        entry: [log=+paid]
        exit: [log=-paid]
        states:
          packing: {label: Packing, entry: [log=+packing], exit: [log=-packing]}
      shipped: {label: Shipped, final: true, entry: [log=+shipped]}
  sync:
    label: Sync
    initial: idle
    entry: [log=+sync]
    states:
      idle: {label: Idle, entry: [log=+idle], exit: [log=-idle]}
      busy: {label: Busy, entry: [log=+busy], exit: [log=-busy]}
      done: {label: Done, final: true, entry: [log=+done]}
transitions:
  - {event: pay, source: lifecycle.open, target: lifecycle.paid, actions: [log=pay]}
  - {event: pay, source: sync.idle, target: sync.busy, actions: [log=sync on pay]}
  - {event: ship, source: lifecycle.paid, target: lifecycle.shipped, actions: [put=shipped:yes]}
  - {event: synced, source: sync.busy, target: sync.done}
  - event: done.state.lifecycle
    source: sync.busy
    target: sync.idle
    actions: [log=lifecycle done]
  - {event: cancel, source: lifecycle, target: lifecycle.open, actions: [log=cancel]}
"""


def test_regions_are_all_entered_in_document_order():
    walker = Walker(ORDER)
    assert walker.chart.initial == "lifecycle.open,sync.idle"
    assert walker.chart.tree.regions() == ("lifecycle", "sync")


def test_every_region_sees_the_event_and_fires_in_one_microstep():
    walker = Walker(ORDER)
    result = walker.send("pay")
    assert result.outcome is Outcome.TRANSITIONED
    assert walker.state == "lifecycle.paid.packing,sync.busy"
    assert result.fired == (0, 1)
    assert walker.take_trace() == [
        # initial entry: outermost first, equal depth in document order
        "+lifecycle",
        "+sync",
        "+open",
        "+idle",
        # exits: equal depth in reverse document order
        "-idle",
        "-open",
        # the transitions' actions in document order
        "pay",
        "sync on pay",
        # entries: outermost first
        "+paid",
        "+busy",
        "+packing",
    ]
    assert result.entered[-3:] == ("lifecycle.paid", "sync.busy", "lifecycle.paid.packing")


def test_a_region_without_a_transition_stays_as_it_is():
    walker = Walker(ORDER)
    walker.send("pay")
    walker.send("synced")
    walker.take_trace()
    result = walker.send("ship")
    assert walker.state == "lifecycle.shipped,sync.done"
    assert walker.take_trace() == ["-packing", "-paid", "+shipped"]
    assert result.entity.data["shipped"] == "yes"


def test_a_compound_reaching_a_final_child_raises_its_done_event_in_the_same_step():
    walker = Walker(ORDER)
    walker.send("pay")
    walker.take_trace()
    result = walker.send("ship")
    # lifecycle reached its final child: 'done.state.lifecycle' moved sync back.
    assert walker.state == "lifecycle.shipped,sync.idle"
    assert result.fired == (2, 4)
    assert walker.take_trace() == [
        "-packing",
        "-paid",
        "+shipped",
        "-busy",
        "lifecycle done",
        "+idle",
    ]
    assert result.entered == ("lifecycle.shipped", "sync.idle")


PARALLEL_DONE = """
initial: work
events: [left, right, reset]
states:
  work:
    label: Work
    parallel: true
    states:
      a:
        label: A
        initial: doing
        states:
          doing: {label: Doing}
          finished: {label: Finished, final: true}
      b:
        label: B
        initial: doing
        states:
          doing: {label: Doing}
          finished: {label: Finished, final: true}
  over: {label: Over, entry: [log=+over]}
transitions:
  - {event: left, source: work.a.doing, target: work.a.finished, actions: [log=left]}
  - {event: right, source: work.b.doing, target: work.b.finished, actions: [log=right]}
  - event: done.state.work.a
    source: work
    actions: [log=a done]
  - event: done.state.work
    source: work
    target: over
    actions: [log=all done]
"""


def test_a_parallel_state_is_done_when_every_region_is():
    walker = Walker(PARALLEL_DONE)
    walker.send("left")
    assert walker.state == "work.a.finished,work.b.doing"
    # The region's own done event (a targetless transition here) fired too.
    assert walker.take_trace() == ["left", "a done"]
    result = walker.send("right")
    assert walker.state == "over"
    assert walker.take_trace() == ["right", "all done", "+over"]
    assert result.fired == (1, 3)


def test_done_events_that_never_settle_are_an_error():
    looping = """
initial: c
events: [go]
states:
  c:
    label: C
    initial: f
    states:
      f: {label: F, final: true}
  start: {label: Start}
transitions:
  - {event: go, source: c, target: c.f}
  - {event: done.state.c, source: c, target: c.f}
"""
    walker = Walker(looping)
    result = walker.send("go")
    assert result.outcome is Outcome.ERROR
    assert "done events did not settle" in (result.reason or "")


def test_two_regions_writing_one_data_key_in_one_step_is_an_error():
    clash = ORDER.replace("actions: [log=sync on pay]", "actions: [put=note:sync]").replace(
        "actions: [log=pay]", "actions: [put=note:pay]"
    )
    walker = Walker(clash)
    result = walker.send("pay")
    assert result.outcome is Outcome.ERROR
    assert result.reason == (
        "transitions[0] (event 'pay') and transitions[1] (event 'pay') run in parallel "
        "regions and both write data key 'note'"
    )
    assert walker.entity.version == 0


def test_a_region_targeting_its_own_child_exits_and_reenters_every_region():
    # SCXML's external transition: the domain of 'lifecycle' -> 'lifecycle.open'
    # is the nearest compound ancestor of both, the chart's (parallel) top.
    walker = Walker(ORDER)
    walker.send("pay")
    walker.take_trace()
    result = walker.send("cancel")
    assert walker.state == "lifecycle.open,sync.idle"
    assert walker.take_trace() == [
        "-packing",
        "-busy",
        "-paid",
        "cancel",
        "+lifecycle",
        "+sync",
        "+open",
        "+idle",
    ]
    assert result.entered == ("lifecycle", "sync", "lifecycle.open", "sync.idle")


def test_a_list_changed_in_place_by_two_regions_is_a_conflict_too():
    clash = ORDER.replace("actions: [log=sync on pay]", "actions: [append=seen]").replace(
        "actions: [log=pay]", "actions: [append=seen]"
    )
    result = Walker(clash).send("pay")
    assert result.outcome is Outcome.ERROR
    assert "both write data key 'seen'" in (result.reason or "")
    alone = ORDER.replace("actions: [log=sync on pay]", "actions: [append=seen]")
    fine = Walker(alone).send("pay")
    assert fine.outcome is Outcome.TRANSITIONED
    assert fine.entity.data["seen"] == ["sync.busy"]
