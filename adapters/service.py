"""The channel as one process: engine, charts, adapters, receiver, loops.

`ChannelService` is what `channelsync serve` and `channelsync demo` run: the
receiver, the bus, the outbox dispatcher, the timers and the two scheduled
pulls (TikTok, Shoplazza: the backstop for lost webhooks, PLAT-8) on one event
loop, over one SQLite file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.base import InboundAdapter
from adapters.directory import StoreDirectory
from adapters.health import HealthChecks, HealthLimits, ObservedClient, Reachability
from adapters.http_server import HttpServer
from adapters.inbound import ShoplazzaInbound, TikTokInbound
from adapters.limits import HttpLimits
from adapters.plugins import (
    Adapter,
    AdapterContext,
    AdapterPlugin,
    PluginError,
    check_unique_names,
    discover_adapter_plugins,
    merge_handlers,
    plugin_chart_packages,
)
from adapters.receiver import build_receiver
from adapters.shoplazza.client import ShoplazzaClient
from adapters.shoplazza.commands import ShoplazzaCommands
from adapters.shoplazza.confirm import ShoplazzaConfirmations
from adapters.shoplazza.reconciler import ShoplazzaReconciler
from adapters.tiktok_shop.client import TikTokClient
from adapters.tiktok_shop.commands import TikTokCommands
from adapters.tiktok_shop.credentials import CredentialStore
from adapters.tiktok_shop.images import ImageSource
from adapters.tiktok_shop.oauth import STATE_TTL, OAuthFlow
from adapters.tiktok_shop.puller import TikTokPuller
from engine.bus import Receipt
from engine.clock import Clock, SystemClock
from engine.logs import error_fields, get_logger
from engine.runtime import Engine
from engine.store.supervisor import WriterSupervisor
from statecharts import chart_package
from statecharts.resolvers import AuthorizationGate, ChannelResolvers

log = get_logger("channelsync.service")

REQUIRED_ENV = ("TIKTOK_APP_KEY", "TIKTOK_APP_SECRET", "SHOPLAZZA_CLIENT_SECRET")


class ConfigError(Exception):
    pass


@dataclass
class ChannelConfig:
    db: Path
    tiktok_app_key: str
    tiktok_app_secret: str
    shoplazza_client_secret: str
    shoplazza_access_token: str = ""
    tiktok_api_url: str = "https://open-api.tiktokglobalshop.com"
    tiktok_auth_url: str = "https://auth.tiktok-shops.com"
    shoplazza_api_url: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    # Seconds between scheduled pulls (0: off). TikTok's orders and product
    # statuses change often and its webhooks can be lost for good; Shoplazza
    # retries its webhooks for two days, so its pull is a slower backstop.
    pull_interval: float = 300.0
    shoplazza_pull_interval: float = 900.0
    shoplazza_rate: float = 2.0
    # How long an OAuth `state` nonce stays usable (CONN-7).
    oauth_state_ttl: float = STATE_TTL
    # Supervision and health (ENG-12, docs/health.md): restarts of a dead
    # writer process allowed within the window before serve gives up, the
    # wait before a restart, and when the outbox backlog makes it not ready.
    writer_max_restarts: int = 5
    writer_restart_window: float = 60.0
    writer_restart_delay: float = 0.05
    health: HealthLimits = field(default_factory=HealthLimits)
    # What one client may take of the receiver (SEC-1): body size, connections, timeouts.
    limits: HttpLimits = field(default_factory=HttpLimits)

    @classmethod
    def from_env(cls, db: Path, env: dict[str, str] | None = None) -> ChannelConfig:
        env = dict(os.environ if env is None else env)
        missing = [name for name in REQUIRED_ENV if not env.get(name)]
        if missing:
            raise ConfigError(
                "missing environment variable(s): "
                + ", ".join(missing)
                + " (the platforms' app credentials; see the README)"
            )
        return cls(
            db=db,
            tiktok_app_key=env["TIKTOK_APP_KEY"],
            tiktok_app_secret=env["TIKTOK_APP_SECRET"],
            shoplazza_client_secret=env["SHOPLAZZA_CLIENT_SECRET"],
            shoplazza_access_token=env.get("SHOPLAZZA_ACCESS_TOKEN", ""),
            tiktok_api_url=env.get("TIKTOK_API_URL", cls.tiktok_api_url),
            tiktok_auth_url=env.get("TIKTOK_AUTH_URL", cls.tiktok_auth_url),
            shoplazza_api_url=env.get("SHOPLAZZA_API_URL", ""),
            shoplazza_rate=float(env.get("SHOPLAZZA_RATE_PER_SECOND", "2")),
        )


class ChannelService:
    def __init__(
        self,
        config: ChannelConfig,
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
        self.puller = TikTokPuller(
            tiktok,
            engine.publish_many,
            self._connected_shops,
            engine.store,
            self.directory,
            dead_letter=engine.record_dead_letter,
        )
        self.reconciler = ShoplazzaReconciler(
            shoplazza,
            engine.publish_many,
            self._connected_stores,
            engine.store,
            engine.store,
            engine.clock,
            dead_letter=engine.record_dead_letter,
        )
        self.inbound: dict[str, InboundAdapter] = {
            "tiktok": TikTokInbound(
                config.tiktok_app_key, config.tiktok_app_secret, self.directory
            ),
            "shoplazza": ShoplazzaInbound(config.shoplazza_client_secret, self.directory),
        }
        self.plugins = list(plugins)
        for plugin, adapter in self.plugins:
            if adapter.inbound is not None:
                self.inbound[plugin.name] = adapter.inbound
        self.oauth = OAuthFlow(
            engine,
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
        )
        self.supervisor.start()
        self.health = HealthChecks(
            engine,
            self.supervisor,
            {
                client: http.reachability
                for client, http in (("tiktok", tiktok.http), ("shoplazza", shoplazza.http))
                if isinstance(http, ObservedClient)
            },
            config.health,
        )
        self.receiver = build_receiver(self, self.inbound)
        self.http: HttpServer | None = None
        self._pull_tasks: list[asyncio.Task[None]] = []
        self._stopped = False

    @classmethod
    async def open(
        cls,
        config: ChannelConfig,
        *,
        clock: Clock | None = None,
        run_loops: bool = True,
        plugins: Sequence[AdapterPlugin] | None = None,
        image_source: ImageSource | None = None,
        **engine_options: Any,
    ) -> ChannelService:
        """Open the engine and wire the platforms. ``plugins``: the adapter
        plugins to run (default: every one installed, `adapters.plugins`)."""
        clock = clock or SystemClock()
        plugins = discover_adapter_plugins() if plugins is None else list(plugins)
        check_unique_names(plugins, BUILT_IN_ROUTES)
        engine = await Engine.open(
            config.db,
            [chart_package(), *plugin_chart_packages(plugins)],
            clock=clock,
            settings=config.settings,
            run_timers=run_loops,
            run_outbox=run_loops,
            **engine_options,
        )
        credentials = CredentialStore(engine.store)
        # Tokens staged by a callback that a crash interrupted (CONN-7).
        promoted, discarded = await credentials.settle_staged()
        if promoted or discarded:
            log.info("staged oauth tokens settled", promoted=promoted, discarded=discarded)
        tiktok = TikTokClient(
            config.tiktok_api_url,
            config.tiktok_auth_url,
            config.tiktok_app_key,
            config.tiktok_app_secret,
            credentials,
            clock,
            http=ObservedClient(Reachability("tiktok"), timeout=10.0),
        )
        shoplazza = ShoplazzaClient(
            config.shoplazza_api_url,
            config.shoplazza_access_token,
            http=ObservedClient(Reachability("shoplazza"), timeout=10.0),
            rate=config.shoplazza_rate,
            burst=max(1, int(config.shoplazza_rate)),
        )
        resolvers = ChannelResolvers(engine.store)
        platform = (
            TikTokCommands(tiktok, images=image_source).handlers()
            | ShoplazzaCommands(shoplazza, engine.vault).handlers()
        )
        engine.outbox.handlers.update(resolvers.handlers())
        engine.outbox.handlers.update(AuthorizationGate(resolvers, platform).handlers())
        # Asking Shoplazza whether a deletion or an uninstall happened needs no
        # TikTok authorization: not gated, or an uninstall reported while TikTok
        # is deauthorized would wait for a re-authorization (PLAT-9).
        engine.outbox.handlers.update(ShoplazzaConfirmations(shoplazza).handlers())
        opened = await _open_plugins(plugins, engine, clock, config)
        service = cls(config, engine, tiktok, shoplazza, opened)
        if run_loops:
            service._start_pulls()
        return service

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
        await self.engine.stop()
        await _close_plugins(self.plugins)
        await self.tiktok.aclose()
        await self.shoplazza.aclose()

    async def reconcile_once(self) -> int:
        """One pass of both scheduled pulls; how many new (not duplicate) events they recorded."""
        return await self.puller.pull_once() + await self.reconciler.pull_once()

    def _start_pulls(self) -> None:
        pulls: list[tuple[str, float, Callable[[], Awaitable[int]]]] = [
            ("tiktok", self.config.pull_interval, self.puller.pull_once),
            ("shoplazza", self.config.shoplazza_pull_interval, self.reconciler.pull_once),
        ]
        for platform, interval, pull in pulls:
            if interval > 0:
                self._pull_tasks.append(
                    asyncio.create_task(self._pull_loop(platform, interval, pull))
                )

    async def _pull_loop(
        self, platform: str, interval: float, pull: Callable[[], Awaitable[int]]
    ) -> None:
        # The first pass runs at once: a restarted channel catches up on what
        # it missed while it was down before it waits a whole interval.
        bound = log.bind(platform=platform, interval=interval)
        bound.info("scheduled pull started")
        while True:
            try:
                published = await pull()
            except Exception as error:  # the next pass starts from the same cursors
                bound.warning("scheduled pull failed", **error_fields(error))
            else:
                bound.info("scheduled pull done", events=published)
            await asyncio.sleep(interval)

    async def _connected_shops(self) -> list[str]:
        return [
            e.key
            for e in await self.engine.entities(chart="shop_connection")
            if e.state in ("active", "expiring")
        ]

    async def _connected_stores(self) -> list[str]:
        """The Shoplazza stores of the connected shops (``shop:<store>``)."""
        return [key.split(":", 1)[1] for key in await self._connected_shops()]

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


async def _open_plugins(
    plugins: Sequence[AdapterPlugin], engine: Engine, clock: Clock, config: ChannelConfig
) -> list[tuple[AdapterPlugin, Adapter]]:
    """Each plugin's adapter, its handlers added to the outbox's. On any
    failure the engine stops and the adapters opened so far close: serve
    never runs with half of its platforms."""
    opened: list[tuple[AdapterPlugin, Adapter]] = []
    context = AdapterContext(engine, clock, dict(os.environ), dict(config.settings))
    try:
        for plugin in plugins:
            try:
                adapter = await plugin.open(context)
            except PluginError:
                raise
            except Exception as err:
                raise PluginError(
                    f"adapter plugin {plugin.name!r} failed to open: {type(err).__name__}: {err}"
                ) from err
            opened.append((plugin, adapter))
            merge_handlers(plugin, adapter, engine.outbox.handlers)
            log.info(
                "adapter plugin opened",
                plugin=plugin.name,
                route=f"/webhooks/{plugin.name}" if adapter.inbound is not None else None,
                commands=sorted(adapter.handlers),
            )
    except BaseException:
        await engine.stop()
        await _close_plugins(opened)
        raise
    return opened


async def _close_plugins(opened: Sequence[tuple[AdapterPlugin, Adapter]]) -> None:
    for plugin, adapter in opened:
        if adapter.close is None:
            continue
        try:
            await adapter.close()
        except Exception as err:  # one plugin's failure to close must not stop the others
            log.warning("adapter plugin failed to close", plugin=plugin.name, **error_fields(err))
