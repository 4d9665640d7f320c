"""The chart's states as validation sees them, and the checks of their shape.

Validation runs before a chart is compiled, on charts that may be malformed
(an ``initial`` naming no child, a parallel state with one region). It reads
the states through the lenient `StateTree` the step uses, and keeps beside
each one the path of its YAML node, which gives every problem its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import get_close_matches

from engine.charts.checks_common import Report
from engine.charts.hierarchy import StateKind, StateTree, expand_sources
from engine.charts.schema import IDENTIFIER, ChartSpec, StateSpec, TransitionSpec

_NAME = re.compile(IDENTIFIER)


@dataclass(frozen=True, slots=True)
class StateEntry:
    id: str
    name: str
    parent: str | None  # None: a top-level state
    path: tuple[str, ...]  # where it is in the YAML document
    spec: StateSpec
    kind: StateKind


class ChartStates:
    """Every state of a chart at every level, by dotted id, in document order,
    with its place in the chart file."""

    def __init__(self, spec: ChartSpec) -> None:
        self.spec = spec
        self.tree = StateTree.from_spec(spec)
        self.entries: dict[str, StateEntry] = {}
        self._add(spec.states, None, ("states",))

    def _add(self, states: dict[str, StateSpec], parent: str | None, path: tuple[str, ...]) -> None:
        for name, state in states.items():
            state_id = name if parent is None else f"{parent}.{name}"
            here = (*path, name)
            kind = self.tree.nodes[state_id].kind
            self.entries[state_id] = StateEntry(state_id, name, parent, here, state, kind)
            self._add(state.states, state_id, (*here, "states"))

    def expand_sources(self, transition: TransitionSpec) -> list[str]:
        """A transition's source ids; '*' is every atomic state that is not final."""
        return expand_sources(self.tree, transition)

    def unknown(self, what: str, state_id: str) -> str:
        """``unknown <what> 'failed' (did you mean 'sync.failed'?)``."""
        return f"unknown {what} {state_id!r}{self.hint(state_id)}"

    def hint(self, state_id: str) -> str:
        """A hint when a bare (or partial) id is the end of exactly one nested
        id (``failed``: ``sync.failed``), else when one id is a near spelling."""
        matches = [i for i in self.entries if i.endswith("." + state_id)]
        if not matches:
            matches = get_close_matches(state_id, list(self.entries), n=2, cutoff=0.8)
        return f" (did you mean {matches[0]!r}?)" if len(matches) == 1 else ""


def check_structure(states: ChartStates, report: Report) -> None:
    """Names, initial children, final and parallel states, and the chart's top."""
    spec = states.spec
    for entry in states.entries.values():
        _check_state_shape(entry, report)
    if spec.parallel:
        if spec.initial is not None:
            report(
                ("initial",),
                "initial",
                "a parallel chart has no 'initial': every top-level state is a region, "
                "all entered at once",
            )
        if len(spec.states) < 2:
            report(
                ("parallel",),
                "chart",
                f"a parallel chart needs at least 2 regions (top-level states); "
                f"it has {len(spec.states)}",
            )
    elif spec.initial is not None and spec.initial not in spec.states:
        report(("initial",), "initial", f"unknown state {spec.initial!r}")


def _check_state_shape(entry: StateEntry, report: Report) -> None:
    state, place, path = entry.spec, f"state {entry.id!r}", entry.path
    if not _NAME.match(entry.name):
        report(
            path,
            place,
            f"state name {entry.name!r} is not an identifier "
            "(lowercase letters, digits and '_', starting with a letter)",
        )
    if state.final and state.states:
        report((*path, "final"), place, "a final state cannot have child states")
    if state.parallel:
        if state.initial is not None:
            report(
                (*path, "initial"),
                place,
                "a parallel state has no 'initial': every region (child state) is entered",
            )
        if len(state.states) < 2:
            report(
                (*path, "parallel"),
                place,
                f"a parallel state needs at least 2 regions (child states); "
                f"it has {len(state.states)}",
            )
    elif state.states and state.initial is None:
        report(path, place, "a compound state needs an initial child ('initial:')")
    elif state.states and state.initial not in state.states:
        children = ", ".join(state.states)
        report(
            (*path, "initial"),
            place,
            f"initial {state.initial!r} is not a child of {entry.id!r} (its children: {children})",
        )
    elif not state.states and state.initial is not None:
        report((*path, "initial"), place, "'initial' on a state with no child states")
