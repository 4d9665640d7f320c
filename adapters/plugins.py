"""Adapters from other packages: the ``channelsync.adapters`` entry points.

A package adds a platform to `channelsync serve` without a change to
channelsync. It registers, in its own ``pyproject.toml``:

    [project.entry-points."channelsync.charts"]
    helpdesk = "helpdesk_channel:chart_package"     # its charts (replay finds them too)

    [project.entry-points."channelsync.adapters"]
    helpdesk = "helpdesk_channel:plugin"            # an AdapterPlugin, or a factory of one

The plugin names the chart packages its events need (`charts`); serve loads
them beside the channel's own. At start, ``open`` gets the opened database
(`AdapterContext`) and returns an `Adapter`: an inbound side served at ``POST /webhooks/{name}``
(verified before anything is recorded, exactly like the built-in ones) and
outbox handlers for its command types. A plugin that fails to load, names a
chart package that is not installed, or claims a route or a command type that
is taken stops serve with an error that names it: nothing starts half-wired.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from adapters.base import InboundAdapter
from engine.chartset import ChartPackage, discover_packages
from engine.clock import Clock
from engine.lifecycle import EngineParts
from engine.logs import error_fields, get_logger
from engine.outbox import CommandHandler

ENTRY_POINT_GROUP = "channelsync.adapters"
log = get_logger("channelsync.plugins")


class PluginError(Exception):
    """An adapter plugin that cannot be used; the message names it."""


@dataclass(frozen=True)
class AdapterContext:
    """What a plugin gets to build its adapter with: the opened database's
    store, vault, clock and charts (``parts``; its handlers are given to the
    engine when it is built, so there is no running engine yet), the process
    environment (where a plugin's secrets come from) and the charts' settings."""

    parts: EngineParts
    env: Mapping[str, str]
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def clock(self) -> Clock:
        return self.parts.clock


@dataclass
class Adapter:
    """A plugin's running parts. ``close`` (if any) runs when serve stops."""

    inbound: InboundAdapter | None = None
    handlers: dict[str, CommandHandler] = field(default_factory=dict)
    close: Callable[[], Awaitable[None]] | None = None


@runtime_checkable
class AdapterPlugin(Protocol):
    name: str  # also the webhook route: POST /webhooks/{name}
    charts: Sequence[str]  # `channelsync.charts` entry points its events need

    async def open(self, context: AdapterContext) -> Adapter: ...


def discover_adapter_plugins() -> list[AdapterPlugin]:
    """Every adapter plugin installed, in entry-point name order."""
    plugins: list[AdapterPlugin] = []
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        where = f"adapter plugin {point.name!r} ({point.value})"
        try:
            loaded = point.load()
            # A class or a factory function is called; anything else is the plugin.
            plugin = loaded() if isinstance(loaded, type) or inspect.isfunction(loaded) else loaded
        except Exception as err:
            raise PluginError(f"{where} failed to load: {type(err).__name__}: {err}") from err
        if not isinstance(plugin, AdapterPlugin):
            raise PluginError(f"{where} is not an AdapterPlugin (name, charts, open)")
        plugins.append(plugin)
    return plugins


def check_unique_names(plugins: Sequence[AdapterPlugin], taken: Sequence[str]) -> None:
    """Each plugin's name (its webhook route) must be its own."""
    seen = set(taken)
    for plugin in plugins:
        if plugin.name in seen:
            raise PluginError(
                f"adapter plugin {plugin.name!r}: the route /webhooks/{plugin.name} is taken"
            )
        seen.add(plugin.name)


def plugin_chart_packages(plugins: Sequence[AdapterPlugin]) -> list[ChartPackage]:
    """The installed chart packages the plugins name, each once."""
    installed = discover_packages()
    packages: dict[str, ChartPackage] = {}
    for plugin in plugins:
        for name in plugin.charts:
            if name not in installed:
                raise PluginError(
                    f"adapter plugin {plugin.name!r} needs the chart package {name!r},"
                    " which is not installed (no 'channelsync.charts' entry point of that name)"
                )
            packages.setdefault(name, installed[name])
    return list(packages.values())


def merge_handlers(
    plugin: AdapterPlugin, adapter: Adapter, handlers: dict[str, CommandHandler]
) -> None:
    """Add ``adapter``'s outbox handlers to ``handlers``; a command type that
    already has one is an error (two platforms cannot both carry it out)."""
    clash = sorted(set(adapter.handlers) & set(handlers))
    if clash:
        raise PluginError(
            f"adapter plugin {plugin.name!r} handles command type(s) already handled: "
            + ", ".join(clash)
        )
    handlers.update(adapter.handlers)


async def close_plugins(opened: Sequence[tuple[AdapterPlugin, Adapter]]) -> None:
    """Close each opened plugin's adapter; one that fails to close is logged
    and the others still close."""
    for plugin, adapter in opened:
        if adapter.close is None:
            continue
        try:
            await adapter.close()
        except Exception as err:
            log.warning("adapter plugin failed to close", plugin=plugin.name, **error_fields(err))


__all__ = [
    "ENTRY_POINT_GROUP",
    "Adapter",
    "AdapterContext",
    "AdapterPlugin",
    "PluginError",
    "check_unique_names",
    "close_plugins",
    "discover_adapter_plugins",
    "merge_handlers",
    "plugin_chart_packages",
]
