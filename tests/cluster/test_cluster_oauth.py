"""CONN-7 in a cluster: the receiver role serves the OAuth callback, against
the real PostgreSQL and NATS JetStream and the TikTok sandbox over loopback
HTTP. The shop is walked to the authorize step by a `serve`-like channel on
the cluster's database, which then stops: from there on only workers write."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

import httpx
import pytest

from adapters.sandbox.story import SHOP, Sandboxes, walk_setup_to_authorize
from adapters.tiktok_shop.client import TikTokClient
from adapters.tiktok_shop.credentials import STAGED, Credentials, CredentialStore
from channelsync.receiver_role import ReceiverRole, open_receiver
from engine.charts.configuration import is_active
from engine.clock import SystemClock
from engine.store.postgres import PostgresStore
from tests.cluster.channel_cluster import ChannelCluster
from tests.cluster.cluster_support import all_owned, cluster_bus, wait_for
from tests.conftest import invoke_cli

pytestmark = pytest.mark.services

SETTLE_EVERY = 0.2


@dataclass
class World(ChannelCluster):
    roles: list[ReceiverRole] = field(default_factory=list)
    workers: list[tuple[asyncio.Event, asyncio.Task[None]]] = field(default_factory=list)

    async def start_worker(self) -> None:
        worker = self.channel_worker("w1")
        worker.settle_every = SETTLE_EVERY
        stop = asyncio.Event()
        self.workers.append((stop, asyncio.create_task(worker.run(stop))))
        await wait_for(lambda: all_owned(self.url, 1), 20.0, "the worker owns every partition")

    async def receiver(self, *, oauth_wait: float = 10.0) -> str:
        role = await open_receiver(
            self.settings,
            store=self.url,
            bus=self.bus,
            stream=self.stream,
            prefix=self.prefix,
            oauth_wait=oauth_wait,
        )
        self.roles.append(role)
        return (await role.serve()).url

    async def approved(self) -> dict[str, str]:
        """The merchant asked for the authorize link (`channelsync shop authorize
        --store URL`) and the seller approved on TikTok: the code and the state
        TikTok redirects to the callback with."""
        printed = await invoke_cli("shop", "authorize", "--store", self.url, SHOP)
        assert printed.exit_code == 0, printed.output
        url = printed.output.strip()
        answer = await self.box.admin.get(url)
        answer.raise_for_status()
        granted = answer.json()
        return {"code": granted["code"], "state": granted["state"]}

    async def callback(self, receiver: str, params: dict[str, str]) -> httpx.Response:
        return await self.box.admin.get(f"{receiver}/oauth/tiktok/callback", params=params)

    async def read(self) -> tuple[str | None, Credentials | None, int, int]:
        """The connection's state, the shop's tokens, the staged tokens and
        the number of events the connection logged, as the store holds them."""
        store = await PostgresStore.open_readonly(self.url)
        try:
            entity = await store.entity(SHOP)
            tokens = await CredentialStore(store).get(SHOP)
            staged = len(await store.find_records(STAGED))
            logged = len(await store.history(SHOP))
        finally:
            await store.close()
        return (None if entity is None else entity.state), tokens, staged, logged

    async def signed_call(self) -> dict[str, object]:
        """A call on the shop's behalf with the stored tokens."""
        store = await PostgresStore.open_readonly(self.url)
        client = TikTokClient(
            self.settings.tiktok_api_url,
            self.settings.tiktok_auth_url,
            self.settings.tiktok_app_key,
            self.settings.tiktok_app_secret,
            CredentialStore(store),
            SystemClock(),
        )
        try:
            return await client.call(SHOP, "GET", "/authorization/202309/shops")
        finally:
            await client.aclose()
            await store.close()


@pytest.fixture
async def world(
    pg_database_url: str, nats_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[World]:
    box = await Sandboxes.start(pg_database_url)
    box.pull = False
    made: World | None = None
    try:
        await walk_setup_to_authorize(box.service)
        await box.service.stop()
        stream, prefix = await cluster_bus(pg_database_url, nats_server_url, "oauth")
        settings = replace(box.service.config, pull_interval=0, shoplazza_pull_interval=0)
        monkeypatch.setenv("TIKTOK_APP_KEY", settings.tiktok_app_key)
        monkeypatch.setenv("TIKTOK_AUTH_URL", settings.tiktok_auth_url)
        made = World(box, pg_database_url, nats_server_url, stream, prefix, settings)
        yield made
    finally:
        if made is not None:
            for stop, task in made.workers:
                stop.set()
                await task
            for role in made.roles:
                await role.stop()
        await box.stop()


def authorized(state: str | None) -> bool:
    return state is not None and is_active(state, "authorized")


async def test_a_shop_connects_through_a_receiver_and_a_worker(world: World) -> None:
    await world.start_worker()
    receiver = await world.receiver()
    answer = await world.callback(receiver, await world.approved())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["outcome"] == "transitioned" and body["shop"] == SHOP
    assert authorized(body["state"])
    state, tokens, staged, _logged = await world.read()
    assert authorized(state)
    assert tokens is not None and staged == 0
    assert (await world.signed_call())["shops"]


async def test_a_replayed_callback_changes_nothing(world: World) -> None:
    await world.start_worker()
    receiver = await world.receiver()
    params = await world.approved()
    assert (await world.callback(receiver, params)).status_code == 200
    before = await world.read()
    again = await world.callback(receiver, params)
    assert again.status_code == 400
    assert "already used" in again.json()["error"]
    assert params["code"] not in again.text
    assert await world.read() == before


async def test_with_the_workers_down_the_callback_is_pending_until_one_runs(
    world: World,
) -> None:
    receiver = await world.receiver(oauth_wait=0.5)
    answer = await world.callback(receiver, await world.approved())
    assert answer.status_code == 202, answer.text
    assert answer.json()["outcome"] == "pending"
    state, tokens, staged, _logged = await world.read()
    assert not authorized(state) and tokens is None and staged == 1
    await world.start_worker()

    async def promoted() -> bool:
        state, tokens, staged, _logged = await world.read()
        return authorized(state) and tokens is not None and staged == 0

    await wait_for(promoted, 20.0, "the connection authorized and its tokens promoted")
    assert (await world.signed_call())["shops"]


async def test_an_authorization_the_connection_refuses_is_answered_409_and_keeps_no_tokens(
    world: World,
) -> None:
    await world.start_worker()
    receiver = await world.receiver()
    params = await world.approved()
    # The merchant disconnected the shop before TikTok redirected back.
    role = world.roles[0]
    event = role.sink.charts.event_types.make(
        "connection.disconnected",
        SHOP,
        {},
        event_id="merchant:disconnect:meanwhile",
        source="merchant",
        received_at=time.time(),
    )
    await role.sink.publish(event)

    async def disconnected() -> bool:
        state, *_rest = await world.read()
        return state == "not_connected"

    await wait_for(disconnected, 20.0, "the shop disconnected")
    _state, _tokens, _staged, logged = await world.read()
    answer = await world.callback(receiver, params)
    assert answer.status_code == 409, answer.text
    assert answer.json()["outcome"] == "ignored"
    assert "accept TikTok's data-usage terms" in answer.json()["error"]
    assert await world.read() == ("not_connected", None, 0, logged + 1)
