"""ENG-1 for nested and parallel charts: every problem at once, each with the
file, the line and the place a chart author looks at."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine import ChartLoadError, ChartProblem, Rules, StepContext, load_chart

SHIPMENT = """
name: shipment
entity_kind: shipment
version: 2
parallel: true
states:
  lifecycle:
    label: Lifecycle
    initial: open
    states:
      open: {label: Open}
      on_hold:
        label: On hold
        entry: [note=held]
        exit: [note=released]
      closed: {label: Closed, final: true}
  sync:
    label: Sync
    initial: idle
    states:
      idle: {label: Idle}
      syncing:
        label: Syncing
        initial: sending
        states:
          sending: {label: Sending}
          waiting: {label: Waiting}
      failed: {label: Failed}
events: [ship.hold, ship.release, ship.close, ship.push, ship.sent, ship.fail, ship.retry]
transitions:
  - event: ship.hold
    source: lifecycle.open
    target: lifecycle.on_hold
  - event: ship.release
    source: lifecycle.on_hold
    target: lifecycle.open
  - event: ship.close
    source: lifecycle
    target: lifecycle.closed
  - event: ship.push
    source: sync.idle
    target: sync.syncing
    guards: ["!in_state=lifecycle.on_hold"]
  - event: ship.sent
    source: sync.syncing.sending
    target: sync.syncing.waiting
  - event: ship.fail
    source: sync.syncing
    target: sync.failed
    actions: [count_failure]
  - event: ship.retry
    source: sync.failed
    target: sync.syncing
    history: deep
  - event: done.state.lifecycle
    source: sync
    target: sync.idle
timers:
  - name: push_timeout
    state: sync.syncing
    after: 15m
    event: ship.fail
refusals:
  - event: ship.push
    source: lifecycle.closed
    reason: the shipment is closed
upgrades:
  - from_version: 1
    states: {failed: sync.failed}
