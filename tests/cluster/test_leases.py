"""Partition leases against the real PostgreSQL: acquire, renew, expiry,
release and rebalance as workers join, leave and die (ENG-11)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.cluster.leases import Leases, ensure_tables, fair_share
from engine.cluster.partitions import PARTITIONS
from engine.cluster.report import lease_table

pytestmark = pytest.mark.services


async def _expire(conn: psycopg.AsyncConnection[Any], worker: str) -> None:
    """What a dead worker looks like once its lease time has passed."""
    async with conn.transaction():
        await conn.execute(
            "UPDATE partition_leases SET expires_at = now() - interval '1 second' WHERE owner = %s",
            (worker,),
        )
        await conn.execute(
            "UPDATE cluster_workers SET expires_at = now() - interval '1 second'"
            " WHERE worker_id = %s",
            (worker,),
        )


@pytest.fixture
async def admin(pg_database_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    conn = await psycopg.AsyncConnection.connect(pg_database_url)
    await ensure_tables(conn)
    yield conn
    await conn.close()


@pytest.fixture
async def workers(pg_database_url: str) -> AsyncIterator[Callable[..., Any]]:
    opened: list[Leases] = []

    async def make(name: str, ttl: float = 30.0) -> Leases:
        leases = await Leases.connect(pg_database_url, name, ttl=ttl)
        opened.append(leases)
        return leases

    yield make
    for leases in opened:
        await leases.close()


async def test_a_lone_worker_takes_every_partition_at_epoch_one(workers: Any) -> None:
    a = await workers("a")
    plan = await a.round()
    assert len(plan.held) == PARTITIONS
    assert set(plan.acquired.values()) == {1}
    again = await a.round()
    assert again.held == plan.held and not again.acquired and not again.lost


async def test_a_joining_worker_gets_its_share_once_the_owner_releases(workers: Any) -> None:
    a, b = await workers("a"), await workers("b")
    await a.round()
    first = await b.round()
    assert not first.held, "a live lease is never taken from its owner"
    plan = await a.round()
    assert len(plan.release) == PARTITIONS - fair_share(PARTITIONS, 2)
    await a.release(plan.release)
    taken = await b.round()
    assert set(taken.acquired) == set(plan.release)
    assert set(taken.acquired.values()) == {2}, "each acquisition bumps the epoch"


async def test_a_dead_workers_partitions_go_to_the_living_at_a_higher_epoch(
    workers: Any, admin: psycopg.AsyncConnection[Any]
) -> None:
    a, b = await workers("a"), await workers("b")
    await a.round()
    await b.round()
    await a.release((await a.round()).release)
    b_held = dict((await b.round()).held)
    await _expire(admin, "b")
    plan = await a.round()
    assert set(plan.acquired) == set(b_held)
    assert all(plan.acquired[p] == b_held[p] + 1 for p in b_held)
    back = await b.round()
    assert set(back.lost) == set(b_held) and not back.held


async def test_lease_table_shows_owner_epoch_and_offset(
    workers: Any, admin: psycopg.AsyncConnection[Any]
) -> None:
    a = await workers("a", ttl=5.0)
    await a.round()
    async with admin.transaction():
        await admin.execute("INSERT INTO partition_offsets VALUES (7, 42)")
    rows = await lease_table(admin)
    assert len(rows) == PARTITIONS
    assert rows[7].owner == "a" and rows[7].epoch == 1 and rows[7].stream_seq == 42
    assert rows[7].live and rows[7].expires_in is not None and 0 < rows[7].expires_in <= 5.0


STEPS = st.lists(
    st.tuples(st.sampled_from(["round", "leave", "die"]), st.integers(0, 3)),
    min_size=1,
    max_size=14,
)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=STEPS)
async def test_joins_leaves_and_deaths_never_give_a_partition_two_owners(
    pg_database_url: str, steps: list[tuple[str, int]]
) -> None:
    """After any sequence of rounds, clean leaves and deaths: no partition is
    believed held at its current epoch by two workers, epochs never go back,
    and once the living have settled every partition is owned, fairly."""
    admin = await psycopg.AsyncConnection.connect(pg_database_url, autocommit=True)
    await ensure_tables(admin)
    await admin.execute("TRUNCATE cluster_workers, partition_offsets")
    await admin.execute("UPDATE partition_leases SET owner = NULL, expires_at = '-infinity'")
    names = [f"w{i}" for i in range(4)]
    pool = {name: await Leases.connect(pg_database_url, name, ttl=30.0) for name in names}
    live: set[str] = set()
    epochs = {p: 0 for p in range(PARTITIONS)}
    try:
        for action, index in steps:
            worker = pool[names[index]]
            if action == "round":
                plan = await worker.round()
                await worker.release(plan.release)
                live.add(worker.worker_id)
            elif action == "leave":
                await worker.leave()
                live.discard(worker.worker_id)
            else:
                await _expire(admin, worker.worker_id)
                live.discard(worker.worker_id)
            rows = await lease_table(admin)
            for row in rows:
                assert row.epoch >= epochs[row.partition], "an epoch went back"
                epochs[row.partition] = row.epoch
                believers = [w for w in pool.values() if w.held.get(row.partition) == row.epoch]
                assert len(believers) <= 1, f"partition {row.partition}: {believers}"
        for _ in range(3):  # join, release, take up what was released
            for name in sorted(live):
                plan = await pool[name].round()
                await pool[name].release(plan.release)
        if live:
            rows = await lease_table(admin)
            assert all(row.live and row.owner in live for row in rows)
            share = fair_share(PARTITIONS, len(live))
            counts = [sum(1 for row in rows if row.owner == name) for name in live]
            assert max(counts) <= share
    finally:
        for worker in pool.values():
            await worker.close()
        await admin.close()
