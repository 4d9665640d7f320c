"""A chart's transitions as a graph over its states, and shortest paths through it.

An `Edge` is one transition from one of its source states. In a chart with
compound or parallel states a source may be a compound state (a parent
transition), and taking an edge makes its target active with its ancestors
and what entering it enters by default (a compound's initial child, every
region of a parallel state); the states active from the start are those of
the initial configuration. A flat chart's graph is its states and
transitions, as it always was.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from engine.charts.compiled import CompiledChart
from engine.charts.configuration import atomic_states
from engine.charts.hierarchy import StateTree, expand_sources


@dataclass(frozen=True, slots=True)
class Edge:
    """One transition from one source state: (source, event, target); ``index``
    is the transition's place in the chart file (`StepResult.fired` names it)."""

    source: str
    event: str
    target: str
    guards: tuple[str, ...] = ()
    index: int = field(default=-1, compare=False)

    def __str__(self) -> str:
        guards = f" [{', '.join(self.guards)}]" if self.guards else ""
        return f"{self.source} --{self.event}{guards}--> {self.target}"


def chart_tree(chart: CompiledChart) -> StateTree:
    """The chart's state tree (the compiled chart's own, when it has one)."""
    found = getattr(chart, "tree", None)
    return found if isinstance(found, StateTree) else StateTree.from_spec(chart.spec)


def edges(chart: CompiledChart) -> list[Edge]:
    """Every (transition, source) of the chart, in file order; an internal
    transition (no target) targets its source."""
    tree = chart_tree(chart)
    return [
        Edge(source, transition.event, transition.target or source, tuple(transition.guards), index)
        for index, transition in enumerate(chart.spec.transitions)
        for source in expand_sources(tree, transition)
    ]


def entered_by(tree: StateTree, target: str) -> list[str]:
    """The states active after entering ``target``: its ancestors, itself and
    its default entry (plus the other regions of a parallel ancestor)."""
    if target not in tree.nodes:
        return [target]
    reached = list(reversed(tree.ancestors(target)))
    for ancestor in tree.ancestors(target):
        if tree.kind(ancestor) == "parallel":
            for region in tree.children(ancestor):
                if region not in reached and not tree.is_descendant(target, region):
                    reached += tree.default_entry(region)
    return reached + tree.default_entry(target)


def initially_active(chart: CompiledChart) -> list[str]:
    """The states a new entity is in: its initial configuration and their ancestors."""
    tree = chart_tree(chart)
    try:
        return list(tree.active_states(tree.initial_configuration()))
    except ValueError:  # a compound state without an initial: the chart's own word
        return list(atomic_states(chart.initial))


def _out_edges(chart: CompiledChart, loops: bool = True) -> dict[str, list[Edge]]:
    out: dict[str, list[Edge]] = {}
    for edge in edges(chart):
        if loops or edge.source != edge.target:
            out.setdefault(edge.source, []).append(edge)
    return out


def shortest_paths(
    chart: CompiledChart, start: Iterable[str] | None = None
) -> dict[str, list[Edge]]:
    """For every reachable state, a shortest list of edges that makes it active
    (from the states of ``start``, or those of a new entity)."""
    tree = chart_tree(chart)
    start = list(start) if start is not None else initially_active(chart)
    paths: dict[str, list[Edge]] = {state: [] for state in start}
    queue = deque(start)
    out = _out_edges(chart)
    while queue:
        state = queue.popleft()
        for edge in out.get(state, []):
            for reached in entered_by(tree, edge.target):
                if reached not in paths:
                    paths[reached] = [*paths[state], edge]
                    queue.append(reached)
    return paths


def transition_paths(chart: CompiledChart) -> dict[Edge, list[Edge]]:
    """For every edge, a shortest path that ends by taking it."""
    to_state = shortest_paths(chart)
    return {
        edge: [*to_state[edge.source], edge] for edge in edges(chart) if edge.source in to_state
    }


def simple_paths(
    chart: CompiledChart, target: str, limit: int = 12, max_length: int = 8
) -> list[list[Edge]]:
    """Up to ``limit`` paths that make ``target`` active and visit no state
    twice, shortest first: alternatives when the shortest path's data cannot
    satisfy a later guard."""
    tree = chart_tree(chart)
    out = _out_edges(chart, loops=False)
    start = initially_active(chart)
    found: list[list[Edge]] = []
    queue: deque[tuple[str, list[Edge]]] = deque((state, []) for state in start)
    while queue and len(found) < limit:
        state, path = queue.popleft()
        if state == target:
            found.append(path)
            continue
        if len(path) >= max_length:
            continue
        visited = {*start, *(e.target for e in path)}
        for edge in out.get(state, []):
            if edge.target not in visited or edge.target == target:
                queue.extend(_next_states(tree, edge, target, path))
    return found


def _next_states(
    tree: StateTree, edge: Edge, target: str, path: list[Edge]
) -> Iterable[tuple[str, list[Edge]]]:
    """Where a path goes on after ``edge``: its target, or ``target`` when
    taking it enters ``target`` on the way (a compound's initial child)."""
    entered = entered_by(tree, edge.target)
    landing = target if target in entered and target != edge.target else edge.target
    return [(landing, [*path, edge])]
