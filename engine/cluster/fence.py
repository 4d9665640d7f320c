"""The fence: no commit lands for a partition its worker no longer holds.

A worker that stalled (a long GC pause, SIGSTOP, a slow disk) may wake up
after its lease ran out and another worker took the partition at a higher
epoch. Its in-memory state is stale from then on; what stops it writing is
the guard `make_fence` builds, run by the PostgreSQL store inside every
commit's transaction before the batch's rows are written. For each partition
the batch touches it reads the lease row FOR SHARE and compares owner, epoch
and expiry (the database's clock) with what this worker acquired; any
mismatch raises `LeaseLost` and the whole commit rolls back. FOR SHARE keeps
the row from being taken over until this transaction ends, so a takeover sees
this commit, and the offset it wrote, or neither.

In the same transaction the guard moves each partition's consumed stream
sequence (`OffsetTracker`) forward, so state and offset are durable together
and a new owner resumes exactly after the last committed message.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

import psycopg

from engine.cluster.partitions import partition_of
from engine.store.errors import StoreError
from engine.store.rows import Batch

# The store's guard type (engine.store.postgres.CommitGuard), spelled out so
# this module does not import the store.
CommitGuard = Callable[[psycopg.AsyncConnection[Any], Batch], Awaitable[None]]


# An offset only moves forward: a late writer never takes it back.
_KEEP_GREATEST = (
    "ON CONFLICT (partition) DO UPDATE SET"
    " stream_seq = GREATEST(partition_offsets.stream_seq, EXCLUDED.stream_seq)"
)


class LeaseLost(StoreError):
    """This worker no longer holds a partition it tried to commit for."""

    def __init__(self, partitions: Mapping[int, str]) -> None:
        self.partitions = dict(partitions)
        detail = ", ".join(f"{p}: {why}" for p, why in sorted(self.partitions.items()))
        super().__init__(f"lease lost for partition(s) {detail}")


def batch_partitions(batch: Batch) -> set[int]:
    """The partitions of every entity the batch writes for."""
    entities = {row.entity for row in batch.events}
    entities.update(row.entity for row in batch.duplicates)
    entities.update(row.entity for row in batch.dead_letters if row.entity)
    return {partition_of(entity) for entity in entities}


class OffsetTracker:
    """The stream messages of each owned partition handed to the engine and
    not yet known committed, in stream order.

    `watermark` gives the highest sequence below which every message is
    committed, counting those a batch being committed carries; it never
    passes a message still in flight, so a crash at any point redelivers
    only messages whose events the log's dedupe recognises."""

    def __init__(self) -> None:
        self._flight: dict[int, OrderedDict[int, str | None]] = {}
        self._done: dict[int, set[int]] = {}
        self.committed: dict[int, int] = {}

    def start(self, partition: int, after: int) -> None:
        """Track ``partition`` from its stored offset ``after``."""
        self._flight[partition] = OrderedDict()
        self._done[partition] = set()
        self.committed[partition] = after

    def stop(self, partition: int) -> None:
        self._flight.pop(partition, None)
        self._done.pop(partition, None)
        self.committed.pop(partition, None)

    def handed(self, partition: int, seq: int, event_id: str | None) -> None:
        """Message ``seq`` (carrying ``event_id``, None when unreadable) went to the engine."""
        self._flight[partition][seq] = event_id

    def done(self, partition: int, seq: int) -> None:
        """Message ``seq``'s outcome is committed (its publish future resolved)."""
        flight = self._flight.get(partition)
        if flight is None or seq not in flight:
            return
        done = self._done[partition]
        done.add(seq)
        while flight:
            first = next(iter(flight))
            if first not in done:
                break
            flight.popitem(last=False)
            done.discard(first)
            self.committed[partition] = first

    def watermark(self, partition: int, in_batch: Collection[str]) -> int:
        """The highest committed-prefix sequence once ``in_batch``'s event ids commit."""
        mark = self.committed.get(partition, 0)
        done = self._done.get(partition, set())
        for seq, event_id in self._flight.get(partition, {}).items():
            if seq in done or (event_id is not None and event_id in in_batch):
                mark = seq
            else:
                break
        return mark

    def partitions(self) -> list[int]:
        return list(self._flight)


def make_fence(
    worker_id: str, held: Callable[[], Mapping[int, int]], offsets: OffsetTracker | None = None
) -> CommitGuard:
    """The commit guard of worker ``worker_id``: ``held()`` gives the
    partitions it believes it holds, each with the epoch it acquired."""

    async def fence(conn: psycopg.AsyncConnection[Any], batch: Batch) -> None:
        touched = batch_partitions(batch)
        if not touched:
            return
        mine = held()
        lost = {p: "not held by this worker" for p in touched if p not in mine}
        cur = await conn.execute(
            "SELECT partition, owner, epoch, expires_at > clock_timestamp()"
            " FROM partition_leases WHERE partition = ANY(%s) ORDER BY partition FOR SHARE",
            (sorted(touched),),
        )
        for partition, owner, epoch, live in await cur.fetchall():
            if partition in lost:
                continue
            if owner != worker_id or epoch != mine[partition]:
                lost[partition] = f"owner {owner} at epoch {epoch}, not epoch {mine[partition]}"
            elif not live:
                lost[partition] = f"lease at epoch {epoch} expired"
        if lost:
            raise LeaseLost(lost)
        if offsets is not None:
            await _advance_offsets(conn, batch, touched, offsets)

    return fence


async def _advance_offsets(
    conn: psycopg.AsyncConnection[Any], batch: Batch, touched: set[int], offsets: OffsetTracker
) -> None:
    ids = {row.event_id for row in batch.events}
    ids.update(row.event_id for row in batch.duplicates)
    marks = [
        (partition, mark)
        for partition in sorted(touched)
        if (mark := offsets.watermark(partition, ids)) > 0
    ]
    if marks:
        await conn.execute(
            "INSERT INTO partition_offsets (partition, stream_seq)"
            f" SELECT * FROM unnest(%s::integer[], %s::bigint[]) {_KEEP_GREATEST}",
            ([p for p, _ in marks], [m for _, m in marks]),
        )


async def save_offsets(
    conn: psycopg.AsyncConnection[Any],
    worker_id: str,
    held: Mapping[int, int],
    offsets: OffsetTracker,
) -> None:
    """Store the committed offsets of the partitions still held at their
    epochs (the fence's check, for a worker gone idle after its last commit:
    the commit's own watermark could not count messages resolved after it)."""
    marks = {p: offsets.committed[p] for p in offsets.partitions() if p in held}
    if not marks:
        return
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO partition_offsets (partition, stream_seq)"
            " SELECT m.partition, m.seq FROM unnest(%s::integer[], %s::bigint[], %s::bigint[])"
            " AS m(partition, seq, epoch) JOIN partition_leases l ON l.partition = m.partition"
            " AND l.owner = %s AND l.epoch = m.epoch AND l.expires_at > clock_timestamp()"
            # In partition order, as the commit's own offsets: two orders of
            # the same rows deadlock (seen in a 4-worker benchmark run).
            f" ORDER BY m.partition {_KEEP_GREATEST}",
            (list(marks), list(marks.values()), [held[p] for p in marks], worker_id),
        )


__all__ = [
    "CommitGuard",
    "LeaseLost",
    "OffsetTracker",
    "batch_partitions",
    "make_fence",
    "save_offsets",
]
