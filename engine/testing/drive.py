"""Take every transition of a chart for real, with payloads found by search."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample
from pydantic_core import to_json

from engine.events import Event
from engine.step import EntityState, Outcome, StepResult, new_entity, step
from engine.testing.configurations import ChartShape
from engine.testing.coverage import CoverageRecorder
from engine.testing.paths import Edge, edges, simple_paths, transition_paths
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
# A step of another region tried only to set up a guard: a short search.
_QUICK = settings(_SEARCH, max_examples=30)
_SNAPSHOTS_PER_EDGE = 8
# An internal step and the edge after it, their payloads searched together.
_JOINT = settings(_SEARCH, max_examples=100)


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
    by its index in `StepResult.fired`). In a chart with regions, a guard may
    ask for another region's state or data its steps set up, so a step that
    cannot fire is retried after a step of another region, and an edge no path
    reaches is tried from every entity the other paths passed through.
    Returns the event sequence found for each edge, and the edges no payload
    could drive (a guard the strategies never satisfy, or a dead edge).
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
    progress = not driver.flat
    while progress:  # an edge driven this way opens states for the next ones
        progress = False
        for edge in list(stuck):
            taken = driver.from_any_snapshot(edge)
            if taken is not None:
                stuck.remove(edge)
                driven[edge] = taken
                progress = True
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
        self.shape = ChartShape(self.chart)
        self.flat = self.shape.tree.is_flat
        self.edges = edges(self.chart)
        # Paths share their first steps: each (edge, state, data) is searched once.
        self.memo: dict[tuple[Edge, int, bool, str, bytes], _Found | None] = {}
        # Every entity a path reached, with the steps that reached it.
        self.snapshots: dict[tuple[str, bytes], tuple[EntityState, Taken]] = {}

    def drive(self, path: list[Edge]) -> Taken | None:
        """The steps that take a new entity along ``path``, or None if one cannot fire."""
        entity = new_entity(self.chart, f"{self.chart.entity_kind}:drive")
        taken: Taken = []
        for hop in path:
            reached = self._hop(entity, taken, hop, explore=False)
            if reached is None:
                return None
            entity = reached
            self.snapshots.setdefault((entity.state, to_json(entity.data)), (entity, [*taken]))
        return taken

    def from_any_snapshot(self, hop: Edge) -> Taken | None:
        """The steps to ``hop`` from some entity a path reached where its source is active."""
        tried: set[str] = set()
        for entity, steps in list(self.snapshots.values()):
            # One entity per configuration, a few configurations: enough to meet
            # another region's state, cheap enough for a chart of many edges.
            if entity.state in tried or hop.source not in self.shape.active(entity.state):
                continue
            tried.add(entity.state)
            taken = [*steps]
            reached = self._hop(entity, taken, hop, explore=True)
            if reached is not None:  # a state later stuck edges may start from
                self.snapshots.setdefault((reached.state, to_json(reached.data)), (reached, taken))
                return taken
            if len(tried) >= _SNAPSHOTS_PER_EDGE:
                break
        return None

    def _hop(
        self, entity: EntityState, taken: Taken, hop: Edge, *, explore: bool
    ) -> EntityState | None:
        """Take ``hop`` (after setting it up if need be); the entity after it, or None.
        ``taken`` gets the steps. ``explore``: also try a step of another region first."""
        found = self._attempt(entity, hop, len(taken))
        # A guard may need data that only internal steps set up (a provider
        # list before mapping a carrier): take some, then retry.
        setups = [e for e in self._internal(entity) if e != hop or e.index != hop.index]
        while found is None and setups:
            setup = setups.pop(0)
            prepared = self._attempt(entity, setup, len(taken))
            if prepared is not None:
                entity = prepared[0]
                self._take(taken, setup, prepared)
                found = self._attempt(entity, hop, len(taken))
        if found is None and explore:
            return self._after_another_region(entity, taken, hop) or self._joint(entity, taken, hop)
        if found is None:
            return None
        self._take(taken, hop, found)
        return found[0]

    def _internal(self, entity: EntityState) -> list[Edge]:
        """Internal transitions from the active states (a flat chart: its one state)."""
        active = self.shape.active(entity.state)
        return [e for e in self.edges if e.source == e.target and e.source in active]

    def _after_another_region(
        self, entity: EntityState, taken: Taken, hop: Edge
    ) -> EntityState | None:
        """``hop`` right after one step of another region (a guard on its state,
        ``in_state=...``, or on data its steps set); None if no such step helps."""
        region = self.shape.region_of(hop.source)
        active = self.shape.active(entity.state)
        for move in self.edges:
            if move.source not in active or self.shape.region_of(move.source) == region:
                continue
            moved = self._attempt(entity, move, len(taken), quick=True)
            if moved is None:
                continue
            found = self._attempt(moved[0], hop, len(taken) + 1)
            if found is not None:
                self._take(taken, move, moved)
                self._take(taken, hop, found)
                return found[0]
        return None

    def _take(self, taken: Taken, hop: Edge, found: _Found) -> None:
        taken.append((hop.event, found[1]))
        if self.recorder is not None:
            self.recorder.record_edge(self.chart.name, hop)
            self.recorder.record_step(self.chart, found[2])

    def _attempt(
        self, entity: EntityState, hop: Edge, index: int, *, quick: bool = False
    ) -> _Found | None:
        """The entity after ``hop`` and the payload that made it fire, or None."""
        key = (hop, hop.index, quick, entity.state, to_json(entity.data))
        if key not in self.memo:
            self.memo[key] = self._search(entity, hop, index, _QUICK if quick else _SEARCH)
        return self.memo[key]

    def _joint(self, entity: EntityState, taken: Taken, hop: Edge) -> EntityState | None:
        """``hop`` after an internal step whose payload is searched together with
        ``hop``'s: the data a guard needs (a detail fulfilled by TikTok) comes
        from that step's payload, which any payload that fires would not give."""
        chart_settings = self.charts.settings
        index = len(taken)
        for setup in self._internal(entity):

            def both(pair: tuple[dict[str, Any], dict[str, Any]], setup: Edge = setup) -> bool:
                first = step(
                    self.chart, entity, self._event(setup, entity, pair[0], index), chart_settings
                )
                if first.outcome is not Outcome.TRANSITIONED or setup.index not in first.fired:
                    return False
                second = self._event(hop, first.entity, pair[1], index + 1)
                result = step(self.chart, first.entity, second, chart_settings)
                return result.outcome is Outcome.TRANSITIONED and hop.index in result.fired

            strategy = st.tuples(
                payloads(self.charts, setup.event, self.payloads_for),
                payloads(self.charts, hop.event, self.payloads_for),
            )
            try:
                pair = find(strategy, both, settings=_JOINT)
            except NoSuchExample:
                continue
            first = step(
                self.chart, entity, self._event(setup, entity, pair[0], index), chart_settings
            )
            self._take(taken, setup, (first.entity, pair[0], first))
            second = self._event(hop, first.entity, pair[1], index + 1)
            result = step(self.chart, first.entity, second, chart_settings)
            self._take(taken, hop, (result.entity, pair[1], result))
            return result.entity
        return None

    def _search(
        self, entity: EntityState, hop: Edge, index: int, budget: settings
    ) -> _Found | None:
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
            payload = find(strategy, fires, settings=budget)
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
