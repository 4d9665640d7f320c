"""Workers in this process against the real PostgreSQL and NATS JetStream:
partitions fed in order and acknowledged after commit, a backlog that
builds with no worker and drains in order, and a worker whose lease ran out
while it kept working refused by the fence and stepping down (ENG-11)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

from engine.cluster.fence import LeaseLost
from engine.cluster.jetstream import JetStreamPublisher, connect_bus, ensure_stream
from engine.cluster.partitions import partition_of
from engine.cluster.worker import Worker, WorkerSettings
from engine.store.postgres import PostgresStore
from engine.testing.services import unique_name
from tests.cluster.cluster_support import (
    LEASE_TTL,
    Load,
    all_owned,
    applied_count,
    check_exactly_once_in_order,
    commands_done,
    leases,
    notified,
    prepare,
    publish,
    wait_for,
)
from tests.cluster.worker_child import SETTINGS, open_engine, recorder
from tests.conftest import invoke_cli

pytestmark = pytest.mark.services


@dataclass
class Cluster:
    url: str
    bus: str
    stream: str
    prefix: str
    publisher: JetStreamPublisher
    effects: psycopg.AsyncConnection[Any]
    running: list[tuple[Worker, asyncio.Event, asyncio.Task[None]]] = field(default_factory=list)

    def start(self, name: str, *, reply: bool = False) -> Worker:
        settings = WorkerSettings(
            self.url, self.bus, self.stream, self.prefix, lease_ttl=LEASE_TTL, worker_id=name
        )
        record = recorder(self.effects, len(self.running), reply=reply)
        worker = Worker(settings, lambda url, s: open_engine(url, s, record), SETTINGS)
        stop = asyncio.Event()
        self.running.append((worker, stop, asyncio.create_task(worker.run(stop))))
        return worker

    async def stop_all(self) -> None:
        for _worker, stop, _task in self.running:
            stop.set()
        await asyncio.gather(*(task for *_, task in self.running), return_exceptions=True)


@pytest.fixture
async def cluster(pg_database_url: str, nats_server_url: str) -> AsyncIterator[Cluster]:
    await prepare(pg_database_url)
    stream, prefix = unique_name("CLUSTER"), unique_name("cluster")
    bus = await connect_bus(nats_server_url)
    await ensure_stream(bus.js, stream=stream, prefix=prefix)
    effects = await psycopg.AsyncConnection.connect(pg_database_url, autocommit=True)
    publisher = JetStreamPublisher(bus.js, stream=stream, prefix=prefix)
    made = Cluster(pg_database_url, nats_server_url, stream, prefix, publisher, effects)
    try:
        yield made
    finally:
        await made.stop_all()
        await effects.close()
        await bus.js.delete_stream(stream)
        await bus.close()


async def test_a_worker_applies_its_partitions_in_order_and_stores_their_offsets(
    cluster: Cluster,
) -> None:
    load = Load("solo", parcels=6, notes=3)
    last_seq: dict[int, int] = {}
    for event in load.events:
        body = json.dumps(event).encode()
        ack = await cluster.publisher.publish(event["event_id"], event["entity"], body)
        last_seq[partition_of(event["entity"])] = ack.seq
    cluster.start("solo")
    await wait_for(lambda: _applied(cluster.url, load), 30, "every event applied")
    await wait_for(lambda: commands_done(cluster.url, load), 15, "every command done")
    await check_exactly_once_in_order(cluster.url, load)
    assert all(len(pids) == 1 for pids in (await notified(cluster.url)).values())

    async def offsets_stored() -> bool:
        rows = {row.partition: row.stream_seq for row in await leases(cluster.url)}
        return all(rows[p] == seq for p, seq in last_seq.items())

    await wait_for(offsets_stored, 5, "each partition's offset at its last message")


async def _applied(url: str, load: Load) -> bool:
    return await applied_count(url, load) == len(load.events)


async def test_with_no_worker_publishes_are_acknowledged_and_the_backlog_drains_in_order(
    cluster: Cluster,
) -> None:
    load = Load("backlog", parcels=8, notes=3)
    assert await publish(cluster.publisher, load.events) == len(load.events)
    shown = await invoke_cli(
        "workers", "--store", cluster.url, "--bus", cluster.bus,
        "--stream", cluster.stream, "--prefix", cluster.prefix, "--json",
    )  # fmt: skip
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.stdout)
    assert report["unowned"] == 256 and report["workers"] == []
    assert sum(row["pending"] for row in report["partitions"]) == len(load.events)
    assert max(row["oldest_age"] or 0 for row in report["partitions"]) > 0
    cluster.start("w1")
    cluster.start("w2")
    await wait_for(lambda: _applied(cluster.url, load), 30, "the backlog drained")
    await check_exactly_once_in_order(cluster.url, load)
    await wait_for(lambda: all_owned(cluster.url, owners=2), 10, "two workers share the partitions")


async def test_a_worker_that_kept_working_past_its_lease_is_fenced_and_steps_down(
    cluster: Cluster,
) -> None:
    first = Load("before", parcels=4, notes=1)
    stalled = cluster.start("stalled")
    await publish(cluster.publisher, first.events)
    await wait_for(lambda: _applied(cluster.url, first), 30, "the first load applied")
    # Its renewals stop (a paused thread, a network partition) but its feeds go on.
    assert stalled.leases is not None
    gate = asyncio.Event()
    renew = stalled.leases.round

    async def stuck(**kwargs: Any) -> Any:
        await gate.wait()
        return await renew(**kwargs)

    stalled.leases.round = stuck  # type: ignore[method-assign]
    cluster.start("taker")

    async def taken() -> bool:
        rows = await leases(cluster.url)
        return all(row.live and row.owner == "taker" for row in rows)

    await wait_for(taken, LEASE_TTL + 5, "the taker owns every partition")
    second = Load("after", parcels=4, notes=1)
    await publish(cluster.publisher, second.events)
    await wait_for(lambda: _applied(cluster.url, second), 30, "the taker applied the second load")
    gate.set()
    await wait_for(_stepped_down(stalled), 10, "the stalled worker stepped down")
    assert isinstance(stalled.last_step_down, LeaseLost)
    assert "not epoch" in str(stalled.last_step_down), "refused by the fence in its commit"
    await check_exactly_once_in_order(cluster.url, first)
    await check_exactly_once_in_order(cluster.url, second)


def _stepped_down(worker: Worker) -> Any:
    async def check() -> bool:
        return worker.stepped_down > 0

    return check


async def test_a_commands_result_event_travels_the_bus_to_its_partitions_owner(
    cluster: Cluster,
) -> None:
    load = Load("reply", parcels=4, notes=0)
    await publish(cluster.publisher, load.events)
    cluster.start("r1", reply=True)
    cluster.start("r2", reply=True)

    async def noted() -> bool:
        async with await psycopg.AsyncConnection.connect(cluster.url) as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM events WHERE type = 'parcel.note' AND entity LIKE %s",
                ("parcel:reply-%",),
            )
            row = await cur.fetchone()
        return row is not None and row[0] == load.parcels

    await wait_for(noted, 30, "every parcel noted by its command's result")
    await wait_for(lambda: commands_done(cluster.url, load), 15, "every command done")
    store = await PostgresStore.open_readonly(cluster.url)
    try:
        for entity in load.entities():
            state = await store.entity(entity)
            assert state is not None and state.data["notes"] == ["buyer notified"]
    finally:
        await store.close()
