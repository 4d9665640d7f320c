"""Shallow and deep history, timers on compound states, the in_state guard and
a new entity's initial entry, against docs/statechart-semantics.md."""

from __future__ import annotations

from engine.rules import TimerRequest
from engine.step import Outcome
from tests.unit.hierarchy_charts import Walker

WORK = """
initial: idle
events: [start, next, deeper, pause, resume, resume_deep, restart, tick, finish, check]
states:
  idle: {label: Idle}
  work:
    label: Work
    initial: phase1
    entry: [log=+work]
    exit: [log=-work]
    states:
      phase1:
        label: Phase 1
        initial: a
        states:
          a: {label: A, entry: [log=+a]}
          b: {label: B, entry: [log=+b]}
      phase2: {label: Phase 2, entry: [log=+phase2]}
  paused: {label: Paused}
  done: {label: Done, final: true}
transitions:
  - {event: start, source: idle, target: work}
  - {event: deeper, source: work.phase1.a, target: work.phase1.b}
  - {event: next, source: work.phase1, target: work.phase2}
  - {event: pause, source: work, target: paused}
  - {event: resume, source: paused, target: work, history: shallow}
  - {event: resume_deep, source: paused, target: work, history: deep}
  - {event: restart, source: paused, target: work}
  - {event: tick, source: work, actions: [log=tick]}
  - {event: finish, source: work, target: done}
  - {event: check, source: idle, target: paused, guards: [in_state=idle]}
  - {event: check, source: paused, target: done, guards: [in_state=work]}
timers:
  - {name: work_deadline, state: work, event: finish, after: 60}
"""


def walked(*events: str) -> Walker:
    walker = Walker(WORK)
    for event in events:
        walker.send(event)
    walker.take_trace()
    return walker


def test_shallow_history_enters_the_last_child_at_its_initial_states():
    walker = walked("start", "deeper", "pause")
    assert walker.entity.history == {"work": ["work.phase1.b"]}
    result = walker.send("resume")
    assert walker.state == "work.phase1.a"
    assert walker.take_trace() == ["+work", "+a"]
    assert result.entered == ("work@history", "work.phase1", "work.phase1.a")


def test_deep_history_enters_the_exact_atomic_states_last_active():
    walker = walked("start", "deeper", "pause")
    result = walker.send("resume_deep")
    assert walker.state == "work.phase1.b"
    assert walker.take_trace() == ["+work", "+b"]
    assert result.entered == ("work@history", "work.phase1", "work.phase1.b")


def test_history_follows_the_last_visit_and_the_first_time_is_the_initial_state():
    first = walked("start", "pause", "restart", "pause")
    first.entity.history = None
    first.send("resume_deep")
    assert first.state == "work.phase1.a"  # no record yet: initial states
    later = walked("start", "next", "pause")
    later.send("resume")
    assert later.state == "work.phase2"
    assert later.take_trace() == ["+work", "+phase2"]


def test_a_compound_state_timer_is_armed_on_entry_kept_inside_and_cancelled_on_leaving():
    walker = Walker(WORK)
    entering = walker.send("start", at=1000.0)
    assert entering.timers == [TimerRequest("work_deadline", 1060.0, "finish")]
    inside = walker.send("deeper", at=1010.0)
    assert inside.timers == []  # moving inside 'work' keeps the deadline
    targetless = walker.send("tick", at=1020.0)
    assert targetless.timers == []
    leaving = walker.send("pause", at=1030.0)
    assert leaving.timers == [TimerRequest("work_deadline", None)]
    back = walker.send("resume", at=1040.0)
    assert back.timers == [TimerRequest("work_deadline", 1100.0, "finish")]


def test_reentering_a_compound_state_rearms_its_timer():
    walker = walked("start")
    again = walker.send("next", at=2000.0)  # work.phase1 -> work.phase2: work stays
    assert again.timers == []
    reentry = Walker(WORK.replace("source: work.phase1, target", "source: work, target"))
    reentry.send("start", at=1000.0)
    moved = reentry.send("next", at=2000.0)  # work -> work.phase2 exits and re-enters work
    assert moved.timers == [TimerRequest("work_deadline", 2060.0, "finish")]


def test_a_new_entity_arms_the_timers_of_its_initial_states():
    starts_working = WORK.replace("initial: idle", "initial: work")
    walker = Walker(starts_working)
    result = walker.send("tick", at=500.0)
    assert walker.state == "work.phase1.a"
    assert walker.take_trace() == ["+work", "+a", "tick"]
    assert result.timers == [TimerRequest("work_deadline", 560.0, "finish")]


def test_in_state_guard_reads_the_configuration_the_step_started_from():
    walker = Walker(WORK)
    assert walker.send("check").outcome is Outcome.TRANSITIONED
    assert walker.state == "paused"
    refused = walker.send("check")
    assert refused.outcome is Outcome.IGNORED
    assert refused.reason == "no transition for check from paused matches (in_state=work)"
