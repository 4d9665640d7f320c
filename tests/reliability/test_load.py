"""A burst of signed webhooks against `channelsync serve` on loopback."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import statistics
import time

import httpx
import pytest

from adapters.sandbox.load import free_port, signature, start_serve, webhook_bodies
from tests.reliability.figures import record


async def burst(tmp_path, count: int, concurrency: int) -> dict:
    db, port = tmp_path / "load.db", free_port()
    child = await start_serve(db, port)
    url = f"http://127.0.0.1:{port}/webhooks/tiktok"
    bodies = webhook_bodies(count)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def sender(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            started = time.perf_counter()
            response = await client.post(
                url,
                content=body,
                headers={"Authorization": signature(body)},
            )
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    started = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        await asyncio.gather(*(sender(client) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    child.send_signal(signal.SIGTERM)
    child.wait(timeout=30)
    with sqlite3.connect(db) as conn:
        logged = conn.execute(
            "SELECT COUNT(*) FROM events WHERE event_id LIKE 'tiktok:load-%'"
        ).fetchone()[0]
    latencies.sort()
    return {
        "sent": count,
        "acknowledged": statuses.get(200, 0),
        "statuses": statuses,
        "logged": logged,
        "per_second": count / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(0.99 * (len(latencies) - 1))] * 1000,
    }


def report(name: str, figures: dict) -> None:
    record(
        name,
        f"{figures['sent']} signed webhooks sent, {figures['acknowledged']} acknowledged, "
        f"{figures['logged']} in the log, loss {figures['acknowledged'] - figures['logged']}; "
        f"{figures['per_second']:.0f} webhooks/s, ack latency p50 {figures['p50_ms']:.1f} ms, "
        f"p99 {figures['p99_ms']:.1f} ms",
    )


async def test_plat3_a_burst_of_signed_webhooks_is_acknowledged_and_logged_without_loss(tmp_path):
    """PLAT-3: 5,000 signed webhooks from 32 concurrent connections: every one
    answered 200 after commit, every acknowledged one in the log."""
    figures = await burst(tmp_path, count=5_000, concurrency=32)
    assert figures["statuses"] == {200: 5_000}
    assert figures["logged"] == 5_000
    report("webhook load", figures)


@pytest.mark.slow
async def test_plat3_twenty_thousand_signed_webhooks(tmp_path):
    figures = await burst(tmp_path, count=20_000, concurrency=64)
    assert figures["statuses"] == {200: 20_000} and figures["logged"] == 20_000
    report("webhook load (slow)", figures)
