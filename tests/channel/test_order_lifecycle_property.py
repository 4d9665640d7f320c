"""ORD-8 as a property over every valid TikTok lifecycle path."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine import ChartSet
from engine.step import Outcome, new_entity, step
from statecharts import chart_package

CHARTS = ChartSet.load([chart_package()])
ORDER = CHARTS.by_kind["order"]
FINAL = {"completed", "cancelled"}

# TikTok's documented moves (PLATFORMS.md): forward, cancellation before delivery.
NEXT = {
    "UNPAID": ["ON_HOLD", "AWAITING_SHIPMENT", "CANCELLED"],
    "ON_HOLD": ["AWAITING_SHIPMENT", "CANCELLED"],
    "AWAITING_SHIPMENT": ["PARTIALLY_SHIPPING", "AWAITING_COLLECTION", "IN_TRANSIT", "CANCELLED"],
    "PARTIALLY_SHIPPING": ["AWAITING_COLLECTION", "IN_TRANSIT", "CANCELLED"],
    "AWAITING_COLLECTION": ["PARTIALLY_SHIPPING", "IN_TRANSIT", "CANCELLED"],
    "IN_TRANSIT": ["DELIVERED", "CANCELLED"],
    "DELIVERED": ["COMPLETED"],
    "COMPLETED": [],
    "CANCELLED": [],
}


@st.composite
def lifecycle_paths(draw: st.DrawFn) -> list[tuple[str, int]]:
    status = draw(st.sampled_from(["UNPAID", "UNPAID", "ON_HOLD", "AWAITING_SHIPMENT"]))
    path = [status]
    while NEXT[status] and len(path) < 10 and draw(st.booleans() | st.just(True)):
        status = draw(st.sampled_from(NEXT[status]))
        path.append(status)
    times, now = [], 1_700_000_000
    for _ in path:
        now += draw(st.integers(1, 3600))
        times.append(now)
    return list(zip(path, times, strict=True))


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[tuple[str, int]], list[int]]:
    path = draw(lifecycle_paths())
    kept = draw(st.lists(st.integers(0, len(path) - 1), min_size=1, max_size=3 * len(path)))
    order = draw(st.permutations(kept))  # any order, with duplicates; the rest is lost
    return path, list(order)


@settings(max_examples=400, deadline=None)
@given(deliveries())
def test_ord8_any_delivery_order_ends_at_the_newest_update_and_never_leaves_a_final_state(case):
    """ORD-8: whatever subset of a valid path's updates arrives, in whatever order and
    with whatever repeats, the order ends in the newest delivered status; stale
    updates never move it back; a final state is never left; forward jumps over
    lost updates are allowed."""
    path, delivered = case
    entity = new_entity(ORDER, "order:1")
    reached_final = None
    for n, index in enumerate(delivered):
        status, update_time = path[index]
        event = CHARTS.event_types.make(
            "order.status_changed",
            "order:1",
            {"order_id": "1", "order_status": status, "update_time": update_time},
            event_id=f"e{n}",
            source="tiktok",
            received_at=1.0,
        )
        result = step(ORDER, entity, event)
        assert result.outcome in (Outcome.TRANSITIONED, Outcome.IGNORED), result.reason
        if result.outcome is Outcome.TRANSITIONED:
            entity = result.entity
        if reached_final:
            assert entity.state == reached_final, "a final state was left"
        elif entity.state in FINAL:
            reached_final = entity.state
    newest_status, newest_time = max((path[i] for i in delivered), key=lambda item: item[1])
    assert entity.state == newest_status.lower()
    assert entity.data["update_time"] == newest_time
