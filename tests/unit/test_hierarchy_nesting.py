"""Nested states, entry/exit order, crossing levels and parent transitions:
each test compares the configuration and the order of the actions with the
documented semantics (docs/statechart-semantics.md)."""

from __future__ import annotations

from engine.charts.hierarchy import StateTree
from engine.step import Outcome
from tests.unit.hierarchy_charts import Walker

REVIEW = """
events: [polish, approve, archive, cancel, edit]
initial: review
states:
  review:
    label: Review
    initial: editing
    entry: [log=+review]
    exit: [log=-review]
    states:
      editing:
        label: Editing
        initial: draft
        entry: [log=+editing]
        exit: [log=-editing]
        states:
          draft: {label: Draft, entry: [log=+draft], exit: [log=-draft]}
          ready: {label: Ready, entry: [log=+ready], exit: [log=-ready]}
      approved: {label: Approved, entry: [log=+approved], exit: [log=-approved]}
  archived: {label: Archived, final: true, entry: [log=+archived]}
  cancelled: {label: Cancelled, final: true, entry: [log=+cancelled]}
transitions:
  - event: polish
    source: review.editing.draft
    target: review.editing.ready
    actions: [log=polish]
  - {event: approve, source: review.editing.ready, target: review.approved, actions: [log=approve]}
  - {event: archive, source: review.editing.draft, target: archived, actions: [log=archive]}
  - {event: edit, source: review.approved, target: review.editing, actions: [log=edit]}
  - event: cancel
    source: review.editing.ready
    target: review.editing.draft
    guards: [child_wins]
    actions: [log=child cancel]
  - {event: cancel, source: review, target: cancelled, actions: [log=parent cancel]}
"""


def test_a_new_entity_enters_its_initial_states_outermost_first_before_the_event():
    walker = Walker(REVIEW, {"child_wins": True})
    assert walker.chart.initial == "review.editing.draft"
    result = walker.send("polish")
    assert result.outcome is Outcome.TRANSITIONED
    assert walker.state == "review.editing.ready"
    assert walker.take_trace() == ["+review", "+editing", "+draft", "-draft", "polish", "+ready"]
    assert result.entered == (
        "review",
        "review.editing",
        "review.editing.draft",
        "review.editing.ready",
    )
    assert result.fired == (0,)
    assert result.from_state == "review.editing.draft"


def test_a_transition_inside_a_compound_state_leaves_the_compound_untouched():
    walker = Walker(REVIEW, {"child_wins": True})
    walker.send("polish")
    walker.take_trace()
    result = walker.send("approve")
    assert walker.state == "review.approved"
    # Exits innermost first, the transition's actions, then entries; review stays.
    assert walker.take_trace() == ["-ready", "-editing", "approve", "+approved"]
    assert result.entered == ("review.approved",)


def test_crossing_levels_exits_every_level_innermost_first():
    walker = Walker(REVIEW, {"child_wins": True})
    walker.send("polish")
    walker.send("cancel")  # child transition (guard holds): back to draft
    walker.take_trace()
    walker.send("archive")
    assert walker.state == "archived"
    assert walker.take_trace() == ["-draft", "-editing", "-review", "archive", "+archived"]


def test_targeting_a_compound_state_enters_its_initial_child():
    walker = Walker(REVIEW, {"child_wins": True})
    for event in ("polish", "approve"):
        walker.send(event)
    walker.take_trace()
    result = walker.send("edit")
    assert walker.state == "review.editing.draft"
    assert walker.take_trace() == ["-approved", "edit", "+editing", "+draft"]
    assert result.entered == ("review.editing", "review.editing.draft")


def test_parent_transition_applies_in_every_descendant_after_the_child_own():
    child_first = Walker(REVIEW, {"child_wins": True})
    child_first.send("polish")
    child_first.take_trace()
    child_first.send("cancel")
    # The child's own transition on 'cancel' wins over its ancestor's.
    assert child_first.state == "review.editing.draft"
    assert child_first.take_trace() == ["-ready", "child cancel", "+draft"]

    parent_used = Walker(REVIEW, {"child_wins": False})
    parent_used.send("polish")
    parent_used.take_trace()
    result = parent_used.send("cancel")
    # The child's guard says no: the parent's transition applies (source 'review'
    # is exited: it is an external transition).
    assert parent_used.state == "cancelled"
    assert parent_used.take_trace() == [
        "-ready",
        "-editing",
        "-review",
        "parent cancel",
        "+cancelled",
    ]
    assert result.fired == (5,)


def test_an_outer_first_search_order_changes_the_winner():
    def outer_first(tree: StateTree, atomic: str) -> tuple[str, ...]:
        return (*reversed(tree.ancestors(atomic)), atomic)

    walker = Walker(REVIEW, {"child_wins": True}, search_order=outer_first)
    walker.send("polish")
    walker.send("cancel")
    assert walker.state == "cancelled"


def test_a_final_state_refuses_what_it_does_not_handle():
    walker = Walker(REVIEW, {"child_wins": True})
    walker.send("archive")
    result = walker.send("polish")
    assert result.outcome is Outcome.IGNORED
    assert result.reason == "archived is final"
    fresh = Walker(REVIEW, {"child_wins": True})
    refused = fresh.send("approve")
    assert refused.outcome is Outcome.IGNORED
    assert refused.reason == "approve is not allowed in state review.editing.draft"
    # Nothing kept: the initial entry of an ignored first event is not stored.
    assert fresh.entity.version == 0


def test_an_action_that_raises_keeps_nothing():
    walker = Walker(REVIEW.replace("entry: [log=+ready]", "entry: [boom]"), {"child_wins": True})
    result = walker.send("polish")
    assert result.outcome is Outcome.ERROR
    assert "boom" in (result.reason or "")
    assert walker.entity.version == 0
    assert walker.state == "review.editing.draft"
