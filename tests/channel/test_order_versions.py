"""Orders across chart versions (ENG-9): a log written under version 1 of the
order chart (flat, statuses in data) checks with version 2 installed, the
orders on it keep stepping on it, and `migrate` moves them to the three
regions as logged events that `check` replays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine import ChartSet, Engine, FakeClock
from engine.chartset import ChartPackage
from engine.replay import check
from engine.settings import EngineSettings
from engine.store.sqlite import SQLiteStore
from engine.version_migration import plan_moves, publish_moves
from statecharts import CHART_DIR, RULES, chart_package

V1_ONLY = ChartSet.load(
    [ChartPackage("orders_v1", [CHART_DIR / "versions" / "order_v1.yaml"], RULES)]
)
INSTALLED = ChartSet.load([chart_package()])
QUIET = EngineSettings(run_timers=False, run_outbox=False)
ITEM = {"id": "li-1", "product_id": "p1"}


async def publish(engine: Engine, entity: str, event_type: str, payload: dict[str, Any]) -> Any:
    number = len(await engine.history(entity))
    return await engine.publish(
        {
            "event_id": f"{entity}:{event_type}:{number}",
            "type": event_type,
            "source": "test",
            "entity": entity,
            "payload": payload,
        }
    )


async def pushed_order(engine: Engine, order_id: str) -> None:
    """An order synced into Shoplazza whose fulfillment went to TikTok."""
    key = f"order:{order_id}"
    status = {"order_id": order_id, "order_status": "AWAITING_SHIPMENT", "update_time": 10}
    await publish(engine, key, "order.status_changed", status)
    detail = {"id": order_id, "status": "X", "create_time": 1, "update_time": 10}
    await publish(engine, key, "order.detail_fetched", {**detail, "line_items": [ITEM]})
    await publish(engine, key, "order.products_resolved", {"authorization_active": True})
    created = {"shoplazza_order_id": f"SL-{order_id}", "created_at": 5}
    await publish(engine, key, "order.shoplazza_created", created)
    fulfilled = {"tracking_number": "9400", "tracking_company_code": "usps"}
    await publish(engine, key, "order.shoplazza_fulfilled", fulfilled)
    resolved = {"tracking_company_code": "usps", "shipping_provider_id": "7"}
    await publish(engine, key, "order.carrier_resolved", {**resolved, "authorization_active": True})
    await publish(engine, key, "order.shipping_pushed", {"package_id": "pk"})


async def failed_order(engine: Engine, order_id: str) -> None:
    """An order whose sync failed for want of authorization."""
    key = f"order:{order_id}"
    status = {"order_id": order_id, "order_status": "ON_HOLD", "update_time": 10}
    await publish(engine, key, "order.status_changed", status)
    await publish(engine, key, "order.sync_failed", {"reason": "authorization inactive"})


async def checked(db: Path) -> str | None:
    store = await SQLiteStore.open_readonly(db)
    try:
        result = await check(store, INSTALLED)
        return result.divergence.describe() if result.divergence else None
    finally:
        await store.close()


async def test_a_v1_order_log_checks_with_v2_installed_and_after_migrate(
    db_path: Path, clock: FakeClock
) -> None:
    engine = await Engine.open(db_path, charts=V1_ONLY, clock=clock, settings=QUIET)
    try:
        await pushed_order(engine, "1")
        await failed_order(engine, "2")
        v1 = await engine.entity("order:1")
        assert v1 is not None and v1.state == "awaiting_shipment"
        assert v1.data["fulfillment"]["status"] == "pushed", "version 1 kept it in data"
    finally:
        await engine.stop()
    assert await checked(db_path) is None

    engine = await Engine.open(db_path, charts=INSTALLED, clock=clock, settings=QUIET)
    try:
        # Still on version 1 until migrated; a new order starts on version 2.
        moved = await publish(
            engine,
            "order:1",
            "order.status_changed",
            {"order_id": "1", "order_status": "IN_TRANSIT", "update_time": 20},
        )
        assert moved.to_state == "in_transit"
        await pushed_order(engine, "3")
        new = await engine.entity("order:3")
        assert new is not None and new.chart_version == 2
        assert new.state == "lifecycle.awaiting_shipment,sync.synced,fulfillment.pushed.sent"
        moves = await plan_moves(engine.store, INSTALLED, chart="order")
        await publish_moves(engine, moves)
        one, two = await engine.entity("order:1"), await engine.entity("order:2")
    finally:
        await engine.stop()
    assert one is not None and two is not None
    assert (one.chart_version, one.state) == (
        2,
        "lifecycle.in_transit,sync.synced,fulfillment.pushed.sent",
    )
    assert "status" not in one.data["sync"] and "status" not in one.data["fulfillment"]
    assert one.data["sync"]["shoplazza_order_id"] == "SL-1", "the facts stay"
    assert two.state == "lifecycle.on_hold,sync.failed,fulfillment.none"
    assert two.data["sync"]["reason"] == "authorization inactive"
    assert await checked(db_path) is None

    # Migrated, order 2 steps on version 2: its failed sync retries from there.
    engine = await Engine.open(db_path, charts=INSTALLED, clock=clock, settings=QUIET)
    try:
        retried = await publish(engine, "order:2", "order.retry_sync", {})
        assert retried.to_state == "lifecycle.on_hold,sync.not_synced,fulfillment.none"
    finally:
        await engine.stop()
    assert await checked(db_path) is None
