"""ORD-8 and ORD-9 as properties over every valid TikTok lifecycle path,
delivered in any order, with repeats and with equal update_times."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine import ChartSet
from engine.step import Outcome, new_entity, step
from statecharts import chart_package
from statecharts.order import LIFECYCLE_RANK, lifecycle_of

CHARTS = ChartSet.load([chart_package()])
ORDER = CHARTS.by_kind["order"]
FINAL = {"completed", "cancelled"}

# TikTok's documented moves (docs/order-flows.md): forward, cancellation before delivery.
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
    # TikTok stamps update_time in whole seconds: two moves may share one (ORD-9).
    times, now = [], 1_700_000_000
    for _ in path:
        now += draw(st.sampled_from([0, 0, 1]) | st.integers(0, 3600))
        times.append(now)
    return list(zip(path, times, strict=True))


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[tuple[str, int]], list[int]]:
    path = draw(lifecycle_paths())
    kept = draw(st.lists(st.integers(0, len(path) - 1), min_size=1, max_size=3 * len(path)))
    order = draw(st.permutations(kept))  # any order, with duplicates; the rest is lost
    return path, list(order)


def furthest(path: list[tuple[str, int]], delivered: list[int]) -> tuple[str, int]:
    """The newest delivered update; among equally new ones, the furthest along."""
    return max(
        (path[i] for i in delivered),
        key=lambda item: (item[1], LIFECYCLE_RANK[item[0].lower()]),
    )


def deliver(path: list[tuple[str, int]], delivered: list[int]):
    """Step the order chart through the deliveries; yield the entity after each."""
    entity = new_entity(ORDER, "order:1")
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
        yield entity


@settings(max_examples=400, deadline=None)
@given(deliveries())
# Two moves in one second, in order: the later one applies (ORD-9).
@example(([("AWAITING_SHIPMENT", 1_700_000_100), ("IN_TRANSIT", 1_700_000_100)], [0, 1]))
# ...and delivered the other way round, the earlier one never moves it back.
@example(([("ON_HOLD", 1_700_000_100), ("CANCELLED", 1_700_000_100)], [1, 0, 1]))
def test_ord8_ord9_any_delivery_order_ends_at_the_furthest_update_and_never_moves_back(case):
    """ORD-8, ORD-9: whatever subset of a valid path's updates arrives, in whatever
    order, with repeats and equal update_times, the order ends at the newest
    delivered status (among equally new ones, the furthest along TikTok's
    lifecycle); it never moves back: what it shows is never older, and at an
    equal update_time never less far along, than what it showed before; a
    final state is never left; forward jumps over lost updates are allowed."""
    path, delivered = case
    reached_final = None
    shown: tuple[int, int] | None = None
    entity = None
    for entity in deliver(path, delivered):
        status = lifecycle_of(entity.state)  # the lifecycle region's state
        if "update_time" in entity.data:
            now = (entity.data["update_time"], LIFECYCLE_RANK[status])
            assert shown is None or now >= shown, f"moved back from {shown} to {now}"
            shown = now
        if reached_final:
            assert status == reached_final, "a final state was left"
        elif status in FINAL:
            reached_final = status
    assert entity is not None
    newest_status, newest_time = furthest(path, delivered)
    assert lifecycle_of(entity.state) == newest_status.lower()
    assert entity.data["update_time"] == newest_time
