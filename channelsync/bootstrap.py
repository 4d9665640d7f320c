"""Where the channel is put together: the one place that wires it.

    app = await bootstrap(settings, clock=SystemClock(), platforms=HttpPlatforms(settings))

`bootstrap` opens the database and gives the engine, at construction, every
command handler the channel has: the resolvers (commands answered from the
store), the platforms' handlers behind the authorization gate, the handlers
that need no authorization, and the adapter plugins'. `open_service` adds what
`channelsync serve` runs on top (receiver, health, supervisor, pulls). serve,
demo, the sandbox story, the CLI's channel commands and the test harness all
come through here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from adapters.plugins import (
    Adapter,
    AdapterContext,
    AdapterPlugin,
    PluginError,
    check_unique_names,
    close_plugins,
    discover_adapter_plugins,
    merge_handlers,
    plugin_chart_packages,
)
from adapters.service import BUILT_IN_ROUTES, ChannelService
from adapters.tiktok_shop.images import ImageSource
from channelsync.platforms import HttpPlatforms, Platforms
from channelsync.settings import ChannelSettings
from engine.chartset import ChartPackage, ChartSet
from engine.clock import Clock, SystemClock
from engine.lifecycle import EngineParts
from engine.logs import get_logger
from engine.outbox import CommandHandler
from engine.runtime import Engine
from statecharts import chart_package
from statecharts.resolvers import AuthorizationGate, ChannelResolvers

log = get_logger("channelsync.bootstrap")


@dataclass
class ChannelApp:
    """The wired channel: its engine (already running), the platforms that
    carry out its commands and the adapter plugins opened beside them."""

    settings: ChannelSettings
    engine: Engine
    platforms: Platforms
    plugins: list[tuple[AdapterPlugin, Adapter]]

    async def stop(self) -> None:
        """Stop the engine, then close the plugins and the platforms' connections."""
        try:
            await self.engine.stop()
        finally:
            await close_plugins(self.plugins)
            await self.platforms.close()


async def bootstrap(
    settings: ChannelSettings,
    *,
    clock: Clock,
    platforms: Platforms,
    packages: Iterable[ChartPackage] | None = None,
    charts: ChartSet | None = None,
    plugins: Sequence[AdapterPlugin] = (),
) -> ChannelApp:
    """Open ``settings.db`` and run the channel over ``platforms``.

    ``packages``: the chart packages (default: the channel's, plus those the
    plugins name); ``charts``: an already loaded set instead. A plugin that
    cannot be wired raises `PluginError` naming it, and nothing stays open:
    the channel never runs with half of its platforms."""
    check_unique_names(plugins, BUILT_IN_ROUTES)
    if charts is None and packages is None:
        packages = [chart_package(), *plugin_chart_packages(plugins)]
    opened: list[tuple[AdapterPlugin, Adapter]] = []

    async def handlers(parts: EngineParts) -> Mapping[str, CommandHandler]:
        platform = await platforms.open(parts)
        resolvers = ChannelResolvers(parts.store)
        wired: dict[str, CommandHandler] = {
            **resolvers.handlers(),
            **AuthorizationGate(resolvers, platform.gated).handlers(),
            **platform.ungated,
        }
        context = AdapterContext(parts, dict(os.environ), dict(settings.chart_settings))
        for plugin in plugins:
            adapter = await _open_plugin(plugin, context)
            opened.append((plugin, adapter))
            merge_handlers(plugin, adapter, wired)
        return wired

    try:
        engine = await Engine.open(
            settings.db,
            packages,
            charts=charts,
            chart_settings=settings.chart_settings,
            clock=clock,
            handlers=handlers,
            settings=settings.engine,
        )
    except BaseException:
        await close_plugins(opened)
        await platforms.close()
        raise
    return ChannelApp(settings, engine, platforms, opened)


async def _open_plugin(plugin: AdapterPlugin, context: AdapterContext) -> Adapter:
    try:
        adapter = await plugin.open(context)
    except PluginError:
        raise
    except Exception as err:
        raise PluginError(
            f"adapter plugin {plugin.name!r} failed to open: {type(err).__name__}: {err}"
        ) from err
    log.info(
        "adapter plugin opened",
        plugin=plugin.name,
        route=f"/webhooks/{plugin.name}" if adapter.inbound is not None else None,
        commands=sorted(adapter.handlers),
    )
    return adapter


async def open_service(
    settings: ChannelSettings,
    *,
    clock: Clock | None = None,
    plugins: Sequence[AdapterPlugin] | None = None,
    images: ImageSource | None = None,
    charts: ChartSet | None = None,
    run_loops: bool = True,
) -> ChannelService:
    """The channel as `channelsync serve` runs it: `bootstrap` over the real
    platforms, with the receiver, health checks, writer supervisor and (with
    ``run_loops``) the timers, the outbox and the scheduled pulls.
    ``plugins``: the adapter plugins to run (default: every one installed)."""
    # ``run_loops`` decides the engine's loops too, so a service reopened
    # with the settings of one opened without them runs them again.
    settings = replace(
        settings, engine=replace(settings.engine, run_timers=run_loops, run_outbox=run_loops)
    )
    platforms = HttpPlatforms(settings, images)
    app = await bootstrap(
        settings,
        clock=clock or SystemClock(),
        platforms=platforms,
        charts=charts,
        plugins=discover_adapter_plugins() if plugins is None else plugins,
    )
    tiktok, shoplazza = platforms.clients()
    service = ChannelService(app.settings, app.engine, tiktok, shoplazza, app.plugins)
    if run_loops:
        service.start_pulls()
    return service
