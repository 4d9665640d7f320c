"""The receiver role: a stateless webhook receiver in front of the JetStream bus.

    role = await open_receiver(settings, store="postgresql://...", bus="nats://...")
    await role.serve("0.0.0.0", 8080)
    ...
    await role.stop()

It answers ``POST /webhooks/{tiktok,shoplazza}`` exactly as `channelsync serve`
does (the same route, `adapters.receiver.webhook_route`: body cap, signature,
translation, dead letters, the same status codes), but where serve hands the
events to its engine, the role publishes each to the subject of its entity's
partition (`engine.cluster.jetstream_sink.JetStreamSink`) and answers 200 only
once JetStream acknowledged. It keeps no state of its own: any number may run,
on any machine. The store (PostgreSQL) is read for the entities a webhook
names and receives the dead letters. While JetStream cannot be reached a
webhook is answered 503 with Retry-After, and the platform sends it again.

It also serves ``GET /oauth/tiktok/callback`` with serve's answers
(`adapters.receiver.oauth_route`, `OAuthFlow`, CONN-7): it spends the nonce,
trades the code with TikTok (the role has the app's key and secret: it checks
webhooks' signatures with them), stages the tokens, publishes
``connection.authorized`` to the shop's partition, and waits up to
``oauth_wait`` seconds for the partition's owner to apply it, reading the
event's outcome from the store (`BusRecorder`). Accepted, the tokens become
the shop's; refused, they are dropped (409); not applied in time (workers
down), the answer is 202 and the workers promote the tokens once they apply
the event (`channelsync.worker_role`).

Not served here (they need an engine that owns the data): adapter plugins'
routes (docs/scaling.md, "Running a cluster").
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.directory import StoreDirectory
from adapters.http_server import HttpServer
from adapters.inbound import platform_inbound
from adapters.receiver import oauth_route, webhook_route
from adapters.tiktok_shop.client import TikTokClient
from adapters.tiktok_shop.credentials import CredentialStore
from adapters.tiktok_shop.oauth import OAuthFlow
from channelsync.platforms import tiktok_client
from channelsync.settings import ChannelSettings
from engine.bus import Receipt
from engine.chartset import ChartSet
from engine.clock import Clock, SystemClock
from engine.cluster.jetstream import (
    DEFAULT_PREFIX,
    DEFAULT_STREAM,
    BusConnection,
    BusUnavailable,
    JetStreamPublisher,
    connect_bus,
    ensure_stream,
)
from engine.cluster.jetstream_sink import JetStreamSink
from engine.logs import get_logger
from engine.store.errors import StoreError
from engine.store.protocol import Store
from engine.store.urls import is_store_url, open_store, shown
from statecharts import chart_package

log = get_logger("channelsync.receiver_role")
# What means "cannot record this now" here, answered 503 + Retry-After: the
# bus, or the store (read for entity lookups, written for dead letters) being
# unreachable; psycopg's connection errors are not wrapped by the store.
UNAVAILABLE: tuple[type[Exception], ...] = (
    StoreError,
    BusUnavailable,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)
# Seconds the OAuth callback waits for a worker to apply the authorization
# before answering 202 (the merchant's browser waits that long at most).
OAUTH_WAIT = 10.0
# Seconds between two reads of the authorization's outcome while waiting.
OAUTH_POLL = 0.05


@dataclass
class BusRecorder:
    """The receiver's `adapters.tiktok_shop.oauth.Recorder`: the event goes to
    the bus, and its outcome is read from the store once its partition's
    owner applied it (None if that took longer than ``wait`` seconds)."""

    sink: JetStreamSink
    store: Store
    clock: Clock
    wait: float = OAUTH_WAIT
    poll: float = OAUTH_POLL

    async def record(
        self, shop: str, event_id: str, payload: Mapping[str, Any], source: str
    ) -> Receipt | None:
        event = self.sink.charts.event_types.make(
            "connection.authorized",
            shop,
            payload,
            event_id=event_id,
            source=source,
            received_at=self.clock.now(),
        )
        if await self.sink.publish(event) is None:
            return Receipt(event_id, "dead_letter", shop, reason="the event was refused")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait
        while not await self.store.event_outcomes([event_id]):
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(self.poll)
        # The logged row says what the chart did, as serve's receipt does.
        row = next(row for row in await self.store.history(shop) if row["event_id"] == event_id)
        return Receipt(
            event_id,
            row["outcome"],
            shop,
            row["seq"],
            row["from_state"],
            row["to_state"],
            row["reason"],
        )


@dataclass
class ReceiverRole:
    """A running receiver: its store connection, its bus connection and its HTTP app."""

    store: Store
    bus: BusConnection
    sink: JetStreamSink
    app: Starlette
    tiktok: TikTokClient
    http: HttpServer | None = None
    settings: ChannelSettings | None = field(default=None, repr=False)

    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> HttpServer:
        limits = self.settings.limits if self.settings else None
        self.http = await HttpServer(self.app, host, port, limits).start()
        log.info("receiver listening", url=self.http.url, role="receiver")
        return self.http

    async def stop(self) -> None:
        """Stop answering, then close the bus and the store (in that order:
        a webhook being answered finishes its publish first)."""
        if self.http is not None:
            await self.http.stop()
            self.http = None
        try:
            await self.tiktok.aclose()
        finally:
            try:
                await self.bus.close()
            finally:
                await self.store.close()


async def open_receiver(
    settings: ChannelSettings,
    *,
    store: str,
    bus: str,
    stream: str = DEFAULT_STREAM,
    prefix: str = DEFAULT_PREFIX,
    charts: ChartSet | None = None,
    clock: Clock | None = None,
    oauth_wait: float = OAUTH_WAIT,
) -> ReceiverRole:
    """Connect to the store and the bus, make sure the stream exists, build the app.

    ``store`` must be a PostgreSQL URL: the workers write the same database,
    and a SQLite file has one writer. `BusUnavailable` if NATS cannot be
    reached (nothing stays open then)."""
    if not is_store_url(store):
        raise ValueError(
            f"the receiver role needs a PostgreSQL store (postgresql://...), not {shown(store)}"
        )
    charts = charts or ChartSet.load([chart_package()], dict(settings.chart_settings))
    opened = await open_store(store, settings=settings.engine)
    try:
        connection = await connect_bus(bus)
    except BaseException:
        await opened.close()
        raise
    try:
        await ensure_stream(connection.js, stream=stream, prefix=prefix)
    except BaseException:
        await connection.close()
        await opened.close()
        raise
    clock = clock or SystemClock()
    publisher = JetStreamPublisher(connection.js, stream=stream, prefix=prefix)
    sink = JetStreamSink(publisher, charts, clock, opened)
    tiktok = tiktok_client(settings, CredentialStore(opened), clock)
    oauth = OAuthFlow(
        BusRecorder(sink, opened, clock, wait=oauth_wait),
        tiktok,
        tiktok.credentials,
        settings.tiktok_auth_url,
        settings.tiktok_app_key,
        settings.oauth_state_ttl,
        unavailable=UNAVAILABLE,
    )
    app = _app(settings, sink, oauth, connection)
    log.info("receiver role ready", store=shown(store), bus=bus, stream=stream, prefix=prefix)
    return ReceiverRole(opened, connection, sink, app, tiktok, settings=settings)


def _app(
    settings: ChannelSettings, sink: JetStreamSink, oauth: OAuthFlow, bus: BusConnection
) -> Starlette:
    inbound = platform_inbound(settings, StoreDirectory(sink.store))

    async def live(request: Request) -> Response:
        return JSONResponse({"status": "live"})

    async def ready(request: Request) -> Response:
        # Ready means a webhook would be published now: the client holds a
        # connection to NATS (it reconnects by itself after a restart).
        connected = bus.nc.is_connected
        body = {
            "status": "ok" if connected else "unavailable",
            "checks": {"bus": {"status": "ok" if connected else "unreachable"}},
        }
        return JSONResponse(body, status_code=200 if connected else 503)

    return Starlette(
        routes=[
            webhook_route(sink, inbound, settings.limits.max_body, unavailable=UNAVAILABLE),
            oauth_route(oauth.complete, UNAVAILABLE),
            Route("/health/live", live, methods=["GET"]),
            Route("/health/ready", ready, methods=["GET"]),
            Route("/health", ready, methods=["GET"]),
        ]
    )


async def run_receiver(
    settings: ChannelSettings,
    *,
    store: str,
    bus: str,
    host: str,
    port: int,
    stop: asyncio.Event,
    stream: str = DEFAULT_STREAM,
    prefix: str = DEFAULT_PREFIX,
) -> None:
    """Serve as a receiver until ``stop`` is set (what ``serve --role receiver`` runs)."""
    role = await open_receiver(settings, store=store, bus=bus, stream=stream, prefix=prefix)
    try:
        await role.serve(host, port)
        await stop.wait()
    finally:
        await role.stop()


__all__ = ["BusRecorder", "ReceiverRole", "open_receiver", "run_receiver"]
