"""ENG-10: a second `channelsync serve` on a database in use refuses to start."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys

import httpx

from adapters.sandbox import story
from adapters.sandbox.load import free_port, serve_environment, start_serve
from adapters.tiktok_shop import webhook_signature

SERVE = (sys.executable, "-m", "engine.cli.main", "serve")


def order_webhook(n: int) -> bytes:
    """A TikTok order status webhook (type 1) for a new order, as TikTok sends it."""
    return json.dumps(
        {
            "type": 1,
            "tts_notification_id": f"73800662840100{n:05d}",
            "shop_id": "7495540735365777507",
            "timestamp": 1718305585 + n,
            "data": {
                "order_id": f"5766536881352{n:05d}",
                "order_status": "UNPAID",
                "update_time": 1718305585 + n,
            },
        }
    ).encode()


async def send(client: httpx.AsyncClient, port: int, body: bytes) -> int:
    signature = webhook_signature(story.APP_KEY, story.APP_SECRET, body)
    answer = await client.post(
        f"http://127.0.0.1:{port}/webhooks/tiktok",
        content=body,
        headers={"Authorization": signature},
    )
    return answer.status_code


async def test_eng10_a_second_serve_on_one_database_exits_at_once_and_the_first_keeps_serving(
    tmp_path,
):
    """ENG-10: two real `serve` processes on one file. The second exits
    non-zero with a one-line message naming the first (no traceback); the
    first answers 200 before and after, and records every webhook once."""
    db = tmp_path / "serve.db"
    port = free_port()
    first = await start_serve(db, port)
    try:
        async with httpx.AsyncClient() as client:
            assert await send(client, port, order_webhook(1)) == 200
            second = subprocess.run(
                [*SERVE, "--db", str(db), "--port", str(free_port()), "--pull-interval", "0"],
                env={**serve_environment(), "COLUMNS": "400"},
                capture_output=True,
                text=True,
                timeout=20,  # a second server that starts would run until killed
            )
            assert second.returncode == 1
            assert f"is in use by pid {first.pid} " in second.stderr
            assert "serve --db" in second.stderr, "the holder's command line is named"
            assert "Traceback" not in second.stderr + second.stdout
            for n in range(2, 6):
                assert await send(client, port, order_webhook(n)) == 200
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)
    assert first.returncode == 0
    with sqlite3.connect(db) as conn:
        ids = [row[0] for row in conn.execute("SELECT event_id FROM events")]
    assert len(ids) == len(set(ids)) == 5, ids
