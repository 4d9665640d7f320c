"""What a test run exercised of a chart, and what it never did.

`CoverageRecorder` collects, per chart: the edges taken (a transition from one
of its sources), how often each transition fired (by its index in the chart
file, from `StepResult.fired`, done-event transitions included), the states
each region of the chart was in, and the states entered through history
(``<id>@history`` in `StepResult.entered`). `report` prints what was never
reached, so a test that means to cover a chart can say what it missed.

The graph helpers (`edges`, `shortest_paths`, ...) live in
`engine.testing.paths` and are re-exported here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from engine.charts.compiled import CompiledChart
from engine.charts.hierarchy import expand_sources
from engine.step import StepResult
from engine.testing.configurations import ChartShape
from engine.testing.paths import Edge, edges, shortest_paths, simple_paths, transition_paths

__all__ = [
    "CoverageRecorder",
    "Edge",
    "edges",
    "shortest_paths",
    "simple_paths",
    "transition_paths",
]

HISTORY_MARK = "@history"


@dataclass
class CoverageRecorder:
    """Collects the steps a test run took, per chart (see the module)."""

    # (chart, source, event, target): steps recorded by their ends.
    taken: set[tuple[str, str, str, str]] = field(default_factory=set)
    # (chart, transition index, source state): edges taken.
    edges_taken: set[tuple[str, int, str]] = field(default_factory=set)
    fired: Counter[tuple[str, int]] = field(default_factory=Counter)
    visited: dict[str, set[str]] = field(default_factory=dict)
    history_entries: Counter[tuple[str, str]] = field(default_factory=Counter)
    _shapes: dict[str, ChartShape] = field(default_factory=dict, repr=False)

    def record(self, chart: str, source: str, event: str, target: str) -> None:
        """One step by its ends (a flat chart's source and target state)."""
        self.taken.add((chart, source, event, target))

    def record_edge(self, chart: str, edge: Edge) -> None:
        """One edge taken on purpose (`drive_transitions`)."""
        self.taken.add((chart, edge.source, edge.event, edge.target))
        if edge.index >= 0:
            self.edges_taken.add((chart, edge.index, edge.source))

    def record_step(self, chart: CompiledChart, result: StepResult) -> None:
        """Everything one `StepResult` shows: the transitions that fired (and
        from which of their sources), the states it left the entity in and
        passed through, the states it entered through history."""
        shape = self._shape(chart)
        name = chart.name
        visited = self.visited.setdefault(name, set())
        visited |= shape.active(result.from_state)
        if result.to_state is not None:
            visited |= shape.active(result.to_state)
        was_active = shape.active(result.from_state)
        for index in result.fired:
            self.fired[(name, index)] += 1
            transition = chart.spec.transitions[index]
            for source in expand_sources(shape.tree, transition):
                if source in was_active:
                    self.edges_taken.add((name, index, source))
        for entered in result.entered:
            state_id = entered.removesuffix(HISTORY_MARK)
            visited.add(state_id)
            if entered.endswith(HISTORY_MARK):
                self.history_entries[(name, state_id)] += 1

    def _shape(self, chart: CompiledChart) -> ChartShape:
        shape = self._shapes.get(chart.name)
        if shape is None or shape.chart is not chart:
            shape = self._shapes[chart.name] = ChartShape(chart)
        return shape

    # ------------------------------------------------------------ what was missed

    def unexercised(self, chart: CompiledChart) -> list[Edge]:
        """Edges of ``chart`` no recorded step went through."""
        name = chart.name
        seen = {(s, e, t) for c, s, e, t in self.taken if c == name}
        missing = {
            Edge(edge.source, edge.event, edge.target, index=edge.index)
            for edge in edges(chart)
            if (edge.source, edge.event, edge.target) not in seen
            and (name, edge.index, edge.source) not in self.edges_taken
        }
        return sorted(missing, key=lambda e: (e.source, e.event, e.target, e.index))

    def never_fired(self, chart: CompiledChart) -> list[int]:
        """Indices of the chart's transitions that never fired."""
        return [
            index
            for index in range(len(chart.spec.transitions))
            if not self.fired[(chart.name, index)]
        ]

    def unvisited(self, chart: CompiledChart) -> dict[str, list[str]]:
        """Per region of the chart's top (``""`` for a compound top), the states
        no recorded step left active or passed through, in document order."""
        shape = self._shape(chart)
        visited = self.visited.get(chart.name, set())
        missing: dict[str, list[str]] = {region: [] for region in shape.regions}
        for state_id in shape.tree.nodes:
            if state_id not in visited:
                missing[shape.region_of(state_id)].append(state_id)
        return missing

    def history_targets(self, chart: CompiledChart) -> dict[str, int]:
        """Each state some transition enters with history: how often it was."""
        targets = [t.target for t in chart.spec.transitions if t.history and t.target]
        return {target: self.history_entries[(chart.name, target)] for target in targets}

    def report(self, chart: CompiledChart) -> str:
        """What the run missed, readably: edges, transitions, states per region, history."""
        missing = self.unexercised(chart)
        total = len({(e.source, e.event, e.target) for e in edges(chart)})
        lines = [f"{chart.name}: {total - len(missing)} of {total} transitions exercised"]
        lines.extend(f"  never: {edge}" for edge in missing)
        if not self._stepped(chart):
            return "\n".join(lines)
        never = self.never_fired(chart)
        count = len(chart.spec.transitions)
        lines.append(f"  by transition: {count - len(never)} of {count} fired")
        for index in never:
            transition = chart.spec.transitions[index]
            sources = ", ".join(transition.source)
            target = transition.target or "(stays)"
            lines.append(f"    never fired #{index}: {sources} --{transition.event}--> {target}")
        shape = self._shape(chart)
        for region, states in self.unvisited(chart).items():
            under = [s for s in shape.tree.nodes if shape.region_of(s) == region]
            where = f"region {region}" if region else "states"
            line = f"  {where}: {len(under) - len(states)} of {len(under)} visited"
            lines.append(line + (f"; never: {', '.join(states)}" if states else ""))
        for target, times in self.history_targets(chart).items():
            lines.append(f"  history: {target} entered through history {times} times")
        return "\n".join(lines)

    def _stepped(self, chart: CompiledChart) -> bool:
        return chart.name in self.visited or any(c == chart.name for c, _i in self.fired)
