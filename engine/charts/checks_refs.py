"""Checks that every name a chart uses means something: events, state ids at
every level, guards (the built-in ``in_state`` too), actions of transitions and
of states' entry and exit, timers, refusals and version upgrades."""

from __future__ import annotations

from typing import Any

from engine.charts.checks_common import ANY_STATE, DONE_PREFIX, IN_STATE_GUARD, GuardRef, Report
from engine.charts.checks_states import ChartStates
from engine.charts.rule_payloads import payload_mismatch
from engine.charts.schema import ChartSpec, TransitionSpec, parse_duration
from engine.rules import Rules


def check_events(spec: ChartSpec, rules: Rules, report: Report) -> None:
    timer_events = {timer.event for timer in spec.timers}
    for index, event_type in enumerate(spec.events):
        if event_type.startswith(DONE_PREFIX):
            report(
                ("events", index),
                f"events[{index}]",
                f"{event_type!r} is a done event, raised inside a step: "
                "it is not listed in 'events'",
            )
        elif event_type not in rules.event_types and event_type not in timer_events:
            report(
                ("events", index),
                f"events[{index}]",
                f"event type {event_type!r} is not registered",
            )


def check_transition(
    states: ChartStates, rules: Rules, index: int, transition: TransitionSpec, report: Report
) -> None:
    event, path = transition.event, ("transitions", index)
    place = f"transitions[{index}] (event {event!r})"
    if event.startswith(DONE_PREFIX):
        _check_done_event(states, event, (*path, "event"), place, report)
    elif event not in states.spec.events:
        report((*path, "event"), place, f"event {event!r} is not in the chart's events")
    for source in transition.source:
        entry = states.entries.get(source)
        if source != ANY_STATE and entry is None:
            report((*path, "source"), place, states.unknown("source state", source))
        elif entry is not None and entry.kind == "final" and transition.target is not None:
            report(
                (*path, "source"),
                place,
                f"final state {source!r} cannot be left (only internal transitions, "
                "with no target, may start there)",
            )
    target = transition.target
    if target is not None and target not in states.entries:
        report((*path, "target"), place, states.unknown("target state", target))
    _check_history(states, transition, path, place, report)
    check_guards(states, rules, transition.guards, event, (*path, "guards"), place, report)
    check_actions(rules, transition.actions, event, (*path, "actions"), place, report)


def _check_done_event(
    states: ChartStates, event: str, path: tuple[Any, ...], place: str, report: Report
) -> None:
    state_id = event.removeprefix(DONE_PREFIX)
    entry = states.entries.get(state_id)
    if entry is None:
        report(path, place, f"done event {event!r}: {states.unknown('state', state_id)}")
    elif entry.kind not in ("compound", "parallel"):
        report(
            path,
            place,
            f"done event {event!r}: state {state_id!r} has no child states, so it is never "
            "done (only a compound or parallel state is)",
        )


def _check_history(
    states: ChartStates,
    transition: TransitionSpec,
    path: tuple[Any, ...],
    place: str,
    report: Report,
) -> None:
    if transition.history is None:
        return
    if transition.target is None:
        report(
            (*path, "history"),
            place,
            f"'history: {transition.history}' needs a target: the compound state entered "
            "as it was last left",
        )
        return
    entry = states.entries.get(transition.target)
    if entry is not None and entry.kind not in ("compound", "parallel"):
        report(
            (*path, "history"),
            place,
            f"'history: {transition.history}' on target {transition.target!r}, which has no "
            "child states: only a compound or parallel state has a history",
        )


def check_guards(
    states: ChartStates,
    rules: Rules,
    texts: list[str],
    event: str,
    path: tuple[Any, ...],
    place: str,
    report: Report,
) -> None:
    for guard_text in texts:
        ref = GuardRef.parse(guard_text)
        guard = rules.guards.get(ref.name)
        if guard is None and ref.name == IN_STATE_GUARD:
            _check_in_state(states, ref, path, place, report)
        elif guard is None:
            report(path, place, f"unknown guard {ref.name!r}")
        elif guard.takes_argument and ref.argument is None:
            need = f"guard {ref.name!r} needs an argument: '{ref.name}=value'"
            report(path, place, need)
        elif not guard.takes_argument and ref.argument is not None:
            report(path, place, f"guard {ref.name!r} takes no argument")
        elif mismatch := payload_mismatch(rules, "guard", ref.name, guard.func, event):
            report(path, place, mismatch)


