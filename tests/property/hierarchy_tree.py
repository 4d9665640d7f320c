"""The state tree of a `ChartSpec`, as the test oracles see it.

Written for the oracles alone (the interpreter and the HierarchicalMachine
adapter), from the chart language's rules, without the engine's own tree:
a reference that shared the candidate's tree would share its mistakes.

The chart's top is the node with id ``""``: compound (with the chart's
``initial``) or parallel (``parallel: true``). Every other node's id is the
dotted path of names from the top.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engine.charts.schema import ChartSpec, StateSpec

TOP = ""


@dataclass(frozen=True)
class Node:
    id: str
    parent: str | None
    kind: str  # "atomic", "compound", "parallel"
    final: bool
    children: tuple[str, ...]
    initial: str | None  # a compound's initial child, as an id
    entry: tuple[str, ...]
    exit: tuple[str, ...]
    depth: int
    order: int


class Tree:
    """Nodes by id in document order, with the ancestry questions the semantics ask."""

    def __init__(self, spec: ChartSpec) -> None:
        self.nodes: dict[str, Node] = {}
        top_kind = "parallel" if spec.parallel else "compound"
        top_initial = None if spec.parallel else spec.initial
        self._add(TOP, None, top_kind, False, spec.states, top_initial, (), (), 0)

    def _add(
        self,
        node_id: str,
        parent: str | None,
        kind: str,
        final: bool,
        states: dict[str, StateSpec],
        initial: str | None,
        entry: Iterable[str],
        exit_: Iterable[str],
        depth: int,
    ) -> None:
        children = tuple(f"{node_id}.{name}" if node_id else name for name in states)
        initial_id = (f"{node_id}.{initial}" if node_id else initial) if initial else None
        self.nodes[node_id] = Node(
            node_id,
            parent,
            kind,
            final,
            children,
            initial_id,
            tuple(entry),
            tuple(exit_),
            depth,
            len(self.nodes),
        )
        for child_id, spec in zip(children, states.values(), strict=True):
            child_kind = "atomic"
            if spec.states:
                child_kind = "parallel" if spec.parallel else "compound"
            self._add(
                child_id,
                node_id,
                child_kind,
                spec.final,
                spec.states,
                spec.initial,
                spec.entry,
                spec.exit,
                depth + 1,
            )

    def ancestors(self, node_id: str) -> list[str]:
        """Proper ancestors, innermost first, ending with the top."""
        found = []
        parent = self.nodes[node_id].parent
        while parent is not None:
            found.append(parent)
            parent = self.nodes[parent].parent
        return found

    def is_descendant(self, node_id: str, of: str) -> bool:
        """True when ``node_id`` is a proper descendant of ``of``."""
        return of in self.ancestors(node_id)

    def atomic_under(self, node_id: str) -> list[str]:
        """The atomic states strictly inside ``node_id``, in document order."""
        return [a for a in self.atomic_ids() if self.is_descendant(a, node_id)]

    def atomic_ids(self) -> list[str]:
        return [n.id for n in self.nodes.values() if n.kind == "atomic" and n.id != TOP]

    def exit_key(self, node_id: str) -> tuple[int, int]:
        """Exit order: deeper first, then reverse document order."""
        node = self.nodes[node_id]
        return (-node.depth, -node.order)

    def entry_key(self, node_id: str) -> tuple[int, int]:
        """Entry order: shallower first, then document order."""
        node = self.nodes[node_id]
        return (node.depth, node.order)

    def configuration(self, active: set[str]) -> str:
        """The stored form: active atomic states in document order, comma-joined."""
        atomic = [n.id for n in self.nodes.values() if n.kind == "atomic" and n.id in active]
        return ",".join(atomic)

    def active_from(self, configuration: str) -> set[str]:
        """Every active state (the top included) of a stored configuration."""
        active = {TOP}
        for leaf in configuration.split(",") if configuration else ():
            active.add(leaf)
            active.update(self.ancestors(leaf))
        return active

    def in_final_state(self, node_id: str, active: set[str]) -> bool:
        """SCXML's isInFinalState: a compound with an active final child; a
        parallel state all of whose regions are in final states."""
        node = self.nodes[node_id]
        if node.kind == "compound":
            return any(
                self.nodes[c].final and self.nodes[c].kind == "atomic" and c in active
                for c in node.children
            )
        if node.kind == "parallel":
            return all(self.in_final_state(c, active) for c in node.children)
        return False