"""

rules = Rules()
EVENTS = ("hold", "release", "close", "push", "sent", "fail", "retry")
rules.register_events({f"ship.{name}": None for name in EVENTS})


@rules.action("note", takes_argument=True)
def note(ctx: StepContext, text: str) -> None:
    ctx.data.setdefault("notes", []).append(text)


@rules.action("count_failure")
def count_failure(ctx: StepContext) -> None:
    ctx.data["failures"] = ctx.data.get("failures", 0) + 1


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "shipment.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def problems(tmp_path: Path, text: str) -> list[ChartProblem]:
    path = write(tmp_path, text)
    with pytest.raises(ChartLoadError) as caught:
        load_chart(path, rules)
    assert all(p.file == str(path) for p in caught.value.problems), "every problem names the file"
    return caught.value.problems


def line_of(text: str, snippet: str, after: str = "") -> int:
    """The 1-based line of the first line holding ``snippet`` (after the line holding ``after``)."""
    lines = textwrap.dedent(text).splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    return next(i for i, line in enumerate(lines) if i >= start and snippet in line) + 1


def one(tmp_path: Path, text: str) -> ChartProblem:
    found = problems(tmp_path, text)
    assert len(found) == 1, [str(p) for p in found]
    return found[0]


def test_a_nested_parallel_chart_with_every_feature_loads(tmp_path):
    loaded = load_chart(write(tmp_path, SHIPMENT), rules)
    assert loaded.spec.parallel and set(loaded.spec.states) == {"lifecycle", "sync"}


# --- the shape of states ------------------------------------------------------


def test_eng1_a_state_name_that_is_not_an_identifier(tmp_path):
    text = SHIPMENT.replace("waiting: {label: Waiting}", "Waiting-Ack: {label: Waiting}")
    text = text.replace("sync.syncing.waiting", "sync.syncing.sending")
    found = problems(tmp_path, text)
    [bad_name] = [p for p in found if "is not an identifier" in p.message]
    assert bad_name.place == "state 'sync.syncing.Waiting-Ack'"
    assert bad_name.line == line_of(text, "Waiting-Ack:")
    assert "'Waiting-Ack' is not an identifier" in bad_name.message


def test_eng1_a_compound_state_without_initial(tmp_path):
    text = SHIPMENT.replace("        initial: sending\n", "")
    problem = one(tmp_path, text)
    assert problem.place == "state 'sync.syncing'"
    assert problem.line == line_of(text, "syncing:")
    assert problem.message == "a compound state needs an initial child ('initial:')"


def test_eng1_an_initial_that_names_no_child(tmp_path):
    text = SHIPMENT.replace("initial: sending", "initial: waitng")
    problem = one(tmp_path, text)
    assert (problem.place, problem.line) == (
        "state 'sync.syncing'",
        line_of(text, "initial: waitng"),
    )
    assert problem.message == (
        "initial 'waitng' is not a child of 'sync.syncing' (its children: sending, waiting)"
    )


def test_eng1_initial_on_a_parallel_state_and_on_an_atomic_one(tmp_path):
    text = SHIPMENT.replace(
        "  sync:\n    label: Sync\n    initial: idle",
        "  sync:\n    label: Sync\n    parallel: true\n    initial: idle",
    ).replace("      failed: {label: Failed}", "      failed: {label: Failed, initial: idle}")
    found = {(p.place, p.line, p.message) for p in problems(tmp_path, text)}
    assert (
        "state 'sync'",
        line_of(text, "initial: idle"),
        "a parallel state has no 'initial': every region (child state) is entered",
    ) in found
    assert (
        "state 'sync.failed'",
        line_of(text, "failed: {label"),
        "'initial' on a state with no child states",
    ) in found


def test_eng1_a_final_state_with_children(tmp_path):
    text = SHIPMENT.replace(
        "      closed: {label: Closed, final: true}",
        "      closed:\n        label: Closed\n        final: true\n        initial: archived\n"
        "        states:\n          archived: {label: Archived}",
    )
    problem = one(tmp_path, text)
    assert (problem.place, problem.line) == (
        "state 'lifecycle.closed'",
        line_of(text, "final: true"),
    )
    assert problem.message == "a final state cannot have child states"


def test_eng1_a_parallel_state_with_one_region(tmp_path):
    text = SHIPMENT.replace(
        "          waiting: {label: Waiting}",
        "          waiting:\n            label: Waiting\n            parallel: true\n"
        "            states:\n              ack: {label: Ack}",
    )
    problem = one(tmp_path, text)
    assert problem.place == "state 'sync.syncing.waiting'"
    assert problem.line == line_of(text, "parallel: true", after="waiting:")
    assert problem.message == "a parallel state needs at least 2 regions (child states); it has 1"


def test_eng1_a_parallel_chart_takes_no_initial(tmp_path):
    text = SHIPMENT.replace("parallel: true\n", "parallel: true\ninitial: lifecycle\n", 1)
    problem = one(tmp_path, text)
    assert (problem.place, problem.line) == ("initial", line_of(text, "initial: lifecycle"))
    assert "a parallel chart has no 'initial'" in problem.message


def test_eng1_a_chart_that_is_not_parallel_needs_its_initial(tmp_path):
    text = SHIPMENT.replace("parallel: true\n", "", 1)
    found = problems(tmp_path, text)
    assert [(p.place, p.line, p.message) for p in found] == [
        ("chart", 1, "missing initial state ('initial:')")
    ]


# --- state ids at every level -------------------------------------------------


def test_eng1_unknown_nested_ids_get_a_did_you_mean_hint(tmp_path):
    text = (
        SHIPMENT.replace("source: sync.failed", "source: failed")
        .replace("target: sync.failed", "target: failed")
        .replace("state: sync.syncing", "state: syncing")
        .replace("source: lifecycle.closed", "source: closed")
    )
    found = [(p.place, p.line, p.message) for p in problems(tmp_path, text)]
    assert found == [
        (
            "transitions[5] (event 'ship.fail')",
            line_of(text, "target: failed"),
            "unknown target state 'failed' (did you mean 'sync.failed'?)",
        ),
        (
            "transitions[6] (event 'ship.retry')",
            line_of(text, "source: failed"),
            "unknown source state 'failed' (did you mean 'sync.failed'?)",
        ),
        (
            "timers[0] ('push_timeout')",
            line_of(text, "state: syncing"),
            "unknown state 'syncing' (did you mean 'sync.syncing'?)",
        ),
        (
            "refusals[0] (event 'ship.push')",
            line_of(text, "source: closed"),
            "unknown state 'closed' (did you mean 'lifecycle.closed'?)",
        ),
    ]


def test_eng1_no_hint_when_a_bare_name_matches_several_nested_ids(tmp_path):
    text = SHIPMENT.replace(
        "      failed: {label: Failed}", "      failed: {label: Failed}\n      open: {label: Open}"
    ).replace("source: lifecycle.open", "source: open")
    found = [p.message for p in problems(tmp_path, text)]
    assert "unknown source state 'open'" in found


def test_eng1_a_misspelt_id_gets_the_near_one(tmp_path):
    text = SHIPMENT.replace("target: sync.failed", "target: sync.faild")
    problem = one(tmp_path, text)
    assert problem.message == "unknown target state 'sync.faild' (did you mean 'sync.failed'?)"


# --- reachability -------------------------------------------------------------


def test_eng1_an_unreachable_nested_state_is_reported_once_at_its_top(tmp_path):
    text = SHIPMENT.replace(
        "      failed: {label: Failed}",
        "      failed: {label: Failed}\n      parked:\n        label: Parked\n"
        "        initial: cold\n        states:\n          cold: {label: Cold}",
    )
    problem = one(tmp_path, text)
    assert (problem.place, problem.line) == ("state 'sync.parked'", line_of(text, "parked:"))
    assert "unreachable" in problem.message


def test_eng1_a_nested_state_only_a_transition_enters_is_reachable(tmp_path):
    # `sync.failed` is no region's initial: ship.fail from `sync.syncing` enters it.
    load_chart(write(tmp_path, SHIPMENT), rules)
    text = SHIPMENT.replace("    source: sync.syncing\n", "    source: sync.failed\n")
    text = text.replace(
        "  - event: ship.retry\n    source: sync.failed",
        "  - event: ship.retry\n    source: sync.idle",
    )
    found = [(p.place, p.message) for p in problems(tmp_path, text)]
    assert found == [("state 'sync.failed'", found[0][1])]
    assert "unreachable" in found[0][1]


def test_eng1_entering_one_region_enters_the_others(tmp_path):
    """A state inside one region of a parallel state makes its sibling regions
    active at their initial states: those are reachable too."""
    text = SHIPMENT.replace(
        "      failed: {label: Failed}",
        "      failed: {label: Failed}\n      both:\n        label: Both\n"
        "        parallel: true\n        states:\n"
        "          left: {label: Left, initial: a, states: {a: {label: A}, b: {label: B}}}\n"
        "          right: {label: Right, initial: c, states: {c: {label: C}}}",
    ).replace("    target: sync.idle\n", "    target: sync.both.left.b\n")
    problem = one(tmp_path, text)
    # `left.a` is left's initial but the only entry goes straight to `left.b`.
    assert problem.place == "state 'sync.both.left.a'"


# --- transitions --------------------------------------------------------------


def test_eng1_history_needs_a_compound_target(tmp_path):
    text = SHIPMENT.replace(
        "    target: sync.syncing\n    history: deep", "    target: sync.idle\n    history: deep"
    )
    text = text.replace(
        "  - event: ship.hold\n    source: lifecycle.open\n    target: lifecycle.on_hold",
        "  - event: ship.hold\n    source: lifecycle.open\n    history: shallow",
    )
    found = [(p.place, p.line, p.message) for p in problems(tmp_path, text)]
    assert (
        "transitions[0] (event 'ship.hold')",
        line_of(text, "history: shallow"),
        "'history: shallow' needs a target: the compound state entered as it was last left",
    ) in found
    assert (
        "transitions[6] (event 'ship.retry')",
        line_of(text, "history: deep"),
        "'history: deep' on target 'sync.idle', which has no child states: "
        "only a compound or parallel state has a history",
    ) in found


def test_eng1_two_transitions_from_one_nested_state_conflict(tmp_path):
    text = SHIPMENT + "  - event: ship.fail\n    source: sync.syncing\n    target: sync.idle\n"
    found = problems(tmp_path, _move_tail_transition(text))
    [problem] = found
    assert problem.place == "transitions[5] and transitions[8] (event 'ship.fail')"
    assert problem.message.startswith("both can fire from state 'sync.syncing'")


def test_eng1_a_parent_and_a_child_transition_are_no_conflict(tmp_path):
    """The child's transition wins by design (inner before outer)."""
    text = (
        SHIPMENT + "  - event: ship.fail\n    source: sync.syncing.waiting\n    target: sync.idle\n"
    )
    load_chart(write(tmp_path, _move_tail_transition(text)), rules)


