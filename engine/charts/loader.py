"""Load chart files and check them (ENG-1).

Every problem found is reported at once, each with the file, the line and the
place in the chart (``transitions[3] (event 'x')``, ``state 'sync.failed'``),
so a chart author fixes a file in one pass instead of one error per run. The
checks live in ``checks_*``: the states' shape (`checks_states`), the names a
chart uses (`checks_refs`), and how it runs (`checks_flow`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from engine.charts.checks_common import (
    ANY_STATE,
    ChartLoadError,
    ChartProblem,
    GuardRef,
    LoadedChart,
)
from engine.charts.checks_flow import check_conflicts, check_parallel_writes, check_reachable
from engine.charts.checks_refs import (
    check_entry_exit,
    check_events,
    check_refusals,
    check_timers,
    check_transition,
    check_upgrades,
)
from engine.charts.checks_states import ChartStates, check_structure
from engine.charts.hierarchy import expand_sources
from engine.charts.schema import ChartSpec
from engine.rules import Rules

__all__ = [
    "ANY_STATE",
    "ChartLoadError",
    "ChartProblem",
    "GuardRef",
    "LoadedChart",
    "check_chart",
    "expand_sources",
    "load_chart",
    "read_chart_file",
]


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
            # The key's line, not its value's: a block mapping's value starts a line later.
            lines[(*path, key)] = key_node.start_mark.line + 1
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
    # A parallel chart's top-level states are regions, all entered: no initial.
    if doc.get("parallel") is not True and doc.get("initial") in (None, ""):
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


def check_chart(chart: LoadedChart, rules: Rules) -> None:
    """The semantic checks of ENG-1; raise `ChartLoadError` listing every problem."""
    spec = chart.spec
    problems: list[ChartProblem] = []

    def report(path: tuple[Any, ...], place: str, message: str) -> None:
        problems.append(ChartProblem(chart.file, _nearest_line(chart.lines, path), place, message))

    states = ChartStates(spec)
    check_structure(states, report)
    check_events(spec, rules, report)
    for index, transition in enumerate(spec.transitions):
        check_transition(states, rules, index, transition, report)
    check_entry_exit(states, rules, report)
    check_timers(states, report)
    check_refusals(states, report)
    check_upgrades(states, rules, report)
    # How the chart runs is only worth judging once every name in it is known.
    if not problems:
        check_reachable(states, report)
        check_conflicts(states, report)
        check_parallel_writes(states, rules, report)
    if problems:
        raise ChartLoadError(problems)


def load_chart(path: str | Path, rules: Rules) -> LoadedChart:
    chart = read_chart_file(path)
    check_chart(chart, rules)
    return chart
