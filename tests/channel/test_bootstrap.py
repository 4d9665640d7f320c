"""The composition root: serve's channel and the harness's are wired by one
function, with every handler given to the engine when it is built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.plugins import Adapter, PluginError
from adapters.shoplazza.commands import ShoplazzaCommands
from adapters.shoplazza.confirm import CONFIRM_UNINSTALLED
from adapters.tiktok_shop.commands import TikTokCommands
from channelsync.bootstrap import bootstrap, open_service
from channelsync.platforms import PlatformHandlers
from channelsync.settings import ChannelSettings
from engine import FakeClock
from engine.lifecycle import EngineParts
from engine.outbox import CommandHeld, OutboxCommand
from engine.rules import RELEASE_HELD, SEND_EVENT
from engine.settings import EngineSettings
from statecharts.resolvers import ChannelResolvers
from tests.channel.harness import SHOP, SHOPLAZZA_COMMANDS, TIKTOK_COMMANDS, Channel

CLOSED = "http://127.0.0.1:9"  # nothing here reaches a platform
QUIET = EngineSettings(run_timers=False, run_outbox=False)


def _settings(db: Path) -> ChannelSettings:
    return ChannelSettings(
        db=db,
        tiktok_app_key="k",
        tiktok_app_secret="s",
        shoplazza_client_secret="c",
        tiktok_api_url=CLOSED,
        tiktok_auth_url=CLOSED,
        shoplazza_api_url=CLOSED,
        pull_interval=0,
        shoplazza_pull_interval=0,
        engine=QUIET,
    )


def _command(type_: str, **payload: Any) -> OutboxCommand:
    return OutboxCommand(1, SHOP, type_, {"shop": SHOP, **payload}, f"key:{type_}", 0)


async def _set_up_not_authorized(engine) -> None:
    """A shop whose connection exists but is not authorized: platform work waits."""
    await engine.publish(
        engine.make_event(
            "connection.start_setup",
            SHOP,
            {"store_domain": "demo-store.myshoplaza.com", "store_country": "US"},
            event_id="setup",
        )
    )


async def test_serves_app_has_every_handler_and_gates_the_platform_commands(tmp_path):
    service = await open_service(_settings(tmp_path / "serve.db"), run_loops=False, plugins=[])
    try:
        handlers = service.engine.outbox.handlers
        resolvers = set(ChannelResolvers(service.engine.store).handlers())
        shoplazza = set(ShoplazzaCommands(service.shoplazza, service.engine.vault).handlers())
        tiktok = set(TikTokCommands(service.tiktok).handlers())
        expected = {SEND_EVENT, RELEASE_HELD, CONFIRM_UNINSTALLED, *resolvers, *shoplazza}
        assert expected | tiktok <= set(handlers) and "update_price" in tiktok
        await _set_up_not_authorized(service.engine)
        # Gated: no call goes out for a shop that is not authorized.
        with pytest.raises(CommandHeld, match="authorization inactive"):
            await handlers["update_price"](_command("update_price"))
    finally:
        await service.stop()


class _Recording:
    """Platforms whose handlers only record: which commands reached them."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.closed = False

    async def _record(self, command: OutboxCommand) -> list[dict[str, Any]]:
        self.calls.append(command.type)
        return []

    async def open(self, parts: EngineParts) -> PlatformHandlers:
        return PlatformHandlers(
            gated={"update_price": self._record}, ungated={CONFIRM_UNINSTALLED: self._record}
        )

    async def close(self) -> None:
        self.closed = True


class _Plugin:
    name = "helpdesk"
    charts = ()

    def __init__(self, handlers: dict[str, Any]) -> None:
        self.handlers = handlers
        self.closed = False

    async def open(self, context) -> Adapter:
        assert context.parts.store is not None and context.clock is context.parts.clock

        async def close() -> None:
            self.closed = True

        return Adapter(None, dict(self.handlers), close=close)


async def test_gated_and_ungated_platform_handlers_and_a_plugins_arrive(tmp_path, clock):
    platforms, plugin = _Recording(), _Plugin({"notify_helpdesk": None})
    acknowledged: list[str] = []

    async def notify(command: OutboxCommand) -> list[dict[str, Any]]:
        acknowledged.append(command.payload["ticket"])
        return []

    plugin.handlers["notify_helpdesk"] = notify
    settings = ChannelSettings(db=tmp_path / "app.db", engine=QUIET)
    app = await bootstrap(settings, clock=clock, platforms=platforms, plugins=[plugin])
    try:
        handlers = app.engine.outbox.handlers
        await _set_up_not_authorized(app.engine)
        with pytest.raises(CommandHeld):
            await handlers["update_price"](_command("update_price"))
        await handlers[CONFIRM_UNINSTALLED](_command(CONFIRM_UNINSTALLED, connection=SHOP))
        await handlers["notify_helpdesk"](_command("notify_helpdesk", ticket="T-1"))
        assert platforms.calls == [CONFIRM_UNINSTALLED] and acknowledged == ["T-1"]
    finally:
        await app.stop()
    assert platforms.closed and plugin.closed


async def test_a_plugin_claiming_a_platform_command_leaves_nothing_open(tmp_path, clock):
    async def nothing(command: OutboxCommand) -> None:
        return None

    platforms, plugin = _Recording(), _Plugin({"update_price": nothing})
    settings = ChannelSettings(db=tmp_path / "app.db", engine=QUIET)
    with pytest.raises(PluginError, match="already handled: update_price"):
        await bootstrap(settings, clock=clock, platforms=platforms, plugins=[plugin])
    assert platforms.closed and plugin.closed
    # The database's lock was let go: it opens again at once.
    app = await bootstrap(settings, clock=clock, platforms=_Recording())
    await app.stop()


async def test_the_harness_is_the_bootstrapped_channel_with_fakes(db_path):
    channel = await Channel.open(db_path, FakeClock())
    try:
        handlers = channel.engine.outbox.handlers
        assert set(TIKTOK_COMMANDS) | set(SHOPLAZZA_COMMANDS) <= set(handlers)
        assert channel.shoplazza.vault is channel.engine.vault
        await channel.connect()
        assert await channel.state(SHOP) == "authorized.active"
    finally:
        await channel.engine.stop()