def _move_tail_transition(text: str) -> str:
    """Put a transition appended at the end of the chart back under `transitions:`."""
    body, _, extra = text.rpartition("\n  - event:")
    head, _, rest = body.partition("\ntimers:")
    return f"{head}\n  - event:{extra.rstrip()}\ntimers:{rest}\n"


# --- done events, in_state, entry and exit ------------------------------------


def test_eng1_done_events_name_a_compound_or_parallel_state(tmp_path):
    text = SHIPMENT.replace("event: done.state.lifecycle", "event: done.state.lifecycle.open")
    problem = one(tmp_path, text)
    assert problem.place == "transitions[7] (event 'done.state.lifecycle.open')"
    assert problem.line == line_of(text, "done.state.lifecycle.open")
    assert problem.message == (
        "done event 'done.state.lifecycle.open': state 'lifecycle.open' has no child states, "
        "so it is never done (only a compound or parallel state is)"
    )


def test_eng1_a_done_event_of_an_unknown_state_gets_a_hint(tmp_path):
    text = SHIPMENT.replace("event: done.state.lifecycle", "event: done.state.syncing")
    problem = one(tmp_path, text)
    assert problem.message == (
        "done event 'done.state.syncing': unknown state 'syncing' (did you mean 'sync.syncing'?)"
    )