def _check_in_state(
    states: ChartStates, ref: GuardRef, path: tuple[Any, ...], place: str, report: Report
) -> None:
    if ref.argument is None:
        report(path, place, f"guard {IN_STATE_GUARD!r} needs an argument: 'in_state=<state id>'")
    elif ref.argument not in states.entries:
        report(path, place, f"guard {str(ref)!r}: {states.unknown('state', ref.argument)}")


def check_actions(
    rules: Rules,
    texts: list[str],
    event: str | None,
    path: tuple[Any, ...],
    place: str,
    report: Report,
) -> None:
    """Action names and arguments; with ``event``, the payload each action reads
    (entry and exit actions run on whichever event enters or leaves: no event)."""
    for action_text in texts:
        name, has_arg, _ = action_text.partition("=")
        action = rules.actions.get(name.strip())
        if action is None:
            report(path, place, f"unknown action {name.strip()!r}")
        elif action.takes_argument != bool(has_arg):
            need = "needs an argument" if action.takes_argument else "takes no argument"
            report(path, place, f"action {name.strip()!r} {need}")
        elif event is not None and (
            mismatch := payload_mismatch(rules, "action", action.name, action.func, event)
        ):
            report(path, place, mismatch)


def check_entry_exit(states: ChartStates, rules: Rules, report: Report) -> None:
    for entry in states.entries.values():
        for field_name in ("entry", "exit"):
            texts: list[str] = getattr(entry.spec, field_name)
            for index, text in enumerate(texts):
                place = f"state {entry.id!r} ({field_name} action {index})"
                check_actions(rules, [text], None, (*entry.path, field_name, index), place, report)


def check_timers(states: ChartStates, report: Report) -> None:
    for index, timer in enumerate(states.spec.timers):
        path = ("timers", index)
        place = f"timers[{index}] ({timer.name!r})"
        for state_id in timer.state:
            if state_id not in states.entries:
                report((*path, "state"), place, states.unknown("state", state_id))
        if timer.event not in states.spec.events:
            report((*path, "event"), place, f"event {timer.event!r} is not in the chart's events")
        if (timer.after is None) == (timer.at is None):
            report(path, place, "a timer needs exactly one of 'after' or 'at'")
        for field_name in ("after", "lead"):
            value = getattr(timer, field_name)
            if value is not None:
                try:
                    parse_duration(value)
                except ValueError as err:
                    report((*path, field_name), place, str(err))


def check_refusals(states: ChartStates, report: Report) -> None:
    for index, refusal in enumerate(states.spec.refusals):
        path = ("refusals", index)
        place = f"refusals[{index}] (event {refusal.event!r})"
        if refusal.event not in states.spec.events:
            report((*path, "event"), place, f"event {refusal.event!r} is not in the chart's events")
        for source in refusal.source:
            if source not in states.entries:
                report((*path, "source"), place, states.unknown("state", source))


def check_upgrades(states: ChartStates, rules: Rules, report: Report) -> None:
    spec = states.spec
    for index, upgrade in enumerate(spec.upgrades):
        path, place = ("upgrades", index), f"upgrades[{index}]"
        if upgrade.from_version >= spec.version:
            report(
                (*path, "from_version"),
                place,
                f"from_version {upgrade.from_version} is not lower than the chart's "
                f"version {spec.version}",
            )
        for old, new in upgrade.states.items():
            if new not in states.entries:
                report(
                    (*path, "states", old),
                    place,
                    f"{old!r} is renamed to {new!r}, which is not a state of version "
                    f"{spec.version}{states.hint(new)}",
                )
        if upgrade.data is not None and upgrade.data not in rules.upgrades:
            report(
                (*path, "data"),
                place,
                f"unknown upgrade {upgrade.data!r} (register it with Rules.upgrade)",
            )
