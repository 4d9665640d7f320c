"""Load chart files and check them (ENG-1).

Every problem found is reported at once, each with the file, the line and the
place in the chart (``transitions[3] (event 'x')``, ``state 'shipped'``), so a
chart author fixes a file in one pass instead of one error per run.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from engine.charts.rule_payloads import payload_mismatch
from engine.charts.schema import ChartSpec, TransitionSpec, parse_duration
from engine.rules import Rules

ANY_STATE = "*"


@dataclass(frozen=True, slots=True)
class ChartProblem:
    file: str
    line: int | None
    place: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.place}: {self.message}"


class ChartLoadError(Exception):
    """A chart file that cannot be used; ``problems`` lists everything wrong with it."""

    def __init__(self, problems: list[ChartProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class GuardRef:
    name: str
    argument: str | None = None
    negated: bool = False

    @classmethod
    def parse(cls, text: str) -> GuardRef:
        text = text.strip()
        negated = text.startswith("!")
        if negated:
            text = text[1:].strip()
        name, _, argument = text.partition("=")
        return cls(name.strip(), argument.strip() if "=" in text else None, negated)

    def excludes(self, other: GuardRef) -> bool:
        """True when this guard and ``other`` can never both hold."""
        if self.name != other.name:
            return False
        if self.argument is None and other.argument is None:
            return self.negated != other.negated
        mine, theirs = self.alternatives(), other.alternatives()
        if self.negated and other.negated:
            return False
        if self.negated or other.negated:
            return mine == theirs
        return not (mine & theirs)

    def alternatives(self) -> frozenset[str]:
        """``g=a|b`` holds for a or b: two such guards exclude each other when
        their alternatives do not overlap."""
        return frozenset(part.strip() for part in (self.argument or "").split("|"))

    def __str__(self) -> str:
        text = ("!" if self.negated else "") + self.name
        return text if self.argument is None else f"{text}={self.argument}"


@dataclass(frozen=True, slots=True)
class LoadedChart:
    spec: ChartSpec
    file: str
    lines: dict[tuple[Any, ...], int]


class _LineLoader(yaml.SafeLoader):
    """The SafeLoader; `_construct` walks its nodes itself to keep line numbers
    and to refuse duplicate keys (plain YAML silently keeps the last one)."""


def _construct(
    node: yaml.Node,
    path: tuple[Any, ...],
    lines: dict[tuple[Any, ...], int],
    problems: list[ChartProblem],
    file: str,
    loader: yaml.SafeLoader,
) -> Any:
    """Build plain Python values from YAML nodes, remembering each path's line."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            if key in result:
                problems.append(
                    ChartProblem(
                        file, key_node.start_mark.line + 1, _place(path), f"duplicate key {key!r}"
                    )
                )
            result[key] = _construct(value_node, (*path, key), lines, problems, file, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(item, (*path, index), lines, problems, file, loader)
            for index, item in enumerate(node.value)
        ]
    return loader.construct_object(node)


