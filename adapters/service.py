"""The channel as one process: engine, charts, adapters, receiver, loops.

`ChannelService` is what `channelsync serve` and `channelsync demo` run: the
receiver, the bus, the outbox dispatcher, the timers and the two scheduled
pulls (TikTok, Shoplazza: the backstop for lost webhooks, PLAT-8) on one event
loop, over one SQLite file. It is wired in `channelsync.bootstrap`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from adapters.base import InboundAdapter
from adapters.directory import StoreDirectory
from adapters.health import HealthChecks, ObservedClient
from adapters.http_server import HttpServer
from adapters.inbound import platform_inbound
from adapters.plugins import Adapter, AdapterPlugin, close_plugins
from adapters.receiver import build_receiver
from adapters.scheduled_pulls import (
    SHOPLAZZA,
    TIKTOK,
    Pass,
    build_pulls,
    connected_shops,
    pull_loop,
)
from adapters.shoplazza.client import ShoplazzaClient
from adapters.tiktok_shop.client import TikTokClient
from adapters.tiktok_shop.oauth import EngineRecorder, OAuthFlow
from engine.bus import Receipt
from engine.logs import get_logger
from engine.runtime import Engine
from engine.store.supervisor import WriterSupervisor

if TYPE_CHECKING:
    from channelsync.settings import ChannelSettings

log = get_logger("channelsync.service")


class ChannelService:
    """The running channel: its receiver, health, writer supervisor, scheduled
    pulls and the merchant's actions, over an engine `channelsync.bootstrap`
    wired (``channelsync.bootstrap.open_service`` builds one)."""

    def __init__(
        self,
        config: ChannelSettings,
        engine: Engine,
        tiktok: TikTokClient,
        shoplazza: ShoplazzaClient,
        plugins: Sequence[tuple[AdapterPlugin, Adapter]] = (),
    ) -> None:
        self.config = config
        self.engine = engine
        self.tiktok = tiktok
        self.shoplazza = shoplazza
        self.directory = StoreDirectory(engine.store)
        self.puller, self.reconciler = build_pulls(
            tiktok,
            shoplazza,
            engine.store,
            engine.clock,
            engine.publish_many,
            self._connected_shops,
            engine.record_dead_letter,
        )
        self.plugins = list(plugins)
        self.inbound = self._inbound_adapters()
        self.oauth = OAuthFlow(
            EngineRecorder(engine),
            tiktok,
            tiktok.credentials,
            config.tiktok_auth_url,
            config.tiktok_app_key,
            config.oauth_state_ttl,
        )
        self.supervisor = WriterSupervisor(
            engine.store,
            engine.bus,
            max_restarts=config.writer_max_restarts,
            window=config.writer_restart_window,
            delay=config.writer_restart_delay,
            on_restart=engine.metrics.writer_restarted,
        )
        self.supervisor.start()
        reachability = {
            client: http.reachability
            for client, http in (("tiktok", tiktok.http), ("shoplazza", shoplazza.http))
            if isinstance(http, ObservedClient)
        }
        self.health = HealthChecks(engine, self.supervisor, reachability, config.health)
        self.receiver = build_receiver(self, self.inbound)
        self.http: HttpServer | None = None
        self._pull_tasks: list[asyncio.Task[None]] = []
        self._stopped = False

    def _inbound_adapters(self) -> dict[str, InboundAdapter]:
        """The webhook routes: the two platforms', then each plugin's that has one."""
        inbound = platform_inbound(self.config, self.directory)
        for plugin, adapter in self.plugins:
            if adapter.inbound is not None:
                inbound[plugin.name] = adapter.inbound
        return inbound

    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> HttpServer:
        self.http = await HttpServer(self.receiver, host, port, self.config.limits).start()
        log.info("receiver listening", url=self.http.url)
        return self.http

    async def stop(self) -> None:
        """Stop everything; calling it again does nothing."""
        if self._stopped:
            return
        self._stopped = True
        for task in self._pull_tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.http is not None:
            await self.http.stop()
        await self.supervisor.stop()
        try:
            await self.engine.stop()
        finally:
            await close_plugins(self.plugins)
            await self.tiktok.aclose()
            await self.shoplazza.aclose()

    async def reconcile_once(self) -> int:
        """One pass of both scheduled pulls; how many new (not duplicate) events they recorded."""
        return await self.puller.pull_once() + await self.reconciler.pull_once()

    def start_pulls(self) -> None:
        """Start the scheduled pulls whose interval is not 0."""
        pulls: list[tuple[str, float, Pass]] = [
            (TIKTOK, self.config.pull_interval, self.puller.pull_once),
            (SHOPLAZZA, self.config.shoplazza_pull_interval, self.reconciler.pull_once),
        ]
        for platform, interval, pull in pulls:
            if interval > 0:
                self._pull_tasks.append(asyncio.create_task(pull_loop(platform, interval, pull)))

    async def _connected_shops(self, _platform: str) -> list[str]:
        return await connected_shops(self.engine.store)

    # ----------------------------------------------------------------- merchant actions

    async def begin_authorization(self, shop: str) -> str:
        """The merchant's Authorize button: TikTok's authorize URL carrying a new
        single-use, expiring nonce bound to ``shop`` (CONN-7). Raises
        `AuthorizationRefused` unless the shop is at the authorize step or
        already authorized."""
        return await self.oauth.begin(shop)

    async def complete_oauth(self, state: str | None, code: str | None) -> Receipt:
        """The OAuth callback: accepts only a live nonce, records the
        authorization, and only then keeps the tokens (CONN-7). Raises
        `CallbackRefused` (with the HTTP status to answer) otherwise."""
        return await self.oauth.complete(state, code)

    async def add_collection(self, shop: str, collection_id: str) -> Receipt:
        """Add the products a Shoplazza collection holds now (PROD-1)."""
        products = await self.shoplazza.collection_products(collection_id)
        return await self.engine.publish(
            self.engine.make_event(
                "products.add_collection",
                shop,
                {"collection_id": collection_id, "products": products},
                event_id=f"merchant:{shop}:collection:{collection_id}:{int(self.engine.clock.now())}",
                source="merchant",
            )
        )

    async def add_products(self, shop: str, product_ids: list[str]) -> Receipt:
        products = [await self.shoplazza.product(pid) for pid in product_ids]
        return await self.engine.publish(
            self.engine.make_event(
                "products.add",
                shop,
                {"products": products},
                event_id=f"merchant:{shop}:products:{','.join(product_ids)}:{int(self.engine.clock.now())}",
                source="merchant",
            )
        )

    async def merchant(
        self, event_type: str, shop: str, payload: dict[str, Any] | None = None
    ) -> Receipt:
        """Any other button of the admin UI (start setup, connect, accept terms...)."""
        return await self.engine.publish(
            self.engine.make_event(
                event_type,
                shop,
                payload or {},
                event_id=f"merchant:{uuid.uuid4()}",
                source="merchant",
            )
        )


BUILT_IN_ROUTES = ("tiktok", "shoplazza")
