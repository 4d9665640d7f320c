"""ENG-12: a killed writer process, the restart budget, and /health/ready.

The service runs in this process with real HTTP on loopback, a real SQLite
file and a real writer child; the child is killed with SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.health import HealthLimits
from adapters.sandbox import story
from adapters.service import ChannelService
from adapters.shoplazza.signing import webhook_signature
from channelsync.bootstrap import open_service
from channelsync.settings import ChannelSettings
from engine import Engine
from engine.settings import EngineSettings
from engine.store.errors import StoreError
from engine.store.process_writer import ProcessWriter
from engine.store.supervisor import WriterSupervisor
from statecharts.merchant import set_product_attributes

CLOSED = "http://127.0.0.1:9"  # no platform is needed: nothing here calls one


def product_webhook(n: int) -> tuple[bytes, dict[str, str]]:
    """A signed Shoplazza products/update, a whole product as Shoplazza sends
    it, for one of the listings `open_service` made known: recorded as an
    event, and it calls no platform (the listing is not synced)."""
    body = json.dumps(
        {
            "product": {
                "id": f"90{n:04d}",
                "title": f"P{n}",
                "updated_at": f"2026-01-01T00:00:{n % 60:02d}Z",
                "variants": [{"id": f"90{n:04d}-1", "sku": f"S{n}", "price": "1.00"}],
            }
        }
    ).encode()
    headers = {
        "X-Shoplazza-Hmac-Sha256": webhook_signature(story.CLIENT_SECRET, body),
        "X-Shoplazza-Shop-Domain": f"{story.STORE}.myshoplaza.com",
        "X-Shoplazza-Topic": "products/update",
        "content-type": "application/json",
    }
    return body, headers


async def open_served(db: Path, writer: str = "process", **config: Any) -> ChannelService:
    settings = ChannelSettings(
        db=db,
        tiktok_app_key=story.APP_KEY,
        tiktok_app_secret=story.APP_SECRET,
        shoplazza_client_secret=story.CLIENT_SECRET,
        tiktok_api_url=CLOSED,
        tiktok_auth_url=CLOSED,
        shoplazza_api_url=CLOSED,
        pull_interval=0,
        shoplazza_pull_interval=0,
        engine=EngineSettings(writer=writer),
        **config,
    )
    service = await open_service(settings, run_loops=False, plugins=[])
    # Shoplazza's deliveries reach only entities the channel has (PLAT-9).
    for n in (1, 2):
        await set_product_attributes(
            service.engine, f"listing:{story.STORE}:90{n:04d}", package_dimensions=story.PACKAGE
        )
    await service.serve()
    return service


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[ChannelService]:
    # A restart waits two seconds: long enough to watch the service while its writer is down.
    service = await open_served(tmp_path / "health.db", writer_restart_delay=2.0)
    try:
        yield service
    finally:
        await service.stop()


async def wait_for(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_eng12_a_killed_writer_answers_503_while_down_then_200_and_ready_says_so(served):
    """ENG-12: after SIGKILL of the writer child, /health/ready is 503 naming
    the writer (at once, not at the next write) and a webhook gets 503 with
    Retry-After, never 500; once the supervisor has restarted the child,
    ready is 200 again and the same webhook is recorded, exactly once."""
    url = served.http.url
    async with httpx.AsyncClient(timeout=10) as client:
        before = await client.get(f"{url}/health/ready")
        assert before.status_code == 200, before.text
        assert (await client.get(f"{url}/health/live")).status_code == 200
        first_pid = before.json()["checks"]["writer"]["pid"]
        body, headers = product_webhook(1)
        assert (
            await client.post(f"{url}/webhooks/shoplazza", content=body, headers=headers)
        ).status_code == 200

        os.kill(first_pid, signal.SIGKILL)

        async def not_ready() -> bool:
            return (await client.get(f"{url}/health/ready")).status_code == 503

        # Noticed with no write attempted: only these reads were made.
        await wait_for(not_ready, timeout=5)
        down = (await client.get(f"{url}/health/ready")).json()
        assert down["status"] == "unavailable"
        assert down["checks"]["writer"]["status"] == "failing"
        assert down["checks"]["store"]["status"] == "ok", "the file is still readable"
        assert (await client.get(f"{url}/health/live")).status_code == 200, "the process is alive"

        body, headers = product_webhook(2)
        refused = await client.post(f"{url}/webhooks/shoplazza", content=body, headers=headers)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "1"

        async def ready() -> bool:
            return (await client.get(f"{url}/health/ready")).status_code == 200

        await wait_for(ready, timeout=15)
        writer = (await client.get(f"{url}/health/ready")).json()["checks"]["writer"]
        assert writer["pid"] != first_pid and writer["restarts"] == 1
        again = await client.post(f"{url}/webhooks/shoplazza", content=body, headers=headers)
        assert again.status_code == 200
        repeat = await client.post(f"{url}/webhooks/shoplazza", content=body, headers=headers)
        assert repeat.status_code == 200
    with sqlite3.connect(served.config.db) as conn:
        rows = conn.execute(
            "SELECT entity, COUNT(*) FROM events WHERE type = 'listing.product_updated'"
            " GROUP BY entity ORDER BY entity"
        ).fetchall()
    assert rows == [(f"listing:{story.STORE}:900001", 1), (f"listing:{story.STORE}:900002", 1)]


def _commit_then_die(conn: sqlite3.Connection, seq: int) -> None:
    """In the writer child: commit an event and die before answering, as
    when a SIGKILL lands between COMMIT and the reply."""
    conn.execute(
        "INSERT INTO events (seq, event_id, type, source, entity, chart, received_at, payload,"
        " outcome) VALUES (?, 'landed', 'parcel.note', 'api', 'parcel:1', 'parcel', 0, '{}',"
        " 'ignored')",
        (seq,),
    )
    os._exit(9)


async def test_eng12_after_a_restart_the_store_reads_again_what_a_cut_off_commit_left(
    db_path, clock, sample_charts
):
    """ENG-12: a commit that landed although its reply never came is not
    reused: after the restart the next sequence number is read from the
    database (otherwise every later commit collides with it), and the bus
    reads its entities again."""
    engine = await Engine.open(
        db_path,
        charts=sample_charts,
        clock=clock,
        settings=EngineSettings(run_timers=False, run_outbox=False, writer="process"),
    )
    supervisor = WriterSupervisor(engine.store, engine.bus, delay=0)
    supervisor.start()
    try:
        make = engine.make_event
        first = await engine.publish(
            make("parcel.pack", "parcel:1", {"weight_kg": 1.0}, event_id="a")
        )
        writer = engine.store.writer
        assert isinstance(writer, ProcessWriter)
        with pytest.raises(StoreError, match="writer process"):
            await engine.store.run_write(_commit_then_die, first.seq + 1)
        await asyncio.wait_for(_restarted(writer, 1), timeout=15)
        after = await engine.publish(make("parcel.note", "parcel:1", {"text": "x"}, event_id="b"))
        assert after.outcome == "transitioned"
        assert after.seq == first.seq + 2, "the landed commit's seq is not reused"
        assert [h["event_id"] for h in await engine.history("parcel:1")] == ["a", "landed", "b"]
    finally:
        await supervisor.stop()
        await engine.stop()


async def _restarted(writer: ProcessWriter, times: int) -> None:
    while writer.restarts < times or writer.gone is not None:
        await asyncio.sleep(0.01)


async def test_eng12_restarts_are_bounded_then_the_supervisor_gives_up(
    db_path, clock, sample_charts
):
    """ENG-12: a writer that keeps dying is restarted at most max_restarts
    times in the window; then the supervisor gives up (serve exits on it)
    and writes fail with a StoreError instead of hanging."""
    engine = await Engine.open(
        db_path,
        charts=sample_charts,
        clock=clock,
        settings=EngineSettings(run_timers=False, run_outbox=False, writer="process"),
    )
    supervisor = WriterSupervisor(engine.store, engine.bus, max_restarts=1, window=60, delay=0)
    supervisor.start()
    writer = engine.store.writer
    assert isinstance(writer, ProcessWriter)
    try:
        os.kill(writer.pid, signal.SIGKILL)  # type: ignore[arg-type]
        await asyncio.wait_for(_restarted(writer, 1), timeout=15)
        assert supervisor.failure is None, "the first death is within the budget"
        os.kill(writer.pid, signal.SIGKILL)  # type: ignore[arg-type]
        reason = await asyncio.wait_for(supervisor.wait_failed(), timeout=15)
        assert "2 times within 60 s" in reason
        assert writer.restarts == 1, "no restart past the budget"
        with pytest.raises(StoreError):
            await asyncio.wait_for(
                engine.publish(engine.make_event("parcel.pack", "parcel:1", {}, event_id="late")),
                timeout=5,
            )
    finally:
        await supervisor.stop()
        await engine.stop()


async def test_eng12_ready_is_503_while_the_outbox_backlog_is_over_its_limits(tmp_path):
    """ENG-12: /health/ready counts the commands that are due and not carried
    out, and the oldest one's wait; over either limit it is 503 with the
    figures, and 200 again once the backlog is worked off. A platform the
    client cannot reach is reported, without making the service not ready."""
    service = await open_served(
        tmp_path / "backlog.db", health=HealthLimits(outbox_backlog=2, outbox_age=300)
    )
    store, now = service.engine.store, service.engine.clock.now()
    url = service.http.url

    async def add(key: str, available_at: float) -> None:
        await store.execute_write(
            "INSERT INTO outbox (event_seq, entity, command, payload, idempotency_key,"
            " created_at, available_at) VALUES (0, 'shop:x', 'noop', '{}', ?, ?, ?)",
            (key, available_at, available_at),
        )

    try:
        async with httpx.AsyncClient(timeout=10) as client:
            await add("later", now + 3600)  # not due: no backlog
            await add("due-1", now - 5)
            await add("due-2", now - 5)
            answer = await client.get(f"{url}/health/ready")
            assert answer.status_code == 200, answer.text
            assert answer.json()["checks"]["outbox"]["due"] == 2
            assert answer.json()["platforms"]["tiktok"]["status"] == "unknown", "no call yet"

            # The platforms' reachability comes from the clients' own calls,
            # and is reported without deciding readiness.
            for _ in range(3):
                with pytest.raises(httpx.TransportError):
                    await service.tiktok.http.get(f"{CLOSED}/api")
            answer = await client.get(f"{url}/health/ready")
            assert answer.status_code == 200
            tiktok = answer.json()["platforms"]["tiktok"]
            assert (tiktok["status"], tiktok["failures_in_a_row"]) == ("unreachable", 3)
            await service.tiktok.http.get(f"{url}/health/live")
            answer = await client.get(f"{url}/health/ready")
            assert answer.json()["platforms"]["tiktok"]["status"] == "ok"

            await add("due-3", now - 5)
            answer = await client.get(f"{url}/health/ready")
            assert answer.status_code == 503
            outbox = answer.json()["checks"]["outbox"]
            assert (outbox["status"], outbox["due"], outbox["limit_due"]) == ("failing", 3, 2)

            await store.execute_write(
                "UPDATE outbox SET status = 'done' WHERE idempotency_key != 'due-1'"
            )
            assert (await client.get(f"{url}/health/ready")).status_code == 200
            await store.execute_write(
                "UPDATE outbox SET available_at = ? WHERE idempotency_key = 'due-1'", (now - 400,)
            )
            answer = await client.get(f"{url}/health/ready")
            assert answer.status_code == 503, "one command waiting too long is a backlog too"
            assert answer.json()["checks"]["outbox"]["oldest_due_seconds"] >= 400
            assert (await client.get(f"{url}/health")).status_code == 503, (
                "/health is ready's alias"
            )
    finally:
        await service.stop()


async def test_eng12_a_moved_database_file_is_not_written_into_and_answers_503(tmp_path):
    """ENG-12: SQLite would go on writing, without an error, into a database
    file that was moved or removed while open (lost with the process). The
    thread writer refuses instead: 503 and not ready while the path names no
    file; once the file is back, the same webhook is recorded, once."""
    db = tmp_path / "moved.db"
    service = await open_served(db, writer="thread")
    url = service.http.url
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            body, headers = product_webhook(1)
            first = await client.post(f"{url}/webhooks/shoplazza", content=body, headers=headers)
            assert first.status_code == 200
            os.rename(db, tmp_path / "away.db")
            body, headers = product_webhook(2)
            refused = await client.post(f"{url}/webhooks/shoplazza", content=body, headers=headers)
            assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
            ready = await client.get(f"{url}/health/ready")
            assert ready.status_code == 503
            assert ready.json()["checks"]["store"]["status"] == "failing"
            assert "gone" in ready.json()["checks"]["writer"]["error"]
            os.rename(tmp_path / "away.db", db)
            again = await client.post(f"{url}/webhooks/shoplazza", content=body, headers=headers)
            assert again.status_code == 200
            assert (await client.get(f"{url}/health/ready")).status_code == 200
    finally:
        await service.stop()
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT entity, COUNT(*) FROM events WHERE type = 'listing.product_updated'"
            " GROUP BY entity ORDER BY entity"
        ).fetchall()
    assert rows == [(f"listing:{story.STORE}:900001", 1), (f"listing:{story.STORE}:900002", 1)]
