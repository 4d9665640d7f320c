"""PLAT-8 in a cluster: workers run the scheduled pulls, each shop's on the
owner of its connection's partition, onto the bus, against the real
PostgreSQL and NATS JetStream and the TikTok sandbox over loopback HTTP.

The shop is connected by a `serve`-like channel on the cluster's database
first (as a deployment moving to a cluster would have it), which then stops:
from there on only the workers write."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from adapters.sandbox.story import SHOP, Sandboxes, connect_shop
from channelsync.bootstrap import bootstrap
from channelsync.cluster_pulls import BusAddress, ClusterPulls
from channelsync.platforms import HttpPlatforms
from channelsync.worker_role import ChannelWorker
from engine.clock import SystemClock
from engine.cluster.jetstream import BusUnavailable, PartitionFeed, connect_bus, ensure_stream
from engine.cluster.partitions import partition_of
from engine.store.postgres import PostgresStore
from engine.testing.services import unique_name
from statecharts.views import region_status
from tests.cluster.channel_cluster import ChannelCluster
from tests.cluster.cluster_support import all_owned, cluster_bus, leases, wait_for

pytestmark = pytest.mark.services

PULL_EVERY = 0.3
LOOK_EVERY = 0.2
ORDERS_CURSOR = f"tiktok:orders:{SHOP}"


@dataclass
class World(ChannelCluster):
    running: dict[str, tuple[ChannelWorker, asyncio.Event, asyncio.Task[None]]] = field(
        default_factory=dict
    )

    def start(self, name: str) -> ChannelWorker:
        worker = self.channel_worker(name)
        worker.pulls.look_every = LOOK_EVERY
        stop = asyncio.Event()
        self.running[name] = (worker, stop, asyncio.create_task(worker.run(stop)))
        return worker

    async def stop(self, name: str) -> None:
        _worker, stop, task = self.running.pop(name)
        stop.set()
        await task

    def lost_order(self, *, paid: bool = True) -> str:
        """An order whose every webhook TikTok drops: only a pull can find it."""
        self.box.tiktok.faults.drop = 1.0
        order = self.box.tiktok.create_order([{"product_id": "1", "seller_sku": "SKU-1"}])["id"]
        if paid:
            self.box.tiktok.order_action(order, "pay")
        return str(order)

    async def order_state(self, order: str) -> str | None:
        """The order's lifecycle as the store holds it (what the workers committed)."""
        store = await PostgresStore.open_readonly(self.url)
        try:
            entity = await store.entity(f"order:{order}")
        finally:
            await store.close()
        return None if entity is None else region_status(entity.state, "lifecycle")

    async def reaches(self, order: str, timeout: float = 20.0) -> None:
        want = self.box.tiktok.orders[order]["status"].lower()

        async def there() -> bool:
            return await self.order_state(order) == want

        await wait_for(there, timeout, f"order {order} {want} in the store")


@pytest.fixture
async def world(pg_database_url: str, nats_server_url: str) -> AsyncIterator[World]:
    box = await Sandboxes.start(pg_database_url)
    box.pull = False
    made: World | None = None
    try:
        await connect_shop(box)
        await box.service.stop()
        stream, prefix = await cluster_bus(pg_database_url, nats_server_url, "pulls")
        settings = replace(
            box.service.config,
            pull_interval=PULL_EVERY,
            shoplazza_pull_interval=0,  # these tests follow TikTok's orders
        )
        made = World(box, pg_database_url, nats_server_url, stream, prefix, settings)
        yield made
    finally:
        if made is not None:
            for name in list(made.running):
                await made.stop(name)
        await box.stop()


async def owner_of(url: str, entity: str) -> str | None:
    rows = {row.partition: row for row in await leases(url)}
    return rows[partition_of(entity)].owner


async def dead_letters(url: str) -> list[Any]:
    store = await PostgresStore.open_readonly(url)
    try:
        return list(await store.dead_letters())
    finally:
        await store.close()


async def test_a_lost_webhooks_order_reaches_its_entity_through_a_workers_pull(
    world: World,
) -> None:
    """PLAT-8: TikTok drops every webhook of a paid order; the worker's pull
    finds it and the order ends in TikTok's state. A pulled record with an id
    that is not TikTok's is kept as a dead letter, and the fence, which guards
    every commit of the worker, does not step it down for it (SEC-5)."""
    order = world.lost_order()
    bad = dict(world.box.tiktok.orders[order], id="0" + order)  # a leading zero: not TikTok's
    world.box.tiktok.orders[bad["id"]] = bad
    worker = world.start("w1")
    await world.reaches(order)
    assert world.box.tiktok.webhooks.sent == 0  # it came by the pull alone

    async def kept() -> bool:
        return any(letter.source == "tiktok-pull" for letter in await dead_letters(world.url))

    await wait_for(kept, 10.0, "the refused record kept as a dead letter")
    [letter] = [d for d in await dead_letters(world.url) if d.source == "tiktok-pull"]
    assert letter.entity is None and "leading zero" in letter.error
    assert worker.stepped_down == 0, worker.last_step_down


