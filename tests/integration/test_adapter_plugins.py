"""Adapter plugins: a third-party platform wired into serve by entry points.

The fixture package (tests/fixtures/plugins) is a fictional helpdesk: its
dist-info registers a chart package and an adapter plugin, exactly as an
installed package's would. Putting the folder on sys.path installs it.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from adapters.plugins import Adapter, PluginError, discover_adapter_plugins
from channelsync.bootstrap import open_service
from channelsync.settings import ChannelSettings
from engine import ChartSet, discover_packages
from engine.replay import check
from tests.conftest import invoke_cli

PLUGINS = Path(__file__).parent.parent / "fixtures" / "plugins"
SECRET = "helpdesk-secret"


@pytest.fixture
def installed(monkeypatch):
    """The helpdesk plugin installed, with its secret in the environment."""
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.setenv("HELPDESK_SECRET", SECRET)


def _config(tmp_path: Path) -> ChannelSettings:
    return ChannelSettings(
        db=tmp_path / "plugins.db",
        tiktok_app_key="k",
        tiktok_app_secret="s",
        shoplazza_client_secret="c",
        pull_interval=0,
    )


def _webhook(delivery: str, ticket: str, event: str, **data: str) -> bytes:
    import json

    return json.dumps(
        {"delivery_id": delivery, "ticket_id": ticket, "event": event, "data": data}
    ).encode()


def test_installed_plugins_and_their_charts_are_discovered(installed):
    [plugin] = discover_adapter_plugins()
    assert plugin.name == "helpdesk" and tuple(plugin.charts) == ("helpdesk",)
    assert "helpdesk" in discover_packages()  # so replay and check know its charts


async def test_a_plugin_platform_runs_in_serve_end_to_end(installed, tmp_path):
    """A signed webhook at /webhooks/helpdesk is verified, recorded and
    applied to the plugin's chart; its outbox command is carried out by the
    plugin's handler and the result comes back as an event; a bad signature
    gets 401 with nothing recorded; replay knows the plugin's charts; the
    plugin is closed when serve stops."""
    from helpdesk_channel import signature

    service = await open_service(_config(tmp_path), run_loops=False)
    [(plugin, _adapter)] = service.plugins
    try:
        server = await service.serve()
        url = f"{server.url}/webhooks/helpdesk"
        body = _webhook("d-1", "T-1", "opened", subject="Where is my parcel?")
        async with httpx.AsyncClient() as client:
            refused = await client.post(
                url, content=body, headers={"X-Helpdesk-Signature": signature("wrong", body)}
            )
            assert refused.status_code == 401
            assert await service.engine.store.count("events") == 0
            accepted = await client.post(
                url, content=body, headers={"X-Helpdesk-Signature": signature(SECRET, body)}
            )
            assert accepted.status_code == 200
        ticket = await service.engine.entity("ticket:T-1")
        assert ticket.state == "open" and ticket.data["subject"] == "Where is my parcel?"

        await service.engine.outbox.run_once()
        assert plugin.acknowledged == ["T-1"]
        assert (await service.engine.entity("ticket:T-1")).state == "acknowledged"

        charts = ChartSet.load(discover_packages().values())
        assert (await check(service.engine.store, charts)).divergence is None
    finally:
        await service.stop()
    assert plugin.closed


async def test_no_plugins_leaves_the_route_unserved(installed, tmp_path):
    service = await open_service(_config(tmp_path), run_loops=False, plugins=[])
    try:
        server = await service.serve()
        async with httpx.AsyncClient() as client:
            answer = await client.post(f"{server.url}/webhooks/helpdesk", content=b"{}")
        assert answer.status_code == 404
    finally:
        await service.stop()


class _Plugin:
    """A plugin built in a test, to break one rule at a time."""

    def __init__(self, name: str, charts=(), handlers=None, fail: bool = False) -> None:
        self.name = name
        self.charts = charts
        self.handlers = handlers or {}
        self.fail = fail
        self.closed = False

    async def open(self, context) -> Adapter:
        if self.fail:
            raise RuntimeError("no credentials")

        async def close() -> None:
            self.closed = True

        return Adapter(None, dict(self.handlers), close=close)


async def _nothing(command):
    return []


@pytest.mark.parametrize(
    ("plugins", "message"),
    [
        ([_Plugin("tiktok")], "route /webhooks/tiktok is taken"),
        ([_Plugin("a"), _Plugin("a")], "route /webhooks/a is taken"),
        ([_Plugin("a", charts=("nowhere",))], "chart package 'nowhere', which is not installed"),
        ([_Plugin("a", fail=True)], "'a' failed to open: RuntimeError: no credentials"),
        (
            [_Plugin("a", handlers={"create_listing": _nothing})],
            "already handled: create_listing",
        ),
    ],
)
async def test_a_plugin_that_cannot_be_wired_stops_serve_with_its_name(tmp_path, plugins, message):
    with pytest.raises(PluginError, match=message):
        await open_service(_config(tmp_path), run_loops=False, plugins=plugins)
    # The engine was stopped, not leaked: the database opens again at once,
    # and the plugins opened before the failure were closed.
    reopened = await open_service(_config(tmp_path), run_loops=False, plugins=[])
    await reopened.stop()
    assert all(p.closed for p in plugins if not p.fail and p.handlers)


async def test_serve_names_a_plugin_that_cannot_start(installed, monkeypatch, tmp_path):
    monkeypatch.delenv("HELPDESK_SECRET")
    for name, value in (
        ("TIKTOK_APP_KEY", "k"),
        ("TIKTOK_APP_SECRET", "s"),
        ("SHOPLAZZA_CLIENT_SECRET", "c"),
    ):
        monkeypatch.setenv(name, value)
    result = await invoke_cli("serve", "--db", str(tmp_path / "serve.db"), "--port", "0")
    assert result.exit_code == 2
    said = " ".join(result.output.split())  # rich wraps long lines
    assert (
        "adapter plugin 'helpdesk' failed to open: RuntimeError: HELPDESK_SECRET is not set" in said
    )
