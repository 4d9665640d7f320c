"""What the cluster tests share: a load of parcel events, publishing it as a
receiver does, waiting on the lease table, and the checks of ENG-11."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from engine.cluster.jetstream import JetStreamPublisher, connect_bus, ensure_stream
from engine.cluster.leases import ensure_tables
from engine.cluster.report import LeaseRow, lease_table
from engine.store.postgres import PostgresStore
from engine.store.rows import dumps
from engine.testing.services import unique_name

LEASE_TTL = 2.0


@dataclass
class Load:
    """Parcels, each packed, noted ``notes`` times and shipped (which asks
    for one ``notify_buyer`` command): its events in the order published."""

    run: str
    parcels: int
    notes: int
    events: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for step in range(self.notes + 2):
            for index in range(self.parcels):
                entity = f"parcel:{self.run}-{index}"
                if step == 0:
                    kind, payload = "parcel.pack", {"weight_kg": 1.0}
                elif step <= self.notes:
                    kind, payload = "parcel.note", {"text": f"n{step}"}
                else:
                    kind, payload = "parcel.ship", {"tracking_number": f"T{index}"}
                self.events.append(
                    {
                        "event_id": f"{self.run}-{index}-{step}",
                        "type": kind,
                        "entity": entity,
                        "source": "test",
                        "payload": payload,
                    }
                )

    def entities(self) -> list[str]:
        return [f"parcel:{self.run}-{index}" for index in range(self.parcels)]


async def publish(
    publisher: JetStreamPublisher,
    events: list[dict[str, Any]],
    *,
    pause: float = 0.0,
    on_ack: Callable[[int], Awaitable[None]] | None = None,
) -> int:
    """Publish ``events`` in order as a receiver does; how many were acknowledged."""
    acked = 0
    for event in events:
        await publisher.publish(event["event_id"], event["entity"], dumps(event).encode())
        acked += 1
        if on_ack is not None:
            await on_ack(acked)
        if pause:
            await asyncio.sleep(pause)
    return acked


async def prepare(url: str) -> None:
    """The engine's schema, the cluster's tables and the handler's record."""
    store = await PostgresStore.open(url)
    await store.close()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await ensure_tables(conn)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS notified (key text PRIMARY KEY, parcel text, pids int[])"
        )


async def cluster_bus(url: str, bus: str, name: str) -> tuple[str, str]:
    """The cluster's tables in ``url`` and a new stream on ``bus``, named after
    ``name``: its (stream, prefix)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await ensure_tables(conn)
    connection = await connect_bus(bus)
    try:
        stream, prefix = unique_name(name.upper()), unique_name(name.lower())
        await ensure_stream(connection.js, stream=stream, prefix=prefix)
    finally:
        await connection.close()
    return stream, prefix


async def leases(url: str) -> list[LeaseRow]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        return await lease_table(conn)


async def wait_for(
    check: Callable[[], Awaitable[bool]], timeout: float, what: str, step: float = 0.1
) -> float:
    """Poll ``check`` until it holds; the seconds it took (AssertionError past ``timeout``)."""
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(step)
    return time.monotonic() - start


async def all_owned(url: str, owners: int | None = None) -> bool:
    rows = await leases(url)
    live = {row.owner for row in rows if row.live}
    return all(row.live for row in rows) and (owners is None or len(live) == owners)


async def applied_count(url: str, load: Load) -> int:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM events WHERE event_id LIKE %s", (f"{load.run}-%",)
        )
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def commands_done(url: str, load: Load) -> bool:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'done'), count(*) FROM outbox"
            " WHERE entity LIKE %s",
            (f"parcel:{load.run}-%",),
        )
        row = await cur.fetchone()
    return row is not None and row[0] == row[1] == load.parcels


async def check_exactly_once_in_order(url: str, load: Load, published: int | None = None) -> None:
    """Every acknowledged event applied once, each entity's in the order
    published, one command per parcel under one key, carried out once."""
    events = load.events if published is None else load.events[:published]
    store = await PostgresStore.open_readonly(url)
    try:
        for entity in load.entities():
            mine = [e["event_id"] for e in events if e["entity"] == entity]
            history = await store.history(entity)
            assert [row["event_id"] for row in history] == mine, entity
            assert all(row["outcome"] != "duplicate" for row in history)
            state = await store.entity(entity)
            notes = [
                e["payload"]["text"]
                for e in events
                if e["entity"] == entity and "text" in e["payload"]
            ]
            assert state is not None and state.data.get("notes", []) == notes, entity
        commands = await store.list_commands()
    finally:
        await store.close()
    keys = [c.idempotency_key for c in commands if c.entity.startswith(f"parcel:{load.run}-")]
    assert len(keys) == len(set(keys))


async def notified(url: str) -> dict[str, list[int]]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute("SELECT key, pids FROM notified")
        return {key: list(pids) for key, pids in await cur.fetchall()}