def _place(path: tuple[Any, ...]) -> str:
    if not path:
        return "chart"
    text = str(path[0])
    for part in path[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def read_chart_file(path: str | Path) -> LoadedChart:
    """Parse a chart file's YAML and schema; semantic checks come in `check_chart`."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ChartLoadError([ChartProblem(file, None, "chart", f"cannot read: {err}")]) from None
    try:
        root = yaml.compose(text, Loader=_LineLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise ChartLoadError(
            [ChartProblem(file, line, "chart", f"not valid YAML: {err}")]
        ) from None
    if root is None:
        raise ChartLoadError([ChartProblem(file, None, "chart", "the file is empty")])
    lines: dict[tuple[Any, ...], int] = {}
    problems: list[ChartProblem] = []
    doc = _construct(root, (), lines, problems, file, _LineLoader(""))
    if not isinstance(doc, dict):
        raise ChartLoadError([ChartProblem(file, 1, "chart", "a chart must be a mapping")])
    if "initial" not in doc or doc.get("initial") in (None, ""):
        problems.append(ChartProblem(file, 1, "chart", "missing initial state ('initial:')"))
    try:
        spec = ChartSpec.model_validate(doc)
    except ValidationError as err:
        for item in err.errors(include_url=False):
            loc = tuple(item["loc"])
            problems.append(ChartProblem(file, _nearest_line(lines, loc), _place(loc), item["msg"]))
        raise ChartLoadError(problems) from None
    if problems:
        raise ChartLoadError(problems)
    return LoadedChart(spec, file, lines)


def _nearest_line(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())


def expand_sources(spec: ChartSpec, transition: TransitionSpec) -> list[str]:
    if ANY_STATE in transition.source:
        return [name for name, state in spec.states.items() if not state.final]
    return list(transition.source)


# Records one problem: (path in the YAML document, place shown, message).
Report = Callable[[tuple[Any, ...], str, str], None]


def check_chart(chart: LoadedChart, rules: Rules) -> None:
    """The semantic checks of ENG-1; raise `ChartLoadError` listing every problem."""
    spec = chart.spec
    problems: list[ChartProblem] = []

    def report(path: tuple[Any, ...], place: str, message: str) -> None:
        problems.append(ChartProblem(chart.file, _nearest_line(chart.lines, path), place, message))

    if spec.initial is not None and spec.initial not in spec.states:
        report(("initial",), "initial", f"unknown state {spec.initial!r}")
    _check_events(spec, rules, report)
    for index, transition in enumerate(spec.transitions):
        _check_transition(spec, rules, index, transition, report)
    _check_timers(spec, report)
    _check_refusals(spec, report)
    if not problems and spec.initial in spec.states:
        _check_reachable(spec, report)
        _check_conflicts(spec, report)
    if problems:
        raise ChartLoadError(problems)


def _check_events(spec: ChartSpec, rules: Rules, report: Report) -> None:
    timer_events = {timer.event for timer in spec.timers}
    for index, event_type in enumerate(spec.events):
        if event_type not in rules.event_types and event_type not in timer_events:
            report(
                ("events", index),
                f"events[{index}]",
                f"event type {event_type!r} is not registered",
            )


def _check_transition(
    spec: ChartSpec, rules: Rules, index: int, transition: TransitionSpec, report: Report
) -> None:
    states, event = spec.states, transition.event
    path = ("transitions", index)
    place = f"transitions[{index}] (event {event!r})"
    if transition.event not in spec.events:
        report((*path, "event"), place, f"event {transition.event!r} is not in the chart's events")
    for source in transition.source:
        if source != ANY_STATE and source not in states:
            report((*path, "source"), place, f"unknown source state {source!r}")
        elif source != ANY_STATE and states[source].final and transition.target is not None:
            report(
                (*path, "source"),
                place,
                f"final state {source!r} cannot be left (only internal transitions, "
                "with no target, may start there)",
            )
    if transition.target is not None and transition.target not in states:
        report((*path, "target"), place, f"unknown target state {transition.target!r}")
    for guard_text in transition.guards:
        ref = GuardRef.parse(guard_text)
        guard = rules.guards.get(ref.name)
        if guard is None:
            report((*path, "guards"), place, f"unknown guard {ref.name!r}")
        elif guard.takes_argument and ref.argument is None:
            need = f"guard {ref.name!r} needs an argument: '{ref.name}=value'"
            report((*path, "guards"), place, need)
        elif not guard.takes_argument and ref.argument is not None:
            report((*path, "guards"), place, f"guard {ref.name!r} takes no argument")
        elif mismatch := payload_mismatch(rules, "guard", ref.name, guard.func, event):
            report((*path, "guards"), place, mismatch)
    for action_text in transition.actions:
        name, has_arg, _ = action_text.partition("=")
        action = rules.actions.get(name.strip())
        if action is None:
            report((*path, "actions"), place, f"unknown action {name.strip()!r}")
        elif action.takes_argument != bool(has_arg):
            need = "needs an argument" if action.takes_argument else "takes no argument"
            report((*path, "actions"), place, f"action {name.strip()!r} {need}")
        elif mismatch := payload_mismatch(
            rules, "action", action.name, action.func, transition.event
        ):
            report((*path, "actions"), place, mismatch)


def _check_timers(spec: ChartSpec, report: Report) -> None:
    for index, timer in enumerate(spec.timers):
        path = ("timers", index)
        place = f"timers[{index}] ({timer.name!r})"
        for state_name in timer.state:
            if state_name not in spec.states:
                report((*path, "state"), place, f"unknown state {state_name!r}")
        if timer.event not in spec.events:
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


def _check_refusals(spec: ChartSpec, report: Report) -> None:
    for index, refusal in enumerate(spec.refusals):
        path = ("refusals", index)
        place = f"refusals[{index}] (event {refusal.event!r})"
        if refusal.event not in spec.events:
            report((*path, "event"), place, f"event {refusal.event!r} is not in the chart's events")
        for source in refusal.source:
            if source not in spec.states:
                report((*path, "source"), place, f"unknown state {source!r}")


def _check_reachable(spec: ChartSpec, report: Report) -> None:
    assert spec.initial is not None
    seen = {spec.initial}
    queue = deque([spec.initial])
    edges: dict[str, set[str]] = {}
    for transition in spec.transitions:
        if transition.target is None:
            continue
        for source in expand_sources(spec, transition):
            edges.setdefault(source, set()).add(transition.target)
    while queue:
        for nxt in edges.get(queue.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    for name in spec.states:
        if name not in seen:
            report(
                ("states", name),
                f"state {name!r}",
                f"unreachable from the initial state {spec.initial!r}",
            )


def _check_conflicts(spec: ChartSpec, report: Report) -> None:
    indexed = list(enumerate(spec.transitions))
    for (i, first), (j, second) in combinations(indexed, 2):
        if first.event != second.event:
            continue
        shared = sorted(set(expand_sources(spec, first)) & set(expand_sources(spec, second)))
        if not shared:
            continue
        first_guards = [GuardRef.parse(g) for g in first.guards]
        second_guards = [GuardRef.parse(g) for g in second.guards]
        if any(a.excludes(b) for a in first_guards for b in second_guards):
            continue
        report(
            ("transitions", j),
            f"transitions[{i}] and transitions[{j}] (event {first.event!r})",
            f"both can fire from state {shared[0]!r}: give them guards that exclude each other "
            "('g' and '!g', or 'g=a' and 'g=b')",
        )


def load_chart(path: str | Path, rules: Rules) -> LoadedChart:
    chart = read_chart_file(path)
    check_chart(chart, rules)
    return chart
