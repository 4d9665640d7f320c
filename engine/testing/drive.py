"""Take every transition of a chart for real, with payloads found by search."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample
from pydantic_core import to_json

from engine.events import Event, EventRejected
from engine.step import EntityState, Outcome, StepResult, new_entity, step
from engine.testing.configurations import ChartShape
from engine.testing.coverage import CoverageRecorder
from engine.testing.drive_steps import GAPS, Step, Taken, clock_of, echoing
from engine.testing.paths import Edge, edges, shortest_paths, simple_paths, transition_paths
from engine.testing.strategies import payloads

if TYPE_CHECKING:
    from engine.chartset import ChartSet
    from engine.testing.strategies import PayloadStrategies

# A step found: the entity after it, the step, its result.
_Found = tuple[EntityState, Step, StepResult]

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
# A step of another region tried only to set up a guard, or an edge tried from
# one of many entities: a short search.
_QUICK = settings(_SEARCH, max_examples=30)
_SNAPSHOTS_PER_EDGE = 8
# Entities (distinct state and data) an edge no path reaches is tried from.
_SNAPSHOTS_TRIED = 60
# The longest path from such an entity to the edge's source tried.
_ROUTE_LENGTH = 3
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
    payload strategy (``hypothesis.find``) for a payload, and a gap since the
    step before (`GAPS`: a guard may count time), that make exactly that step
    fire (in a chart with compound or parallel states: that transition, by its
    index in `StepResult.fired`). A guard may ask for data an earlier step set
    up, or another region's state: an edge no path takes is tried from every
    entity the other paths passed through (its data, not just its state), after
    a step of another region, and after an internal step searched together with
    it. Returns the steps found for each edge, and the edges no payload could
    drive (a guard the strategies never satisfy, or a dead edge).
    """
    driver = _Driver(charts, chart_name, payloads_for, recorder)
    chart = driver.chart
    driven: dict[Edge, Taken] = {}
    stuck: list[Edge] = []
    for edge, path in transition_paths(chart).items():
        taken = driver.drive(path)
        if taken is None:
            for alternative in simple_paths(chart, edge.source)[1:]:
                taken = driver.drive([*alternative, edge], quick=True)
                if taken is not None:
                    break
        if taken is None:
            stuck.append(edge)
        else:
            driven[edge] = taken
    progress = True
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
        # Paths share their first steps: each (edge, state, data, clock) is searched once.
        self.memo: dict[tuple[Edge, int, bool, str, bytes, float], _Found | None] = {}
        # Every entity a path reached, with the steps that reached it.
        self.snapshots: dict[tuple[str, bytes], tuple[EntityState, Taken]] = {}
        self.joints: dict[
            tuple[Edge, int, str, bytes, float], tuple[Edge, tuple[Step, Step]] | None
        ] = {}
        # Shortest paths from each configuration a path reached.
        self.routes: dict[str, dict[str, list[Edge]]] = {}

    def drive(self, path: list[Edge], *, quick: bool = False) -> Taken | None:
        """The steps that take a new entity along ``path``, or None if one cannot fire."""
        entity = new_entity(self.chart, f"{self.chart.entity_kind}:drive")
        return self._walk(entity, [], path, quick=quick)

    def _walk(
        self, entity: EntityState, taken: Taken, path: list[Edge], *, quick: bool = False
    ) -> Taken | None:
        """``taken`` with the steps that take ``entity`` along ``path``, or None."""
        for hop in path:
            reached = self._hop(entity, taken, hop, explore=False, quick=quick)
            if reached is None:
                return None
            entity = reached
            self._keep(entity, taken)
        return taken

    def _keep(self, entity: EntityState, taken: Taken) -> None:
        self.snapshots.setdefault((entity.state, to_json(entity.data)), (entity, [*taken]))

    def from_any_snapshot(self, hop: Edge) -> Taken | None:
        """The steps to ``hop`` from some entity a path reached: the data a guard
        needs may be there. First right away, where its source is active; then by a
        short path from any of them; then after setting it up, from a few."""
        snapshots = list(self.snapshots.values())
        where = [s for s in snapshots if hop.source in self.shape.active(s[0].state)]
        for entity, steps in where[:_SNAPSHOTS_TRIED]:
            found = self._attempt(entity, hop, steps, quick=True)
            if found is not None:
                taken = [*steps]
                self._take(taken, hop, found)
                self._keep(found[0], taken)
                return taken
        routed = self._by_short_path(snapshots, hop)
        if routed is not None:
            return routed
        for entity, steps in where[:_SNAPSHOTS_PER_EDGE]:
            taken = [*steps]
            reached = self._hop(entity, taken, hop, explore=True)
            if reached is not None:  # a state later stuck edges may start from
                self._keep(reached, taken)
                return taken
        return None

    def _by_short_path(self, snapshots: list[tuple[EntityState, Taken]], hop: Edge) -> Taken | None:
        """``hop`` at the end of a shortest path (of a few edges) from an entity a
        path reached to its source: that entity's data (a status TikTok gave,
        a product id forgotten) may be what the guard needs when it gets there."""
        # A guard on another region's state (in_state=...): that state first.
        wanted = [g.removeprefix("in_state=") for g in hop.guards if g.startswith("in_state=")]
        routes: list[tuple[list[Edge], EntityState, Taken]] = []
        for entity, steps in snapshots:
            if entity.state not in self.routes:
                self.routes[entity.state] = shortest_paths(
                    self.chart, self.shape.active(entity.state)
                )
            found = [self.routes[entity.state].get(state) for state in [*wanted, hop.source]]
            route = [edge for part in found for edge in part or []]
            if None not in found and 0 < len(route) <= _ROUTE_LENGTH:
                routes.append((route, entity, steps))
        routes.sort(key=lambda found: len(found[0]))
        for route, entity, steps in routes[:_SNAPSHOTS_TRIED]:
            taken = self._walk(entity, [*steps], [*route, hop], quick=True)
            if taken is not None:
                return taken
        return None

    def _hop(
        self, entity: EntityState, taken: Taken, hop: Edge, *, explore: bool, quick: bool = False
    ) -> EntityState | None:
        """Take ``hop`` (after setting it up if need be); the entity after it, or None.
        ``taken`` gets the steps. ``explore``: also try a step of another region first;
        ``quick``: a short search (one of many tries)."""
        found = self._attempt(entity, hop, taken, quick=quick)
        # A guard may need data that only internal steps set up (a provider
        # list before mapping a carrier): take some, then retry.
        setups = [e for e in self._internal(entity) if e != hop or e.index != hop.index]
        while found is None and setups:
            setup = setups.pop(0)
            prepared = self._attempt(entity, setup, taken, quick=quick)
            if prepared is not None:
                entity = prepared[0]
                self._take(taken, setup, prepared)
                found = self._attempt(entity, hop, taken, quick=quick)
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
            moved = self._attempt(entity, move, taken, quick=True)
            if moved is None:
                continue
            found = self._attempt(moved[0], hop, [*taken, moved[1]], quick=True)
            if found is not None:
                self._take(taken, move, moved)
                self._take(taken, hop, found)
                return found[0]
        return None

    def _take(self, taken: Taken, hop: Edge, found: _Found) -> None:
        taken.append(found[1])
        if self.recorder is not None:
            self.recorder.record_edge(self.chart.name, hop)
            self.recorder.record_step(self.chart, found[2])

    def _attempt(
        self, entity: EntityState, hop: Edge, taken: Taken, *, quick: bool = False
    ) -> _Found | None:
        """The entity after ``hop`` and the step that made it fire, or None."""
        clock = clock_of(taken)
        key = (hop, hop.index, quick, entity.state, to_json(entity.data), clock)
        other = (hop, hop.index, not quick, *key[3:])
        # Either search's step will do; a long search's failure answers a short one.
        if self.memo.get(other) is not None or (quick and other in self.memo):
            return self.memo[other]
        if key not in self.memo:
            budget = _QUICK if quick else _SEARCH
            self.memo[key] = self._search(entity, hop, len(taken), clock, budget)
        return self.memo[key]

    def _fires(self, result: StepResult, hop: Edge) -> bool:
        if result.outcome is not Outcome.TRANSITIONED:
            return False
        if self.flat:
            return result.from_state == hop.source and result.to_state == hop.target
        # Several states at once: this very transition fired (from any of its sources).
        return hop.index in result.fired

    def _step(self, entity: EntityState, hop: Edge, made: Step, index: int) -> StepResult:
        event = self._event(hop, entity, made, index)
        return step(self.chart, entity, event, self.charts.settings)

    def _drawn(
        self, hop: Edge, clock: float, entity: EntityState | None = None
    ) -> st.SearchStrategy[Step]:
        """A step of ``hop``'s event: a payload, received a drawn gap after
        ``clock``; with ``entity``, also payloads echoing its data (`echoing`)."""
        drawn = payloads(self.charts, hop.event, self.payloads_for)
        if entity is not None:
            drawn = drawn | drawn.map(lambda payload: echoing(payload, entity.data))
        return st.builds(lambda payload, gap: Step(hop.event, payload, clock + gap), drawn, GAPS)

    def _joint(self, entity: EntityState, taken: Taken, hop: Edge) -> EntityState | None:
        """``hop`` after an internal step whose payload is searched together with
        ``hop``'s: the data a guard needs (a detail fulfilled by TikTok) comes
        from that step's payload, which any payload that fires would not give."""
        index = len(taken)
        key = (hop, hop.index, entity.state, to_json(entity.data), clock_of(taken))
        if key not in self.joints:
            self.joints[key] = self._joint_search(entity, taken, hop)
        joint = self.joints[key]
        if joint is None:
            return None
        setup, pair = joint
        first = self._step(entity, setup, pair[0], index)
        self._take(taken, setup, (first.entity, pair[0], first))
        second = self._step(first.entity, hop, pair[1], index + 1)
        self._take(taken, hop, (second.entity, pair[1], second))
        return second.entity

    def _joint_search(
        self, entity: EntityState, taken: Taken, hop: Edge
    ) -> tuple[Edge, tuple[Step, Step]] | None:
        index, clock = len(taken), clock_of(taken)
        for setup in self._internal(entity):

            def then_hop(first: Step) -> st.SearchStrategy[tuple[Step, Step]]:
                return st.tuples(st.just(first), self._drawn(hop, first.at))

            def both(pair: tuple[Step, Step], setup: Edge = setup) -> bool:
                first = self._step(entity, setup, pair[0], index)
                if not self._fires(first, setup):
                    return False
                return self._fires(self._step(first.entity, hop, pair[1], index + 1), hop)

            try:
                return setup, find(
                    self._drawn(setup, clock).flatmap(then_hop), both, settings=_JOINT
                )
            except NoSuchExample:
                continue
        return None

    def _search(
        self, entity: EntityState, hop: Edge, index: int, clock: float, budget: settings
    ) -> _Found | None:
        def fires(made: Step) -> bool:
            try:
                result = self._step(entity, hop, made, index)
            except EventRejected:  # an echoed field the event's model does not take
                return False
            return self._fires(result, hop)

        try:
            made = find(self._drawn(hop, clock, entity), fires, settings=budget)
        except NoSuchExample:
            return None
        result = self._step(entity, hop, made, index)
        return result.entity, made, result

    def _event(self, hop: Edge, entity: EntityState, made: Step, index: int) -> Event:
        return self.charts.event_types.make(
            hop.event,
            entity.key,
            made[1],
            event_id=f"d{index}",
            source="drive",
            received_at=made.at,
        )
