"""The like-for-like three-region step the pure-step benchmark sets beside
the flat chart's (engine/sample/shipment `ONE_MOVE_CASE`): it must do what
its name claims, one transition with one action in one region, or the
figure it gives would compare unlike work."""

from __future__ import annotations

from engine import ChartSet
from engine.charts.configuration import atomic_states
from engine.sample.shipment import ONE_MOVE_CASE, chart_package
from engine.step import EntityState, Outcome, step

CHARTS = ChartSet.load([chart_package()])
CHART = CHARTS.by_kind["shipment"]


def test_the_one_move_case_moves_one_region_by_one_transition_with_one_action():
    case = ONE_MOVE_CASE
    entity = EntityState("shipment:1", "shipment", case.state, dict(case.data), 1, 1, None)
    event = CHARTS.event_types.make(
        case.event_type, "shipment:1", case.payload, event_id="e1", source="t", received_at=1.0
    )
    result = step(CHART, entity, event)
    assert result.outcome is Outcome.TRANSITIONED, result.reason
    assert result.to_state == case.expected
    assert len(result.fired) == 1
    (fired,) = result.fired
    assert len(CHART.spec.transitions[fired].actions) == 1
    moved = set(atomic_states(case.state)) ^ set(atomic_states(case.expected))
    assert {leaf.split(".")[0] for leaf in moved} == {"sync"}
    assert result.entity.data["sync_error"] == "rejected"
    assert not result.commands
