"""A hypothesis `RuleBasedStateMachine` for any chart, with built-in invariants.

    Machine = chart_state_machine(charts, "order", payloads=..., invariants=[...])
    TestOrder = Machine.TestCase

Rules: send an event with a transition from one of the entity's active
states (most runs go deep into the chart), send any event of the chart
(allowed or not), deliver an event again, move the clock and fire due timers.
Invariants, after every step: every entity is in a configuration of the chart
(declared atomic states, one per active region: exactly one active child in
each active compound state, every region of an active parallel one); a final
state that ends a region of the chart's top (a flat chart's final state) is
never left; a repeated event id changes nothing; replaying the log gives the
live state; and yours, each a function of the harness that raises
AssertionError.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from engine.charts.compiled import CompiledChart
from engine.chartset import ChartSet
from engine.clock import FakeClock
from engine.events import Event
from engine.testing.configurations import ChartShape
from engine.testing.coverage import CoverageRecorder
from engine.testing.harness import ChartHarness
from engine.testing.strategies import PayloadStrategies, payloads

Invariant = Callable[[ChartHarness], None]


class _ChartRules(RuleBasedStateMachine):
    """What every chart's machine shares: the harness, the built-in invariants and
    redelivery. `chart_state_machine` sets the chart and adds the rules that
    draw from its events, entity keys and clock range."""

    charts: ClassVar[ChartSet]
    chart: ClassVar[CompiledChart]
    shape: ClassVar[ChartShape]
    payloads_for: ClassVar[PayloadStrategies | None]
    checks: ClassVar[Sequence[Invariant]]
    coverage: ClassVar[CoverageRecorder | None]

    def __init__(self) -> None:
        super().__init__()
        self.harness = ChartHarness(self.charts, FakeClock())
        self.sent: list[Event] = []
        # Per entity, per region of the chart's top: the final state it ended in.
        self.reached_final: dict[tuple[str, str], tuple[str, ...]] = {}

    def _send(self, data: st.DataObject, kind: str, key: str) -> None:
        payload = data.draw(payloads(self.charts, kind, self.payloads_for), label="payload")
        event = self.harness.make(kind, key, payload)
        result = self.harness.apply(event)
        self.sent.append(event)
        if self.coverage is not None and result is not None:
            self.coverage.record_step(self.chart, result)
            if result.to_state is not None:
                self.coverage.record(self.chart.name, result.from_state, kind, result.to_state)

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def deliver_again(self, data: st.DataObject) -> None:
        event = data.draw(st.sampled_from(self.sent), label="repeat")
        before = {k: v.as_dict() for k, v in self.harness.entities.items()}
        assert self.harness.apply(event) is None, "a repeated event id was applied"
        after = {k: v.as_dict() for k, v in self.harness.entities.items()}
        assert after == before, "a repeated event id changed an entity"

    @invariant()
    def every_configuration_is_valid(self) -> None:
        for key, entity in self.harness.entities.items():
            problems = self.shape.problems(entity.state)
            assert not problems, f"{key} is in no configuration of the chart: {problems}"

    @invariant()
    def final_states_are_never_left(self) -> None:
        for key, entity in self.harness.entities.items():
            for region, states in self.shape.region_states(entity.state).items():
                reached = self.reached_final.get((key, region))
                if reached is not None:
                    assert states == reached, f"{key} left final {reached} for {states}"
                elif any(self.shape.is_top_final(state) for state in states):
                    self.reached_final[(key, region)] = states

    @invariant()
    def replay_equals_live_state(self) -> None:
        assert self.harness.replay() == self.harness.entities

    @invariant()
    def user_invariants(self) -> None:
        for check in self.checks:
            check(self.harness)


def chart_state_machine(
    charts: ChartSet,
    chart_name: str,
    *,
    payloads_for: PayloadStrategies | None = None,
    invariants: Sequence[Invariant] = (),
    entities: int = 2,
    max_advance: float = 6 * 3600,
    coverage: CoverageRecorder | None = None,
) -> type[RuleBasedStateMachine]:
    chart = charts.by_name[chart_name]
    kinds = sorted(chart.accepted_events)
    keys = [f"{chart.entity_kind}:{n}" for n in range(entities)]
    shape = ChartShape(chart)

    class ChartMachine(_ChartRules):
        @rule(data=st.data(), key=st.sampled_from(keys))
        def send_allowed_event(self, data: st.DataObject, key: str) -> None:
            state = self.harness.state(key) or chart.initial
            allowed = shape.enabled_events(state)
            if allowed:
                self._send(data, data.draw(st.sampled_from(allowed), label="event"), key)

        @rule(data=st.data(), key=st.sampled_from(keys), kind=st.sampled_from(kinds))
        def send_any_event(self, data: st.DataObject, key: str, kind: str) -> None:
            self._send(data, kind, key)

        @rule(seconds=st.floats(1, max_advance))
        def time_passes(self, seconds: float) -> None:
            self.harness.clock.advance(seconds)
            self.harness.fire_due_timers()

    ChartMachine.charts, ChartMachine.chart, ChartMachine.shape = charts, chart, shape
    ChartMachine.payloads_for, ChartMachine.checks = payloads_for, tuple(invariants)
    ChartMachine.coverage = coverage
    ChartMachine.__name__ = ChartMachine.__qualname__ = (
        f"{chart_name.title().replace('_', '')}Machine"
    )
    return ChartMachine
