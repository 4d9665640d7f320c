"""A chart's states as a tree: nesting, regions, document order.

A chart's states form a tree under the chart's top. A state with ``states:``
is compound (one child active at a time, entered at its ``initial`` child)
or parallel (``parallel: true``: every child is a region, all active at
once); a state without children is atomic (``final`` if it is marked so).
The chart's top is compound (``initial`` names a top-level state) unless
``ChartSpec.parallel`` makes it parallel, its top-level states then being
regions. The top is no state of its own: it has the id ``""`` and is no node.

A state's id is the dotted path of names from the top (``sync.failed``), and
its ``order`` is its place in document order (a pre-order walk of the file),
the order in which regions see an event and entry actions of siblings run.
``depth`` counts the names in the id (a top-level state has depth 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from engine.charts.schema import ChartSpec, StateSpec, TransitionSpec

ANY_STATE = "*"
TOP = ""

StateKind = Literal["atomic", "compound", "parallel", "final"]


@dataclass(frozen=True, slots=True)
class StateNode:
    id: str
    name: str
    parent: str | None
    kind: StateKind
    children: tuple[str, ...]
    initial: str | None  # a compound state's initial child (its id)
    label: str
    depth: int
    order: int

    @property
    def is_atomic(self) -> bool:
        """Atomic or final: a leaf of the tree, what a configuration lists."""
        return not self.children


class StateTree:
    """The states of one chart, with the questions the step asks of them."""

    def __init__(
        self, nodes: dict[str, StateNode], top: tuple[str, ...], parallel: bool, initial: str | None
    ) -> None:
        self.nodes = nodes  # document order
        self.top = top  # the top-level states' ids
        self.parallel = parallel  # the chart's top is parallel: its states are regions
        self.top_initial = initial  # the top-level state entered first (compound top)
        self.is_flat = not parallel and all(not node.children for node in nodes.values())
        self._ancestors = {
            node.id: tuple(self._walk_up(node.parent)) for node in self.nodes.values()
        }

    @classmethod
    def from_spec(cls, spec: ChartSpec) -> StateTree:
        """The tree of ``spec``'s states. Lenient: a compound state whose
        ``initial`` is missing or unknown gets ``initial=None`` (the loader
        reports it; entering it raises)."""
        nodes: dict[str, StateNode] = {}

        def add(name: str, state: StateSpec, parent: str | None) -> str:
            node_id = f"{parent}.{name}" if parent else name
            children = tuple(f"{node_id}.{child}" for child in state.states)
            kind: StateKind
            if children:
                kind = "parallel" if state.parallel else "compound"
            else:
                kind = "final" if state.final else "atomic"
            initial = None
            if kind == "compound" and state.initial in state.states:
                initial = f"{node_id}.{state.initial}"
            depth = node_id.count(".") + 1
            nodes[node_id] = StateNode(
                node_id, name, parent, kind, children, initial, state.label, depth, len(nodes)
            )
            for child_name, child in state.states.items():
                add(child_name, child, node_id)
            return node_id

        top = tuple(add(name, state, None) for name, state in spec.states.items())
        initial = spec.initial if not spec.parallel and spec.initial in spec.states else None
        return cls(nodes, top, spec.parallel, initial)

    def _walk_up(self, parent: str | None) -> list[str]:
        found = []
        while parent is not None:
            found.append(parent)
            parent = self.nodes[parent].parent
        return found

    def regions(self) -> tuple[str, ...]:
        """The regions of the chart's top: its top-level states if it is parallel, else ("",)."""
        return self.top if self.parallel else (TOP,)

    def ancestors(self, state_id: str) -> tuple[str, ...]:
        """The proper ancestors of a state, innermost first (the top is not listed)."""
        return self._ancestors[state_id]

    def children(self, state_id: str) -> tuple[str, ...]:
        return self.top if state_id == TOP else self.nodes[state_id].children

    def kind(self, state_id: str) -> StateKind:
        if state_id == TOP:
            return "parallel" if self.parallel else "compound"
        return self.nodes[state_id].kind

    def depth(self, state_id: str) -> int:
        return 0 if state_id == TOP else self.nodes[state_id].depth

    def is_descendant(self, state_id: str, ancestor: str) -> bool:
        """True when ``state_id`` lies strictly inside ``ancestor`` (the top holds everything)."""
        if ancestor == TOP:
            return state_id != TOP
        return state_id != TOP and ancestor in self._ancestors[state_id]

    def atomic_under(self, state_id: str) -> tuple[str, ...]:
        """The atomic (and final) states inside ``state_id`` or itself, in document order."""
        if state_id != TOP and self.nodes[state_id].is_atomic:
            return (state_id,)
        return tuple(
            node.id
            for node in self.nodes.values()
            if node.is_atomic and self.is_descendant(node.id, state_id)
        )

    def atomic_ids(self) -> tuple[str, ...]:
        return tuple(node.id for node in self.nodes.values() if node.is_atomic)

    def initial_child(self, state_id: str) -> str:
        """The child a compound state (or a compound top) is entered at."""
        initial = self.top_initial if state_id == TOP else self.nodes[state_id].initial
        if initial is None:
            raise ValueError(f"compound state {state_id or 'top'!r} has no initial state")
        return initial

    def active_states(self, atomic: tuple[str, ...]) -> tuple[str, ...]:
        """Every active state of a configuration (its atomic states and their
        ancestors), in document order."""
        active = set(atomic)
        for leaf in atomic:
            active.update(self._ancestors[leaf])
        return self.in_document_order(active)

    def in_document_order(self, states: set[str] | frozenset[str]) -> tuple[str, ...]:
        return tuple(sorted(states, key=lambda state: self.nodes[state].order))

    def default_entry(self, state_id: str) -> list[str]:
        """``state_id`` (unless the top) and what entering it enters by default:
        a compound's initial child, every region of a parallel state, recursively."""
        entered = [] if state_id == TOP else [state_id]
        kind = self.kind(state_id)
        if kind == "compound":
            entered.extend(self.default_entry(self.initial_child(state_id)))
        elif kind == "parallel":
            for child in self.children(state_id):
                entered.extend(self.default_entry(child))
        return entered

    def initial_configuration(self) -> tuple[str, ...]:
        """The atomic states a new entity starts in, in document order."""
        entered = self.default_entry(TOP)
        return self.in_document_order({s for s in entered if self.nodes[s].is_atomic})

    def nearest_compound_ancestor(self, first: str, second: str) -> str:
        """The nearest compound (not parallel) proper ancestor of both states, or the top."""
        for ancestor in self._ancestors[first]:
            if self.nodes[ancestor].kind == "compound" and self.is_descendant(second, ancestor):
                return ancestor
        return TOP

    def domain(self, source: str, target: str | None) -> str | None:
        """What a transition exits and re-enters below: None (nothing) when it
        has no target or targets its own source, else the nearest compound
        proper ancestor of source and target (SCXML's external transition)."""
        if target is None or target == source:
            return None
        return self.nearest_compound_ancestor(source, target)

    def in_different_regions(self, first: str, second: str) -> bool:
        """True when two states lie in different regions of one parallel state."""
        common = self.common_ancestor(first, second)
        return self.kind(common) == "parallel" and common not in (first, second)

    def common_ancestor(self, first: str, second: str) -> str:
        """The nearest state holding both (either may be it), or the top."""
        if first == second:
            return first
        for candidate in (first, *self._ancestors[first]):
            if candidate == second or self.is_descendant(second, candidate):
                return candidate
        return TOP


def inner_first(tree: StateTree, atomic_id: str) -> tuple[str, ...]:
    """The default priority: an atomic state's own transitions, then its
    parent's, and so on outwards (SCXML: inner before outer)."""
    return (atomic_id, *tree.ancestors(atomic_id))


# (tree, atomic state) -> the states whose transitions are tried, best first.
SearchOrder = Callable[[StateTree, str], tuple[str, ...]]


def expand_sources(spec_or_tree: ChartSpec | StateTree, transition: TransitionSpec) -> list[str]:
    """A transition's source states; ``"*"`` stands for every atomic state that is not final."""
    if ANY_STATE not in transition.source:
        return list(transition.source)
    tree = spec_or_tree
    if not isinstance(tree, StateTree):
        tree = StateTree.from_spec(tree)
    return [node.id for node in tree.nodes.values() if node.kind == "atomic"]
