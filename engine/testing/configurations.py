"""What a test needs to know about a chart's configurations.

An entity of a chart with compound or parallel states is in several states at
once: its stored ``state`` lists the active atomic states
(engine/charts/configuration.py). `ChartShape` answers, for one chart, the
questions the strategies, the stateful machine and the coverage recorder ask
of such a configuration: is it one the chart can be in, which events have a
transition from one of its active states, which state each region of the
chart is in. A flat chart is the special case of one region, the chart's top,
holding one state.
"""

from __future__ import annotations

from engine.charts.compiled import CompiledChart
from engine.charts.configuration import atomic_states
from engine.charts.hierarchy import TOP, StateTree, expand_sources


class ChartShape:
    """One chart's states as a tree, with its transitions' sources by event."""

    def __init__(self, chart: CompiledChart) -> None:
        self.chart = chart
        found = getattr(chart, "tree", None)
        self.tree: StateTree = (
            found if isinstance(found, StateTree) else StateTree.from_spec(chart.spec)
        )
        # Per external event: the states it has a transition from, and those it
        # has a targetless one from (the only kind a final state takes).
        self.sources: dict[str, set[str]] = {}
        self.targetless_sources: dict[str, set[str]] = {}
        for transition in chart.spec.transitions:
            if transition.event not in chart.accepted_events:
                continue  # done events are internal
            sources = expand_sources(self.tree, transition)
            self.sources.setdefault(transition.event, set()).update(sources)
            if transition.target is None:
                self.targetless_sources.setdefault(transition.event, set()).update(sources)
        self.regions: tuple[str, ...] = self.tree.regions()

    def active(self, state: str) -> frozenset[str]:
        """Every active state: the atomic ones and their ancestors (unknown ids kept)."""
        active: set[str] = set()
        for leaf in atomic_states(state):
            active.add(leaf)
            if leaf in self.tree.nodes:
                active.update(self.tree.ancestors(leaf))
        return frozenset(active)

    def enabled_events(self, state: str) -> list[str]:
        """The external events with a transition from a state active in ``state``
        (whether its guards hold is the step's business), sorted. A final
        atomic state is never left: from it (or its parents) only targetless
        transitions count."""
        leaves = [leaf for leaf in atomic_states(state) if leaf in self.tree.nodes]
        live = {a for leaf in leaves if not self._final(leaf) for a in self.active(leaf)}
        final = {a for leaf in leaves if self._final(leaf) for a in self.active(leaf)}
        return sorted(
            event
            for event, sources in self.sources.items()
            if sources & live or self.targetless_sources.get(event, set()) & final
        )

    def _final(self, state_id: str) -> bool:
        return self.tree.nodes[state_id].kind == "final"

    def region_of(self, state_id: str) -> str:
        """The region of the chart's top that holds ``state_id`` (``""``: a compound top)."""
        if not self.tree.parallel:
            return TOP
        ancestors = self.tree.ancestors(state_id)
        return ancestors[-1] if ancestors else state_id

    def region_states(self, state: str) -> dict[str, tuple[str, ...]]:
        """The active atomic states of each region of the chart's top."""
        found: dict[str, tuple[str, ...]] = {region: () for region in self.regions}
        for leaf in atomic_states(state):
            if leaf in self.tree.nodes:
                region = self.region_of(leaf)
                found[region] = (*found[region], leaf)
        return found

    def is_top_final(self, state_id: str) -> bool:
        """A final state that ends its region of the chart's top (or a flat chart):
        once there, that region stays."""
        node = self.tree.nodes.get(state_id)
        if node is None or node.kind != "final":
            return False
        return node.parent is None or (self.tree.parallel and node.parent in self.tree.top)

    def problems(self, state: str) -> list[str]:
        """Why ``state`` is no configuration of the chart (empty if it is one):
        every id declared and atomic, in document order, and exactly one active
        child in each active compound state, every child of an active parallel one."""
        leaves = atomic_states(state)
        unknown = [leaf for leaf in leaves if leaf not in self.tree.nodes]
        if unknown:
            return [f"undeclared state {leaf!r}" for leaf in unknown]
        problems = [
            f"{leaf!r} is not an atomic state"
            for leaf in leaves
            if not self.tree.nodes[leaf].is_atomic
        ]
        if list(leaves) != list(self.tree.in_document_order(set(leaves))):
            problems.append(f"atomic states not once each in document order: {state!r}")
        active = self.active(state)
        for holder in (TOP, *self.tree.in_document_order(active)):
            children = [c for c in self.tree.children(holder) if c in active]
            kind = self.tree.kind(holder)
            where = holder or "the chart's top"
            if kind == "compound" and len(children) != 1:
                problems.append(f"{where} has {len(children)} active children, not one")
            elif kind == "parallel" and len(children) != len(self.tree.children(holder)):
                missing = sorted(set(self.tree.children(holder)) - active)
                problems.append(f"{where} has regions with no active state: {missing}")
        return problems
