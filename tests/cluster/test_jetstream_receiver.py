"""The receiver role on the real PostgreSQL and NATS: verified webhooks reach JetStream
before the platform is answered; invalid ones get the answers `serve` gives."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from adapters.tiktok_shop.signing import webhook_signature
from channelsync.receiver_role import ReceiverRole, open_receiver
from channelsync.settings import ChannelSettings
from engine import ChartSet, Engine
from engine.cluster.jetstream import BusUnavailable, PartitionFeed, ensure_stream
from engine.cluster.partitions import partition_of
from engine.events import Event
from engine.settings import EngineSettings
from engine.store.urls import open_store
from engine.testing.services import postgres_url, unique_name
from statecharts import chart_package

pytestmark = pytest.mark.services

APP_KEY, APP_SECRET = "app-key", "app-secret"
SHOP_ID = "7000000000000000001"
ORDER = "576486316948490001"


@dataclass
class Running:
    role: ReceiverRole
    client: httpx.AsyncClient
    stream: str
    prefix: str
    store_url: str

    async def post(self, body: bytes, *, signature: str | None = None) -> httpx.Response:
        signed = webhook_signature(APP_KEY, APP_SECRET, body)
        return await self.client.post(
            "/webhooks/tiktok",
            content=body,
            headers={"Authorization": signature or signed, "content-type": "application/json"},
        )

    def feed(self, entity: str) -> PartitionFeed:
        return PartitionFeed(
            self.role.bus.js,
            stream=self.stream,
            prefix=self.prefix,
            partition=partition_of(entity),
            start_after=0,
        )


def drop_database(url: str) -> None:
    """The store's database gone from under it: every connection to it fails."""
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(postgres_url(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def settings(tmp_path: Path) -> ChannelSettings:
    return ChannelSettings(
        db=tmp_path / "unused.db",
        tiktok_app_key=APP_KEY,
        tiktok_app_secret=APP_SECRET,
        shoplazza_client_secret="shoplazza-secret",
    )


def order_webhook(status: str = "UNPAID", update_time: int = 1_770_000_000) -> bytes:
    data = {"order_id": ORDER, "order_status": status, "update_time": update_time}
    return json.dumps({"type": 1, "shop_id": SHOP_ID, "data": data}).encode()


@pytest.fixture(scope="module")
def channel_charts() -> ChartSet:
    return ChartSet.load([chart_package()])


@pytest.fixture
async def running(
    tmp_path: Path, pg_database_url: str, nats_server_url: str, channel_charts: ChartSet
) -> AsyncIterator[Running]:
    stream, prefix = unique_name("RECV"), unique_name("recv").replace("_", ".")
    role = await open_receiver(
        settings(tmp_path),
        store=pg_database_url,
        bus=nats_server_url,
        stream=stream,
        prefix=prefix,
        charts=channel_charts,
    )
    http = await role.serve()
    try:
        async with httpx.AsyncClient(base_url=http.url) as client:
            yield Running(role, client, stream, prefix, pg_database_url)
    finally:
        await role.bus.js.delete_stream(stream)
        await role.stop()


async def test_a_verified_webhook_is_on_its_partition_before_the_platform_is_answered(
    running: Running, tmp_path: Path, channel_charts: ChartSet
) -> None:
    response = await running.post(order_webhook())
    assert response.status_code == 200

    feed = running.feed(f"order:{ORDER}")
    try:
        [message] = await feed.fetch(10, timeout=1.0)
    finally:
        await feed.close()
    event = Event.model_validate_json(message.body)
    assert message.event_id == event.event_id == f"tiktok:order:{ORDER}:UNPAID:1770000000"
    assert event.entity == f"order:{ORDER}" and event.type == "order.status_changed"
    assert event.received_at is not None

    # What a worker does with it: the body is an event its engine takes as is.
    engine = await Engine.open(
        tmp_path / "worker.db",
        charts=channel_charts,
        settings=EngineSettings(run_timers=False, run_outbox=False),
    )
    try:
        receipt = await engine.publish_raw(message.body, "bus")
        assert receipt.outcome == "transitioned"
        assert (await engine.history(f"order:{ORDER}"))[0]["received_at"] == event.received_at
    finally:
        await engine.stop()


async def test_a_webhook_delivered_twice_is_stored_once(running: Running) -> None:
    body = order_webhook("AWAITING_SHIPMENT", 1_770_000_100)
    assert (await running.post(body)).status_code == 200
    assert (await running.post(body)).status_code == 200
    feed = running.feed(f"order:{ORDER}")
    try:
        messages = await feed.fetch(10, timeout=1.0)
    finally:
        await feed.close()
    assert [m.event_id for m in messages] == [f"tiktok:order:{ORDER}:AWAITING_SHIPMENT:1770000100"]


async def test_invalid_webhooks_get_the_answers_serve_gives_and_reach_no_subject(
    running: Running,
) -> None:
    assert (await running.post(order_webhook(), signature="0" * 64)).status_code == 401
    not_json = b"this is not json"
    assert (await running.post(not_json)).status_code == 400
    too_big = b"x" * (ChannelSettings(db=Path("x")).limits.max_body + 1)
    assert (await running.post(too_big)).status_code == 413

    info = await running.role.bus.js.stream_info(running.stream)
    assert info.state.messages == 0
    store = await open_store(running.store_url, settings=EngineSettings())
    try:
        reasons = sorted(row.error for row in await store.dead_letters())
    finally:
        await store.close()
    assert len(reasons) == 2 and any("not JSON" in r for r in reasons), reasons


async def test_without_jetstream_the_platform_is_told_to_retry_and_the_retry_lands(
    running: Running,
) -> None:
    await running.role.bus.js.delete_stream(running.stream)
    refused = await running.post(order_webhook("IN_TRANSIT", 1_770_000_200))
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"

    await ensure_stream(running.role.bus.js, stream=running.stream, prefix=running.prefix)
    assert (await running.post(order_webhook("IN_TRANSIT", 1_770_000_200))).status_code == 200
    assert (await running.role.bus.js.stream_info(running.stream)).state.messages == 1


async def test_without_the_store_only_webhooks_that_need_it_are_told_to_retry(
    running: Running,
) -> None:
    """Orders need nothing from the store: still acknowledged. A dead letter
    must be written there: 503 + Retry-After, so the platform sends it again."""
    await asyncio.to_thread(drop_database, running.store_url)
    assert (await running.post(order_webhook("DELIVERED", 1_770_000_300))).status_code == 200
    refused = await running.post(b"not json either")
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"


async def test_the_role_refuses_a_sqlite_store_and_an_unreachable_bus(
    tmp_path: Path, pg_database_url: str
) -> None:
    with pytest.raises(ValueError, match="needs a PostgreSQL store"):
        await open_receiver(settings(tmp_path), store=str(tmp_path / "x.db"), bus="nats://x")
    with pytest.raises(BusUnavailable, match="cannot reach NATS"):
        await open_receiver(settings(tmp_path), store=pg_database_url, bus="nats://127.0.0.1:1")
