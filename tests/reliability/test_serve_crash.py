"""PLAT-3, ENG-6: SIGKILL `channelsync serve` in the middle of a webhook stream."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from pydantic_core import from_json

from adapters.sandbox import story
from adapters.sandbox.story import Sandboxes, connect_shop
from adapters.tiktok_shop.webhooks import ORDER_STATUS_CHANGE, order_status_event_id
from engine.clock import SystemClock
from tests.reliability.serve import free_port, start_serve


async def start_serve_for(db: Path, box: Sandboxes, port: int) -> subprocess.Popen:
    return await start_serve(
        db,
        port,
        TIKTOK_API_URL=box.servers[0].url,
        TIKTOK_AUTH_URL=box.servers[0].url,
        SHOPLAZZA_API_URL=box.servers[1].url,
    )


def notification_ids(bodies: list[bytes]) -> set[str]:
    """The event id each webhook becomes: an order status change is named by the
    change itself (PLAT-8), the others by their notification id."""
    ids = set()
    for body in bodies:
        doc = from_json(body)
        data = doc["data"]
        if doc["type"] == ORDER_STATUS_CHANGE:
            ids.add(
                order_status_event_id(
                    str(data["order_id"]), data["order_status"], data["update_time"]
                )
            )
        else:
            ids.add(f"tiktok:{doc['tts_notification_id']}")
    return ids


async def test_plat3_eng6_sigkill_of_serve_loses_no_acknowledged_webhook(tmp_path):
    db = tmp_path / "serve.db"
    box = await Sandboxes.start(db, clock=SystemClock())
    box.tiktok.review_seconds = 0  # reviews finish at the next tick
    try:
        await connect_shop(box)
        await box.service.add_collection(story.SHOP, "summer")
        await box.settle()
        shirt = await box.tiktok_product_id("1001")
        await box.service.stop()  # the in-process engine leaves; serve takes over

        port = free_port()
        box.tiktok.webhooks.url = f"http://127.0.0.1:{port}/webhooks/tiktok"
        child = await start_serve_for(db, box, port)
        setup = len(box.tiktok.webhooks.acknowledged)  # the product reviews, before serve
        orders = [
            box.tiktok.create_order([{"product_id": shirt, "seller_sku": "SKU-1001"}])["id"]
            for _ in range(20)
        ]
        for order_id in orders:
            box.tiktok.order_action(order_id, "pay")

        async def kill_after(acknowledged: int) -> None:
            while len(box.tiktok.webhooks.acknowledged) < acknowledged:
                await asyncio.sleep(0.005)
            child.send_signal(signal.SIGKILL)

        killer = asyncio.create_task(kill_after(setup + 12))
        await box.tiktok.webhooks.flush()
        await killer
        child.wait(timeout=10)
        assert child.returncode == -signal.SIGKILL
        acknowledged_before = len(box.tiktok.webhooks.acknowledged) - setup
        assert 12 <= acknowledged_before < 40, "killed in the middle of the stream"

        child = await start_serve_for(db, box, port)
        box.tiktok.webhooks.redeliver()
        await box.tiktok.webhooks.flush()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with sqlite3.connect(db) as conn:
                pending = conn.execute(
                    "SELECT COUNT(*) FROM outbox WHERE status != 'done'"
                ).fetchone()[0]
                synced = conn.execute(
                    "SELECT COUNT(*) FROM entities WHERE chart = 'order'"
                    " AND json_extract(data, '$.sync.status') = 'synced'"
                ).fetchone()[0]
            if pending == 0 and synced == len(orders):
                break
            await asyncio.sleep(0.2)
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=20)

        with sqlite3.connect(db) as conn:
            logged = {row[0] for row in conn.execute("SELECT event_id FROM events")}
            states = dict(conn.execute("SELECT key, state FROM entities WHERE chart = 'order'"))
            left = conn.execute(
                "SELECT command, status FROM outbox WHERE status != 'done'"
            ).fetchall()
        acknowledged = notification_ids(box.tiktok.webhooks.acknowledged[setup:])
        assert acknowledged <= logged, f"acknowledged but lost: {sorted(acknowledged - logged)[:3]}"
        assert len(acknowledged) == 40, "every webhook was finally delivered"
        assert states == {f"order:{o}": "on_hold" for o in orders}
        assert left == [], "every committed command was carried out"
        created = [o for o in box.shoplazza.orders.values()]
        tags = [
            next(t for t in o["tags"].split(",") if t.startswith("tiktok_order:")) for o in created
        ]
        assert sorted(tags) == sorted(f"tiktok_order:{o}" for o in orders), (
            "each order created in Shoplazza exactly once, crash or not"
        )
    finally:
        await box.stop()
