"""Graph utilities over a chart: shortest paths, and what a test run never exercised."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.charts.compiled import CompiledChart

if TYPE_CHECKING:
    from engine.chartset import ChartSet
    from engine.testing.strategies import PayloadStrategies


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


def drive_transitions(
    charts: ChartSet,
    chart_name: str,
    payloads_for: PayloadStrategies | None = None,
    recorder: CoverageRecorder | None = None,
) -> tuple[dict[Edge, list[tuple[str, dict]]], list[Edge]]:
    """Take every transition of the chart for real.

    For each edge, follow a shortest path to it and, at each step, search the
    payload strategy (``hypothesis.find``) for a payload that makes exactly that
    step fire. Returns the event sequence found for each edge, and the edges no
    payload could drive (a guard the strategies never satisfy, or a dead edge).
    """
    from hypothesis import HealthCheck, Phase, find, settings
    from hypothesis.errors import NoSuchExample
    from pydantic_core import to_json

    from engine.step import Outcome, new_entity, step
    from engine.testing.strategies import payloads

    chart = charts.by_name[chart_name]
    # Any payload that fires will do: no shrinking, no example database. The
    # search is derandomized: a guard that 1 payload in 100 satisfies must not
    # make the suite fail once in a while.
    search = settings(
        max_examples=300,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    memo: dict[tuple[Edge, str, bytes], tuple[Any, dict] | None] = {}
    internal: dict[str, list[Edge]] = {}
    for candidate in edges(chart):
        if candidate.source == candidate.target:
            internal.setdefault(candidate.source, []).append(candidate)

    def attempt(entity: Any, hop: Edge, index: int) -> tuple[Any, dict] | None:
        """Find a payload that makes ``hop`` fire from ``entity``; the new entity.
        Paths share their first steps, so each search is done once."""
        key = (hop, entity.state, to_json(entity.data))
        if key not in memo:
            memo[key] = search_payload(entity, hop, index)
        return memo[key]

    def search_payload(entity: Any, hop: Edge, index: int) -> tuple[Any, dict] | None:
        def fires(payload: dict) -> bool:
            result = step(chart, entity, _event(hop, entity, payload, index), charts.settings)
            return (
                result.outcome is Outcome.TRANSITIONED
                and result.from_state == hop.source
                and result.to_state == hop.target
            )

        try:
            payload = find(payloads(charts, hop.event, payloads_for), fires, settings=search)
        except NoSuchExample:
            return None
        return step(
            chart, entity, _event(hop, entity, payload, index), charts.settings
        ).entity, payload

    def _event(hop: Edge, entity: Any, payload: dict, index: int) -> Any:
        return charts.event_types.make(
            hop.event,
            entity.key,
            payload,
            event_id=f"d{index}",
            source="drive",
            received_at=1_700_000_000.0 + index,
        )

    driven: dict[Edge, list[tuple[str, dict]]] = {}
    stuck: list[Edge] = []

    def drive(path: list[Edge]) -> list[tuple[str, dict]] | None:
        entity = new_entity(chart, f"{chart.entity_kind}:drive")
        taken: list[tuple[str, dict]] = []
        for hop in path:
            found = attempt(entity, hop, len(taken))
            # A guard may need data that only internal steps of this state set up
            # (a provider list before mapping a carrier): take some, then retry.
            setups = [e for e in internal.get(hop.source, []) if e != hop]
            while found is None and setups:
                setup = setups.pop(0)
                prepared = attempt(entity, setup, len(taken))
                if prepared is not None:
                    entity = prepared[0]
                    taken.append((setup.event, prepared[1]))
                    if recorder is not None:
                        recorder.record(chart.name, setup.source, setup.event, setup.target)
                    found = attempt(entity, hop, len(taken))
            if found is None:
                return None
            entity = found[0]
            taken.append((hop.event, found[1]))
            if recorder is not None:
                recorder.record(chart.name, hop.source, hop.event, hop.target)
        return taken

    for edge, path in transition_paths(chart).items():
        taken = drive(path)
        if taken is None:
            for alternative in simple_paths(chart, edge.source)[1:]:
                taken = drive([*alternative, edge])
                if taken is not None:
                    break
        if taken is None:
            stuck.append(edge)
        else:
            driven[edge] = taken
    return driven, stuck
