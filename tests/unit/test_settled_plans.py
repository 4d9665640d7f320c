"""A microstep and the done events it raises, cached as one plan
(engine/charts/settled.py), must step exactly as the macrostep that
processes each done event in turn: same configuration, transitions fired,
states entered, timers, data and history."""

from __future__ import annotations

from engine import ChartSet
from engine.sample.shipment import chart_package
from engine.step import EntityState, StepResult, step

PACKED = "lifecycle.active.packed"
START = f"{PACKED},sync.synced,push.pushing"


def _pushed(charts: ChartSet, runs: int) -> StepResult:
    chart = charts.by_kind["shipment"]
    result = None
    for number in range(runs):  # the first run fills the caches, the next use them
        entity = EntityState("shipment:1", "shipment", START, {"tracking_number": "1Z"}, 1, 1)
        event = charts.event_types.make(
            "shipment.pushed", "shipment:1", {}, event_id=f"e{number}", source="t", received_at=5.0
        )
        result = step(chart, entity, event)
    assert result is not None
    return result


def _summary(result: StepResult) -> tuple[object, ...]:
    return (
        result.outcome,
        result.to_state,
        result.fired,
        result.entered,
        result.timers,
        result.entity.data,
        result.entity.history,
    )


def test_a_done_event_chain_cached_as_one_plan_steps_as_the_macrostep():
    joined = ChartSet.load([chart_package()])
    macro = ChartSet.load([chart_package()])
    plans = macro.by_kind["shipment"].plans
    assert plans is not None

    class NeverJoined(dict):  # every lookup finds "needs a macrostep"
        def __contains__(self, key: object) -> bool:
            return True

        def __getitem__(self, key: object) -> None:
            return None

    plans.settled = NeverJoined()
    cached = _pushed(joined, 3)
    assert cached.to_state == f"{PACKED},sync.synced,push.pushed"
    assert cached.entity.data["tracking_sent"] is True
    assert len(cached.fired) == 2  # pushed, then done.state.push's transition
    assert _summary(cached) == _summary(_pushed(macro, 3))
    joined_plans = joined.by_kind["shipment"].plans
    assert joined_plans is not None
    assert any(plan is not None for plan in joined_plans.settled.values())