def test_eng1_done_events_are_not_listed_in_events(tmp_path):
    text = SHIPMENT.replace("ship.retry]", "ship.retry, done.state.lifecycle]")
    problem = one(tmp_path, text)
    assert (problem.place, problem.line) == ("events[7]", line_of(text, "events: ["))
    assert problem.message == (
        "'done.state.lifecycle' is a done event, raised inside a step: it is not listed in 'events'"
    )


def test_eng1_in_state_must_name_a_known_state(tmp_path):
    text = SHIPMENT.replace('"!in_state=lifecycle.on_hold"', '"!in_state=on_hold", in_state')
    found = [(p.place, p.line, p.message) for p in problems(tmp_path, text)]
    where = ("transitions[3] (event 'ship.push')", line_of(text, "in_state=on_hold"))
    assert found == [
        (
            *where,
            "guard '!in_state=on_hold': unknown state 'on_hold' "
            "(did you mean 'lifecycle.on_hold'?)",
        ),
        (*where, "guard 'in_state' needs an argument: 'in_state=<state id>'"),
    ]


def test_eng1_entry_and_exit_actions_are_checked_like_transition_actions(tmp_path):
    text = SHIPMENT.replace("entry: [note=held]", "entry: [note]").replace(
        "exit: [note=released]", "exit: [count_failure, nota=released]"
    )
    found = [(p.place, p.line, p.message) for p in problems(tmp_path, text)]
    assert found == [
        (
            "state 'lifecycle.on_hold' (entry action 0)",
            line_of(text, "entry: [note]"),
            "action 'note' needs an argument",
        ),
        (
            "state 'lifecycle.on_hold' (exit action 1)",
            line_of(text, "exit: [count_failure"),
            "unknown action 'nota'",
        ),
    ]


# --- versions -----------------------------------------------------------------


def test_eng1_an_upgrade_comes_from_an_older_version_into_known_states(tmp_path):
    text = SHIPMENT.replace("from_version: 1", "from_version: 2").replace(
        "{failed: sync.failed}", "{failed: sync.failure}"
    )
    found = [(p.place, p.line, p.message) for p in problems(tmp_path, text)]
    assert found == [
        (
            "upgrades[0]",
            line_of(text, "from_version: 2"),
            "from_version 2 is not lower than the chart's version 2",
        ),
        (
            "upgrades[0]",
            line_of(text, "sync.failure"),
            "'failed' is renamed to 'sync.failure', which is not a state of version 2 "
            "(did you mean 'sync.failed'?)",
        ),
    ]


# --- all at once --------------------------------------------------------------


def test_eng1_every_problem_of_a_nested_chart_is_reported_at_once(tmp_path):
    text = (
        SHIPMENT.replace("        initial: sending\n", "")
        .replace("target: sync.failed", "target: failed")
        .replace("history: deep", "history: deep\n    guards: [in_state=nowhere]")
        .replace("exit: [note=released]", "exit: [nope]")
        .replace("state: sync.syncing", "state: sync.syncin")
        .replace("from_version: 1", "from_version: 3")
        .replace("event: done.state.lifecycle", "event: done.state.sync.idle")
    )
    found = problems(tmp_path, text)
    places = [p.place for p in found]
    assert places == [
        "state 'sync.syncing'",
        "transitions[5] (event 'ship.fail')",
        "transitions[6] (event 'ship.retry')",
        "transitions[7] (event 'done.state.sync.idle')",
        "state 'lifecycle.on_hold' (exit action 0)",
        "timers[0] ('push_timeout')",
        "upgrades[0]",
    ]
    assert all(p.line is not None and p.line > 1 for p in found), "each names its line"
