"""The world the merchant-flows machine drives, and what it watches.

Both sandboxes, the real `ChannelService` and its receiver run over loopback
HTTP on one event loop with one `FakeClock` (as `channelsync demo` does). Two
things are added around the sandboxes, without changing them:

- every answer a sandbox gives to the channel is read on its way out; each
  refusal is recorded and classified (a malformed request, a business
  refusal, an authorization that lapsed, or a transient failure);
- every Shoplazza order is looked at after every Shoplazza API call, so an
  order copy that moves backwards is caught even if it moves forward again
  within the same step.

The classification is the acceptance test's contract with the strict
sandboxes: a refusal is a *business* refusal only if it is listed below with
the reason a correct channel can still meet it; everything else the channel
sends and a sandbox refuses counts as a malformed request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from unittest import mock

import httpx._transports.default as httpx_transport

from adapters.sandbox.shoplazza import ShoplazzaSandbox
from adapters.sandbox.story import (
    APP_KEY,
    APP_SECRET,
    CLIENT_SECRET,
    SHOP,
    SHOPLAZZA_TOKEN,
    STORE,
    UPS,
    USPS,
    Sandboxes,
    sandbox_config,
    walk_setup_to_authorize,
)
from adapters.sandbox.tiktok import TikTokSandbox
from adapters.sandbox.webhooks import Faults, WebhookSender
from adapters.service import ChannelService, HttpServer
from adapters.tiktok_shop.oauth import AuthorizationRefused
from channelsync.bootstrap import open_service
from engine.chartset import ChartSet
from engine.clock import FakeClock
from engine.settings import EngineSettings
from statecharts import chart_package

# A fixed start (2026-01-01T00:00:00Z): a failing example repeats exactly.
START = 1_767_225_600.0

MALFORMED = "malformed"
BUSINESS = "business"
LAPSED = "authorization lapsed"
TRANSIENT = "transient"

# TikTok refusals a correct channel can still meet, and why.
TIKTOK_BUSINESS: dict[int, str] = {
    12052032: "product not found: it was deleted on TikTok",
    21001001: "order not found or not shipped yet",
    21008001: "the order cannot be shipped in its status (the buyer cancelled first)",
    21008025: "the order is fulfilled by TikTok",
    21008099: "the order has already shipped",
    21011025: "the tracking number was already used",
    21011044: "the order is on hold: the first hour after payment",
    21011046: "shipping info can only be corrected within 72 hours",
    105002: "the access token expired before it was refreshed",
}
TIKTOK_TRANSIENT: dict[int, str] = {
    36009002: "rate limited",
    50000: "an injected server failure",
}
# 36009004 stands for bad credentials, a bad timestamp and an unknown token
# alike; only the last is met by a correct channel (the seller revoked it).
TOKEN_WORDS = ("access token", "refresh token")

# Shoplazza answers with HTTP statuses only.
SHOPLAZZA_BUSINESS: dict[int, str] = {404: "the product or order was deleted in Shoplazza"}
SHOPLAZZA_TRANSIENT: dict[int, str] = {429: "rate limited"}

# Routes that are the sandbox's own controls (the buyer, the seller clicking
# Authorize), not calls from the channel.
ADMIN_PREFIXES = ("/sandbox/", "/oauth/authorize")


@dataclass(frozen=True)
class Refusal:
    platform: str
    method: str
    path: str
    status: int
    code: int | None
    message: str
    kind: str

    def __str__(self) -> str:
        code = f" code {self.code}" if self.code is not None else ""
        return (
            f"{self.platform} refused {self.method} {self.path} "
            f"(HTTP {self.status}{code}: {self.message}) [{self.kind}]"
        )


def classify_tiktok(status: int, code: int | None, message: str) -> str:
    if code in TIKTOK_BUSINESS:
        return BUSINESS
    if code in TIKTOK_TRANSIENT or status == 429:
        return TRANSIENT
    if code == 36009004 and any(word in message.lower() for word in TOKEN_WORDS):
        return LAPSED
    return MALFORMED


def classify_shoplazza(status: int, message: str) -> str:
    if status == 401 and "revoked" in message:
        return LAPSED  # the app was uninstalled: how the channel confirms it (PLAT-9)
    if status in SHOPLAZZA_BUSINESS:
        return BUSINESS
    if status in SHOPLAZZA_TRANSIENT or (status >= 500 and "injected" in message):
        return TRANSIENT
    return MALFORMED


def _parse(body: bytes) -> dict[str, Any] | None:
    try:
        parsed = json.loads(body or b"null")
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


class RefusalRecorder:
    """An ASGI wrapper that records every refusal a sandbox answers with."""

    def __init__(
        self, platform: str, app: Any, sink: list[Refusal], after: Callable[[], None] | None = None
    ) -> None:
        self.platform = platform
        self.app = app
        self.sink = sink
        self.after = after

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIXES):
            await self.app(scope, receive, send)
            return
        answer: dict[str, Any] = {"status": 0, "body": b""}

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except Exception as error:  # the sandbox could not read the request at all
            # Starlette has already answered 500; the request is what broke it.
            self.sink.append(
                Refusal(
                    self.platform,
                    scope["method"],
                    scope["path"],
                    500,
                    None,
                    f"the sandbox failed on the request: {type(error).__name__}: {error}",
                    MALFORMED,
                )
            )
            return
        finally:
            if self.after is not None:
                self.after()
        self._record(scope, answer["status"], answer["body"])

    def _record(self, scope: dict[str, Any], status: int, body: bytes) -> None:
        parsed = _parse(body)
        if self.platform == "tiktok":
            code = None if parsed is None else parsed.get("code")
            if status < 400 and code == 0:
                return
            message = str(parsed.get("message", "")) if parsed else body.decode(errors="replace")
            code = code if isinstance(code, int) else None
            kind = classify_tiktok(status, code, message)
        else:
            if status < 400:
                return
            code = None
            message = str(parsed.get("errors", "")) if parsed else body.decode(errors="replace")
            kind = classify_shoplazza(status, message)
        self.sink.append(
            Refusal(self.platform, scope["method"], scope["path"], status, code, message, kind)
        )


# Shoplazza's order fields and the order in which each moves. A value later in
# its list never gives way to an earlier one.
ORDER_PROGRESS: dict[str, list[list[str]]] = {
    "status": [["opened"], ["placed"], ["finished", "cancelled"]],
    "financial_status": [
        ["waiting"],
        ["paying"],
        ["authorized"],
        ["partially_paid"],
        ["paid", "failed"],
        ["refunding", "refund_failed"],
        ["partially_refunded"],
        ["refunded", "cancelled"],
    ],
    "fulfillment_status": [
        ["initialled"],
        ["waiting"],
        ["partially_shipped"],
        ["shipped"],
        ["partially_finished"],
        ["finished", "cancelled"],
        ["returning"],
        ["partially_returned"],
        ["returned"],
    ],
}
RANKS: dict[str, dict[str, int]] = {
    name: {value: rank for rank, values in enumerate(steps) for value in values}
    for name, steps in ORDER_PROGRESS.items()
}


@dataclass
class ShoplazzaOrderWatch:
    """Every Shoplazza order's furthest value per field, and each step back."""

    furthest: dict[tuple[str, str], str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def observe(self, orders: dict[str, dict[str, Any]]) -> None:
        for order_id, order in orders.items():
            for name, ranks in RANKS.items():
                value = order.get(name)
                if value is None:
                    continue
                if value not in ranks:
                    self.problems.append(
                        f"Shoplazza order {order_id}: {name} {value!r} is not a Shoplazza value"
                    )
                    continue
                before = self.furthest.get((order_id, name))
                if before is not None and ranks[value] < ranks[before]:
                    self.problems.append(
                        f"Shoplazza order {order_id}: {name} moved back "
                        f"from {before!r} to {value!r}"
                    )
                    continue
                if before is None or ranks[value] > ranks[before]:
                    self.furthest[(order_id, name)] = value


class CapturedDeliveries:
    """Every webhook a sandbox queued, so one can be delivered again later.

    Wraps the sender's `enqueue` on this instance; `reversed_delivery` holds
    what is queued meanwhile and queues it back to front (a reordering that
    TikTok's delivery allows)."""

    def __init__(self, sender: WebhookSender) -> None:
        self.sender = sender
        self._enqueue = sender.enqueue
        self.captured: list[tuple[bytes, dict[str, str]]] = []
        self._holding: list[tuple[bytes, dict[str, str]]] | None = None
        sender.enqueue = self._record  # type: ignore[method-assign]

    def _record(self, body: bytes, headers: dict[str, str] | None = None) -> None:
        item = (body, dict(headers or {}))
        self.captured.append(item)
        if self._holding is not None:
            self._holding.append(item)
            return
        self._enqueue(*item)

    def hold(self) -> None:
        self._holding = []

    def release(self, *, reverse: bool, twice: bool) -> int:
        held, self._holding = self._holding or [], None
        for body, headers in reversed(held) if reverse else held:
            self._enqueue(body, headers)
            if twice:
                self._enqueue(body, headers)
        return len(held)

    def replay(self, index: int) -> bool:
        """Queue an earlier delivery once more (a retry that comes late)."""
        if not self.captured:
            return False
        body, headers = self.captured[index % len(self.captured)]
        self._enqueue(body, headers)
        return True


class Switch:
    """An ASGI app whose target can change: one server outlives many examples."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan" or self.app is None:
            return
        await self.app(scope, receive, send)


class Stage:
    """The servers every example reuses: TikTok's, Shoplazza's and the
    channel's receiver, on the event loop that owns them. Starting and
    stopping three HTTP servers would cost more than the rest of an example."""

    def __init__(self) -> None:
        self.runner = asyncio.Runner()
        self.tiktok, self.shoplazza, self.receiver = Switch(), Switch(), Switch()
        self.servers = self.runner.run(self._start())
        self.charts = ChartSet.load([chart_package()], {})

    async def _start(self) -> list[HttpServer]:
        return [
            await HttpServer(app, "127.0.0.1", 0).start()
            for app in (self.tiktok, self.shoplazza, self.receiver)
        ]

    def close(self) -> None:
        async def stop() -> None:
            for server in self.servers:
                await server.stop()

        try:
            self.runner.run(stop())
        finally:
            self.runner.close()


@dataclass
class World:
    box: Sandboxes
    refusals: list[Refusal]
    watch: ShoplazzaOrderWatch
    tiktok_deliveries: CapturedDeliveries
    shoplazza_deliveries: CapturedDeliveries
    receiver_url: str
    expires_at: float | None = None
    pull_failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # As serve's pull loops do: a failed pull is logged and the loop goes
        # on. The machine keeps what failed, for invariant 4.
        for pull in (self.service.puller, self.service.reconciler):
            pull.pull_once = self._as_serve_does(pull.pull_once)  # type: ignore[method-assign]

    def _as_serve_does(self, pull_once: Any) -> Any:
        async def pull() -> int:
            try:
                return int(await pull_once())
            except Exception as error:
                self.pull_failures.append(
                    f"at {self.clock.now():.0f}: {type(error).__name__}: {error}"
                )
                return 0

        return pull

    @property
    def service(self) -> ChannelService:
        return self.box.service

    @property
    def tiktok(self) -> TikTokSandbox:
        return self.box.tiktok

    @property
    def shoplazza(self) -> ShoplazzaSandbox:
        return self.box.shoplazza

    @property
    def clock(self) -> FakeClock:
        assert isinstance(self.box.clock, FakeClock)
        return self.box.clock

    async def settle(self) -> None:
        """Quiescent: webhooks delivered, bus drained, due timers fired, due
        commands carried out, the order pull run, until nothing moves."""
        await self.box.settle()
        self.watch.observe(self.shoplazza.orders)

    async def advance(self, seconds: float) -> None:
        """Time passes in steps of at most 6 hours, each followed by a settle,
        so timers fire in their order and the authorization lapses on time."""
        target = self.clock.now() + seconds
        while self.clock.now() < target:
            step = min(target - self.clock.now(), 6 * 3600.0)
            if self.expires_at is not None and self.clock.now() < self.expires_at:
                step = min(step, self.expires_at - self.clock.now())
            self.clock.advance(step)
            self.lapse_expired_authorization()
            await self.settle()

    def revoke_tokens(self) -> None:
        """What TikTok does when an authorization ends: its tokens stop working."""
        self.tiktok.tokens.clear()
        self.tiktok.refresh_tokens.clear()

    def lapse_expired_authorization(self) -> None:
        if self.expires_at is not None and self.clock.now() >= self.expires_at:
            self.revoke_tokens()
            self.expires_at = None

    async def stop(self) -> None:
        """Everything this example opened; the stage's servers stay up."""
        await self.service.stop()
        await self.box.admin.aclose()
        await self.tiktok.webhooks.aclose()
        await self.shoplazza.webhooks.aclose()


@contextlib.contextmanager
def one_tls_context() -> Iterator[None]:
    """Every HTTP client made meanwhile shares one TLS context. Each new
    client reads the CA bundle again (~65 ms), and an example makes five,
    all of which only ever speak plain HTTP on loopback."""
    shared = ssl.create_default_context()
    with mock.patch.object(httpx_transport, "create_ssl_context", lambda **_: shared):
        yield


async def start_world(stage: Stage, db: Path, seed: int) -> World:
    with one_tls_context():
        return await _start_world(stage, db, seed)


async def _start_world(stage: Stage, db: Path, seed: int) -> World:
    """New sandboxes (no random faults: the machine decides every duplicate
    and reordering) and a new channel on a new database, behind the stage's
    servers."""
    clock = FakeClock(start=START)
    refusals: list[Refusal] = []
    watch = ShoplazzaOrderWatch()
    quiet = Faults(rate_limit_per_second=1_000_000.0)
    tiktok = TikTokSandbox(APP_KEY, APP_SECRET, clock, faults=quiet, seed=seed)
    shoplazza = ShoplazzaSandbox(
        STORE, CLIENT_SECRET, SHOPLAZZA_TOKEN, clock, faults=quiet, seed=seed + 1
    )
    tiktok_http, shoplazza_http, receiver_http = stage.servers
    config = replace(
        sandbox_config(db, tiktok_http.url, shoplazza_http.url, shoplazza_rate=1_000_000.0),
        engine=EngineSettings(synchronous="OFF"),
    )
    service = await open_service(
        config, clock=clock, run_loops=False, plugins=[], charts=stage.charts
    )
    # Retries wait on the fake clock's outbox schedule, not on wall time, and
    # their jitter repeats from one run of an example to the next.
    service.tiktok.base_delay = service.shoplazza.base_delay = 0.001
    service.engine.outbox._rng = random.Random(seed)
    stage.tiktok.app = RefusalRecorder("tiktok", tiktok.app, refusals)
    stage.shoplazza.app = RefusalRecorder(
        "shoplazza", shoplazza.app, refusals, lambda: watch.observe(shoplazza.orders)
    )
    stage.receiver.app = service.receiver
    tiktok.webhooks.url = f"{receiver_http.url}/webhooks/tiktok"
    shoplazza.webhooks.url = f"{receiver_http.url}/webhooks/shoplazza"
    box = Sandboxes(clock, tiktok, shoplazza, service, [tiktok_http, shoplazza_http])
    return World(
        box,
        refusals,
        watch,
        CapturedDeliveries(tiktok.webhooks),
        CapturedDeliveries(shoplazza.webhooks),
        receiver_http.url,
    )


async def authorize(world: World) -> None:
    """The merchant clicks Authorize on the shop (CONN-7: refused unless the
    shop is at that step or authorized, which is the merchant's answer); the
    seller approves on TikTok, which redirects to our callback with the code
    and the nonce."""
    try:
        url = await world.service.begin_authorization(SHOP)
    except AuthorizationRefused:
        return
    granted = (await world.box.admin.get(url)).json()
    await world.box.admin.get(
        f"{world.receiver_url}/oauth/tiktok/callback",
        params={"code": granted["code"], "state": granted["state"]},
    )
    await world.settle()


async def set_up(world: World) -> None:
    """The whole setup a merchant walks through (CONN-2), then logistics.

    Each click is published whatever state the connection is in: a click
    the chart refuses is the chart's answer, and the machine only looks at
    what the merchant then sees."""
    service = world.service
    # Setting up again after an uninstall starts with installing the app in
    # Shoplazza, whose new access token the channel is configured with.
    service.shoplazza.access_token = world.shoplazza.install()
    await walk_setup_to_authorize(service)
    await authorize(world)
    await service.merchant("logistics.set_fulfillment_model", SHOP, {"fulfillment_model": "FBS"})
    await world.settle()
    for code, provider in (("usps", USPS), ("ups", UPS)):
        await service.merchant(
            "logistics.map_carrier",
            SHOP,
            {"tracking_company_code": code, "shipping_provider_id": provider},
        )
    await world.settle()
