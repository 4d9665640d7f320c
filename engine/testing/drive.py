"""Take every transition of a chart for real, with payloads found by search."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, Phase, find, settings
from hypothesis.errors import NoSuchExample
from pydantic_core import to_json

from engine.events import Event
from engine.step import EntityState, Outcome, StepResult, new_entity, step
from engine.testing.coverage import CoverageRecorder
from engine.testing.paths import Edge, chart_tree, edges, simple_paths, transition_paths
from engine.testing.strategies import payloads

if TYPE_CHECKING:
    from engine.chartset import ChartSet
    from engine.testing.strategies import PayloadStrategies

# One step taken: the event type and the payload that made it fire.
Taken = list[tuple[str, dict[str, Any]]]
# A step found: the entity after it, the payload that made it fire, its result.
_Found = tuple[EntityState, dict[str, Any], StepResult]

# Any payload that fires will do: no shrinking, no example database. The
# search is derandomized: a guard that 1 payload in 100 satisfies must not
# make the suite fail once in a while.
_SEARCH = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def drive_transitions(
    charts: ChartSet,
    chart_name: str,
    payloads_for: PayloadStrategies | None = None,
    recorder: CoverageRecorder | None = None,
) -> tuple[dict[Edge, Taken], list[Edge]]:
    """Take every transition of the chart for real.

    For each edge, follow a shortest path to it and, at each step, search the
    payload strategy (``hypothesis.find``) for a payload that makes exactly that
    step fire (in a chart with compound or parallel states: that transition,
    by its index in `StepResult.fired`). Returns the event sequence found for
    each edge, and the edges no payload could drive (a guard the strategies
    never satisfy, or a dead edge).
    """
    driver = _Driver(charts, chart_name, payloads_for, recorder)
    chart = driver.chart
    driven: dict[Edge, Taken] = {}
    stuck: list[Edge] = []
    for edge, path in transition_paths(chart).items():
        taken = driver.drive(path)
        if taken is None:
            for alternative in simple_paths(chart, edge.source)[1:]:
                taken = driver.drive([*alternative, edge])
                if taken is not None:
                    break
        if taken is None:
            stuck.append(edge)
        else:
            driven[edge] = taken
    return driven, stuck


class _Driver:
    """Walks new entities of one chart along paths of edges."""

    def __init__(
        self,
        charts: ChartSet,
        chart_name: str,
        payloads_for: PayloadStrategies | None,
        recorder: CoverageRecorder | None,
    ) -> None:
        self.charts = charts
        self.chart = charts.by_name[chart_name]
        self.payloads_for = payloads_for
        self.recorder = recorder
        self.flat = chart_tree(self.chart).is_flat
        # Paths share their first steps: each (edge, state, data) is searched once.
        self.memo: dict[tuple[Edge, str, bytes], _Found | None] = {}
        # A state's internal transitions, which may set up data a later guard needs.
        self.internal: dict[str, list[Edge]] = {}
        for candidate in edges(self.chart):
            if candidate.source == candidate.target:
                self.internal.setdefault(candidate.source, []).append(candidate)

    def drive(self, path: list[Edge]) -> Taken | None:
        """The steps that take a new entity along ``path``, or None if one cannot fire."""
        entity = new_entity(self.chart, f"{self.chart.entity_kind}:drive")
        taken: Taken = []
        for hop in path:
            found = self._attempt(entity, hop, len(taken))
            # A guard may need data that only internal steps of this state set up
            # (a provider list before mapping a carrier): take some, then retry.
            setups = [e for e in self.internal.get(hop.source, []) if e != hop]
            while found is None and setups:
                setup = setups.pop(0)
                prepared = self._attempt(entity, setup, len(taken))
                if prepared is not None:
                    entity = prepared[0]
                    self._take(taken, setup, prepared)
                    found = self._attempt(entity, hop, len(taken))
            if found is None:
                return None
            entity = found[0]
            self._take(taken, hop, found)
        return taken

    def _take(self, taken: Taken, hop: Edge, found: _Found) -> None:
        taken.append((hop.event, found[1]))
        if self.recorder is not None:
            self.recorder.record_edge(self.chart.name, hop)
            self.recorder.record_step(self.chart, found[2])

    def _attempt(self, entity: EntityState, hop: Edge, index: int) -> _Found | None:
        """The entity after ``hop`` and the payload that made it fire, or None."""
        key = (hop, entity.state, to_json(entity.data))
        if key not in self.memo:
            self.memo[key] = self._search(entity, hop, index)
        return self.memo[key]

    def _search(self, entity: EntityState, hop: Edge, index: int) -> _Found | None:
        def fires(payload: dict[str, Any]) -> bool:
            result = step(
                self.chart, entity, self._event(hop, entity, payload, index), chart_settings
            )
            if result.outcome is not Outcome.TRANSITIONED:
                return False
            if self.flat:
                return result.from_state == hop.source and result.to_state == hop.target
            # Several states at once: this very transition fired (from any of its sources).
            return hop.index in result.fired

        chart_settings = self.charts.settings
        strategy = payloads(self.charts, hop.event, self.payloads_for)
        try:
            payload = find(strategy, fires, settings=_SEARCH)
        except NoSuchExample:
            return None
        result = step(self.chart, entity, self._event(hop, entity, payload, index), chart_settings)
        return result.entity, payload, result

    def _event(self, hop: Edge, entity: EntityState, payload: dict[str, Any], index: int) -> Event:
        return self.charts.event_types.make(
            hop.event,
            entity.key,
            payload,
            event_id=f"d{index}",
            source="drive",
            received_at=1_700_000_000.0 + index,
        )
