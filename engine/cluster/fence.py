"""The fence: no commit lands for a partition its worker no longer holds.

A worker that stalled (a long GC pause, SIGSTOP, a slow disk) may wake up
after its lease ran out and another worker took the partition at a higher
epoch. Its in-memory state is stale from then on; what stops it writing is
the guard `make_fence` builds, whose statement the PostgreSQL store sends
first in every commit's transaction. A partition this worker does not believe
it holds refuses the commit at once; for the others the statement
(``channelsync_fence``, engine.cluster.leases) reads each lease row FOR SHARE
and compares owner, epoch and expiry (the database's clock) with what this
worker acquired; any mismatch raises in the database, the whole commit rolls
back and the store raises `LeaseLost` (`lease_lost`). The check sends no
answer the commit waits for: the transaction goes in one round trip
(engine.store.postgres_commit). FOR SHARE keeps the row from being taken over
until this transaction ends, so a takeover sees this commit, and the offset
it wrote, or neither.

In the same transaction the guard moves each partition's consumed stream
sequence (`OffsetTracker`) forward, so state and offset are durable together
and a new owner resumes exactly after the last committed message.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from typing import Any

import psycopg

from engine.cluster.leases import LEASE_LOST
from engine.cluster.partitions import partition_of
from engine.store.errors import StoreError
from engine.store.postgres_commit import CommitGuard, Statement
from engine.store.rows import Batch, loads

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

    def statements(batch: Batch) -> list[Statement]:
        touched = batch_partitions(batch)
        if not touched:
            return []
        mine = held()
        lost = {p: "not held by this worker" for p in touched if p not in mine}
        if lost:
            raise LeaseLost(lost)
        parts = sorted(touched)
        fence = (_CHECK, (worker_id, parts, [mine[p] for p in parts]))
        if offsets is None:
            return [fence]
        return [fence, *_advance_offsets(batch, parts, offsets)]

    return CommitGuard(statements, lease_lost)


_CHECK = "SELECT channelsync_fence(%s, %s::integer[], %s::bigint[])"


def lease_lost(error: psycopg.Error) -> LeaseLost | None:
    """The fence's refusal raised in the database, as `LeaseLost`."""
    if error.sqlstate != LEASE_LOST:
        return None
    detail = error.diag.message_detail or "{}"
    return LeaseLost({int(p): str(why) for p, why in loads(detail).items()})


def _advance_offsets(batch: Batch, parts: list[int], offsets: OffsetTracker) -> list[Statement]:
    ids = {row.event_id for row in batch.events}
    ids.update(row.event_id for row in batch.duplicates)
    marks = [(p, mark) for p in parts if (mark := offsets.watermark(p, ids)) > 0]
    if not marks:
        return []
    return [
        (
            "INSERT INTO partition_offsets (partition, stream_seq)"
            f" SELECT * FROM unnest(%s::integer[], %s::bigint[]) {_KEEP_GREATEST}",
            ([p for p, _ in marks], [m for _, m in marks]),
        )
    ]


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
    "LeaseLost",
    "OffsetTracker",
    "batch_partitions",
    "lease_lost",
    "make_fence",
    "save_offsets",
]
