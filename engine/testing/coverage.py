"""Graph utilities over a chart: shortest paths, and what a test run never exercised."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from engine.charts.compiled import CompiledChart


@dataclass(frozen=True, slots=True)
class Edge:
    """One transition from one source state: (source, event, target)."""

    source: str
    event: str
    target: str
    guards: tuple[str, ...] = ()

    def __str__(self) -> str:
        guards = f" [{', '.join(self.guards)}]" if self.guards else ""
        return f"{self.source} --{self.event}{guards}--> {self.target}"


def edges(chart: CompiledChart) -> list[Edge]:
    return [
        Edge(source, event, target, tuple(guards))
        for source, target, event, guards in chart.transitions_as_edges()
    ]


def shortest_paths(chart: CompiledChart) -> dict[str, list[Edge]]:
    """For every reachable state, a shortest list of edges from the initial state."""
    paths: dict[str, list[Edge]] = {chart.initial: []}
    queue = deque([chart.initial])
    out: dict[str, list[Edge]] = {}
    for edge in edges(chart):
        out.setdefault(edge.source, []).append(edge)
    while queue:
        state = queue.popleft()
        for edge in out.get(state, []):
            if edge.target not in paths:
                paths[edge.target] = [*paths[state], edge]
                queue.append(edge.target)
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
    """Up to ``limit`` paths from the initial state to ``target`` that visit no
    state twice, shortest first: alternatives when the shortest path's data
    cannot satisfy a later guard."""
    out: dict[str, list[Edge]] = {}
    for edge in edges(chart):
        if edge.source != edge.target:
            out.setdefault(edge.source, []).append(edge)
    found: list[list[Edge]] = []
    queue: deque[tuple[str, list[Edge]]] = deque([(chart.initial, [])])
    while queue and len(found) < limit:
        state, path = queue.popleft()
        if state == target:
            found.append(path)
            continue
        if len(path) >= max_length:
            continue
        visited = {chart.initial, *(e.target for e in path)}
        for edge in out.get(state, []):
            if edge.target not in visited or edge.target == target:
                queue.append((edge.target, [*path, edge]))
    return found


@dataclass
class CoverageRecorder:
    """Collects the (source, event, target) steps a test run took."""

    taken: set[tuple[str, str, str, str]] = field(default_factory=set)

    def record(self, chart: str, source: str, event: str, target: str) -> None:
        self.taken.add((chart, source, event, target))

    def unexercised(self, chart: CompiledChart) -> list[Edge]:
        """Edges of ``chart`` no recorded step went through."""
        seen = {(s, e, t) for c, s, e, t in self.taken if c == chart.name}
        return sorted(
            {
                Edge(e.source, e.event, e.target)
                for e in edges(chart)
                if (e.source, e.event, e.target) not in seen
            },
            key=lambda e: (e.source, e.event, e.target),
        )

    def report(self, chart: CompiledChart) -> str:
        missing = self.unexercised(chart)
        total = len({(e.source, e.event, e.target) for e in edges(chart)})
        lines = [f"{chart.name}: {total - len(missing)} of {total} transitions exercised"]
        lines.extend(f"  never: {edge}" for edge in missing)
        return "\n".join(lines)
