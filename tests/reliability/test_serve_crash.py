"""Pieces for tests that SIGKILL `channelsync serve` in the middle of a webhook
stream: the test itself (PLAT-3, ENG-6, with the writer child killed first:
ENG-12) is the chaos test, tests/reliability/test_chaos.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pydantic_core import from_json

from adapters.sandbox.load import start_serve
from adapters.sandbox.story import Sandboxes
from adapters.tiktok_shop.webhooks import ORDER_STATUS_CHANGE, order_status_event_id


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
