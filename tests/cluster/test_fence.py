"""The fence against the real PostgreSQL: a commit for a partition its
worker no longer holds (at the epoch it acquired) rolls back, and a commit
that passes moves the partition's consumed offset with it (ENG-11)."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.cluster.fence import LeaseLost, OffsetTracker, make_fence, save_offsets
from engine.cluster.leases import Leases
from engine.cluster.partitions import partition_of
from engine.store.postgres import PostgresStore
from engine.store.postgres_commit import CommitGuard, refusal_of, run_transaction
from engine.store.rows import Batch, DeadLetterRow, DuplicateRow, EventRow
from engine.testing.store_builders import batch, command, event_row

pytestmark = pytest.mark.services

ENTITY = "parcel:1"
PARTITION = partition_of(ENTITY)


def _event(event_id: str, entity: str = ENTITY) -> EventRow:
    return EventRow(
        event_id,
        "parcel.pack",
        "test",
        entity,
        "parcel",
        None,
        1.0,
        "{}",
        "applied",
        None,
        None,
        None,
    )


async def _offset(conn: psycopg.AsyncConnection[Any], partition: int) -> int | None:
    cur = await conn.execute(
        "SELECT stream_seq FROM partition_offsets WHERE partition = %s", (partition,)
    )
    row = await cur.fetchone()
    return None if row is None else int(row[0])


async def _commit(url: str, fence: CommitGuard, batch: Batch) -> None:
    """What the store does with the guard (the batch's own rows left out): its
    statements in one transaction, their refusal as the guard's exception."""
    statements = fence.statements(batch)

    def run() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            run_transaction(conn, statements)

    try:
        await asyncio.to_thread(run)
    except psycopg.Error as error:
        raise refusal_of([fence], error) or error from error


async def test_the_holder_commits_and_its_offset_moves_with_the_batch(pg_database_url: str) -> None:
    a = await Leases.connect(pg_database_url, "a", ttl=30.0)
    conn = await psycopg.AsyncConnection.connect(pg_database_url)
    try:
        await a.round()
        tracker = OffsetTracker()
        tracker.start(PARTITION, 0)
        tracker.handed(PARTITION, 1, "e1")
        tracker.handed(PARTITION, 2, "e2")
        tracker.handed(PARTITION, 3, "e3")
        fence = make_fence("a", lambda: a.held, tracker)
        await _commit(pg_database_url, fence, Batch(events=[_event("e1")], duplicates=[]))
        assert await _offset(conn, PARTITION) == 1
        # e3 in the batch, e2 still in flight: the offset may not pass e2.
        await _commit(pg_database_url, fence, Batch(events=[_event("e3")]))
        assert await _offset(conn, PARTITION) == 1
        tracker.done(PARTITION, 1)
        tracker.done(PARTITION, 3)
        await _commit(pg_database_url, fence, Batch(duplicates=[DuplicateRow("e2", ENTITY, 1.0)]))
        assert await _offset(conn, PARTITION) == 3
    finally:
        await conn.close()
        await a.close()


async def test_a_worker_whose_partition_was_taken_cannot_commit(pg_database_url: str) -> None:
    a = await Leases.connect(pg_database_url, "a", ttl=30.0)
    b = await Leases.connect(pg_database_url, "b", ttl=30.0)
    conn = await psycopg.AsyncConnection.connect(pg_database_url)
    try:
        await a.round()
        stale = dict(a.held)  # what a believes while it is paused
        async with conn.transaction():
            await conn.execute(
                "UPDATE partition_leases SET expires_at = now() - interval '1 second'"
            )
            await conn.execute("UPDATE cluster_workers SET expires_at = now()")
        taken = await b.round()
        assert taken.acquired[PARTITION] == stale[PARTITION] + 1
        tracker = OffsetTracker()
        tracker.start(PARTITION, 0)
        tracker.handed(PARTITION, 5, "e5")
        fence = make_fence("a", lambda: stale, tracker)
        with pytest.raises(LeaseLost) as lost:
            await _commit(pg_database_url, fence, Batch(events=[_event("e5")]))
        assert PARTITION in lost.value.partitions
        assert "epoch" in str(lost.value)
        assert await _offset(conn, PARTITION) is None, "nothing of the commit is written"
        await save_offsets(conn, "a", stale, tracker)
        assert await _offset(conn, PARTITION) is None, "nor by the idle flush"
    finally:
        await conn.close()
        await a.close()
        await b.close()


async def test_an_expired_lease_fails_even_if_nobody_took_it(pg_database_url: str) -> None:
    a = await Leases.connect(pg_database_url, "a", ttl=30.0)
    conn = await psycopg.AsyncConnection.connect(pg_database_url)
    try:
        await a.round()
        async with conn.transaction():
            await conn.execute(
                "UPDATE partition_leases SET expires_at = now() - interval '1 second'"
            )
        fence = make_fence("a", lambda: a.held)
        with pytest.raises(LeaseLost, match="expired"):
            await _commit(pg_database_url, fence, Batch(events=[_event("e1")]))
        dead = DeadLetterRow(1.0, "bus", None, "not json", "unreadable")
        await _commit(pg_database_url, fence, Batch(dead_letters=[dead]))  # no partition to fence
    finally:
        await conn.close()
        await a.close()


async def test_a_fenced_store_rolls_back_the_whole_commit_and_raises_lease_lost(
    pg_database_url: str,
) -> None:
    """The fence's check raises inside the commit's pipeline, after which the
    batch's rows were already sent: none of them, nor the offset, is kept,
    the caller gets `LeaseLost` (not "try again"), and the store goes on."""
    store = await PostgresStore.open(pg_database_url)
    a = await Leases.connect(pg_database_url, "a", ttl=30.0)
    try:
        await a.round()
        stale = {PARTITION: a.held[PARTITION] - 1}  # an epoch another worker has moved past
        tracker = OffsetTracker()
        tracker.start(PARTITION, 0)
        tracker.handed(PARTITION, 7, "e7")
        store.commit_guards.append(make_fence("a", lambda: stale, tracker))
        row = event_row(ENTITY, "e7", commands=[command("notify-7")])
        with pytest.raises(LeaseLost) as lost:
            await store.commit(batch([row]))
        assert lost.value.partitions == {
            PARTITION: f"owner a at epoch {a.held[PARTITION]}, not epoch {stale[PARTITION]}"
        }
        assert row.seq == 0, "a refused batch has no sequence numbers"
        assert await store.known_event_ids(["e7"]) == set()
        assert await store.entity(ENTITY) is None and await store.list_commands() == []
        async with await psycopg.AsyncConnection.connect(pg_database_url) as conn:
            assert await _offset(conn, PARTITION) is None
        stale[PARTITION] += 1  # the lease as held: the same store commits again
        await store.commit(batch([event_row(ENTITY, "e7")]))
        assert await store.known_event_ids(["e7"]) == {"e7"}
    finally:
        await a.close()
        await store.close()


@given(
    order=st.permutations(list(range(1, 9))),
    in_batch=st.sets(st.integers(1, 8)),
)
def test_the_watermark_never_passes_a_message_in_flight(
    order: list[int], in_batch: set[int]
) -> None:
    """Whatever order commits resolve in, the offset is the end of the
    committed prefix: a crash redelivers only what the log's dedupe knows."""
    tracker = OffsetTracker()
    tracker.start(0, 0)
    for seq in range(1, 9):
        tracker.handed(0, seq, f"e{seq}")
    resolved: set[int] = set()
    for seq in order:
        tracker.done(0, seq)
        resolved.add(seq)
        mark = tracker.watermark(0, {f"e{s}" for s in in_batch})
        covered = resolved | in_batch
        expected = 0
        while expected + 1 in covered:
            expected += 1
        assert mark == expected
        assert tracker.committed[0] <= mark