async def test_each_shops_pull_runs_on_its_partitions_owner_and_moves_with_it(
    world: World,
) -> None:
    """Two workers: the shop is pulled by the one holding its connection's
    partition, never by the other; once that one stops, the other pulls it."""
    workers = {name: world.start(name) for name in ("w1", "w2")}

    async def balanced() -> bool:
        # Half each: no partition moves any more while the test watches.
        rows = await leases(world.url)
        held = Counter(row.owner for row in rows if row.live)
        return sorted(held.values()) == [len(rows) // 2, len(rows) - len(rows) // 2]

    await wait_for(balanced, 30.0, "the two workers holding half the partitions each")
    owner = await owner_of(world.url, SHOP)
    [other] = [name for name in workers if name != owner]
    for worker in workers.values():
        worker.pulls.pulled.clear()

    async def owner_pulled_twice() -> bool:
        return workers[owner].pulls.pulled[SHOP] >= 2

    await wait_for(owner_pulled_twice, 10.0, "the owner pulling the shop")
    assert workers[other].pulls.pulled[SHOP] == 0
    assert await owner_of(world.url, SHOP) == owner

    await world.stop(owner)
    order = world.lost_order()

    async def other_owns_all() -> bool:
        return await all_owned(world.url, owners=1)

    await wait_for(other_owns_all, 20.0, "the other worker taking every partition")
    await world.reaches(order)
    assert workers[other].pulls.pulled[SHOP] >= 1


async def test_the_cursor_stays_while_the_bus_refuses_and_the_next_pass_catches_up(
    world: World,
) -> None:
    """A pass whose events JetStream does not take (its stream is missing)
    fails and leaves the cursor where it was; the next pass, once the stream
    is there, pulls the same order again, and a pass after that finds only
    duplicates on the bus."""
    order = world.lost_order(paid=False)
    missing = unique_name("MISSING")
    address = BusAddress(world.bus, missing, unique_name("missing"))
    # No loops (intervals 0): the test runs the passes, each finding the shop due.
    settings = replace(world.settings, pull_interval=0)
    pulls = ClusterPulls(settings, address, lambda _partition: True)
    platforms = HttpPlatforms(settings)
    app = await bootstrap(settings, clock=SystemClock(), platforms=platforms, plugins=[])
    running = pulls.start(app, platforms)
    tiktok_pass = running.passes["tiktok"]
    bus = await connect_bus(world.bus)
    try:
        with pytest.raises(BusUnavailable):
            await tiktok_pass()
        assert await app.engine.store.cursor(ORDERS_CURSOR) is None
        assert await dead_letters(world.url) == []

        await ensure_stream(bus.js, stream=missing, prefix=address.prefix)
        assert await tiktok_pass() == 1
        assert await app.engine.store.cursor(ORDERS_CURSOR) is not None
        feed = PartitionFeed(
            bus.js,
            stream=missing,
            prefix=address.prefix,
            partition=partition_of(f"order:{order}"),
            start_after=0,
        )
        try:
            [message] = await feed.fetch(10, timeout=1.0)
        finally:
            await feed.close()
        stamp = world.box.tiktok.orders[order]["update_time"]
        assert message.event_id == f"tiktok:order:{order}:UNPAID:{stamp}"
        assert await tiktok_pass() == 0  # the same change again: a duplicate on the bus
    finally:
        with contextlib.suppress(Exception):
            await bus.js.delete_stream(missing)
        await bus.close()
        await running.stop()


async def test_a_change_pulled_again_past_the_buss_window_is_applied_once(world: World) -> None:
    """Every pass reads the cursor's overlap again, so a change already on the
    bus is published once more; past JetStream's duplicate window it is stored
    again, and the order's owner records it as a duplicate of what it applied."""
    worker = world.start("w1")
    await wait_for(lambda: all_owned(world.url, owners=1), 20.0, "the worker holding everything")
    bus = await connect_bus(world.bus)
    try:
        # After the worker's start-up (which sets the stream's window): a short one.
        await ensure_stream(bus.js, stream=world.stream, prefix=world.prefix, duplicate_window=0.2)
        order = world.lost_order()
        await world.reaches(order)
        event_id = f"tiktok:order:{order}:ON_HOLD:{world.box.tiktok.orders[order]['update_time']}"
        feed = PartitionFeed(
            bus.js,
            stream=world.stream,
            prefix=world.prefix,
            partition=partition_of(f"order:{order}"),
            start_after=0,
        )
        copies = 0

        async def stored_again() -> bool:
            nonlocal copies
            messages = await feed.fetch(100, timeout=0.2)
            copies += sum(1 for m in messages if m.event_id == event_id)
            return copies >= 2

        try:
            await wait_for(stored_again, 20.0, "the change stored on the bus a second time")
        finally:
            await feed.close()

        async def seen_twice() -> bool:
            store = await PostgresStore.open_readonly(world.url)
            try:
                history = await store.history(f"order:{order}")
                duplicates = await store.duplicate_count(event_id)
            finally:
                await store.close()
            outcomes = [row["outcome"] for row in history if row["event_id"] == event_id]
            return outcomes == ["transitioned"] and duplicates >= 1

        await wait_for(seen_twice, 20.0, "the owner recording the second copy as a duplicate")
        assert await world.order_state(order) == "on_hold"
        assert worker.stepped_down == 0, worker.last_step_down
    finally:
        await bus.close()
