"""The committer: one transaction for all that is pending, acknowledgements
only once it is durable, and every waiting publisher refused when it fails."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence

import pytest

from engine.bus.cache import EntityCache
from engine.bus.committer import Committer, Pending, as_store_error
from engine.bus.duplicates import DuplicateGuard
from engine.bus.receipts import Group, Receipt
from engine.step import EntityState
from engine.store.errors import StoreError, WriteNotAcknowledged
from engine.store.sqlite import Batch, DeadLetterRow, DuplicateRow, EventRow


class GatedStore:
    """Each commit waits for the test to open the gate; records what it got."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.batches: list[list[str]] = []
        self.fail_with: BaseException | None = None

    async def commit(self, batch: Batch, timers_fired: Sequence[str] = ()) -> None:
        await self.gate.wait()
        self.gate.clear()
        if self.fail_with is not None:
            raise self.fail_with
        for seq, row in enumerate(batch.events, start=sum(map(len, self.batches)) + 1):
            row.seq = seq
        self.batches.append([r.event_id for r in batch.events])


def event_row(event_id: str, entity: str = "parcel:1") -> EventRow:
    after = EntityState(entity, "parcel", "packed", {}, 1)
    return EventRow(
        event_id,
        "parcel.pack",
        "t",
        entity,
        "parcel",
        None,
        1.0,
        "{}",
        "transitioned",
        "created",
        "packed",
        None,
        after,
    )


def pending(
    cache: EntityCache, guard: DuplicateGuard, *ids: str
) -> tuple[Pending, list[asyncio.Future[Receipt]]]:
    """A stepped batch of ``ids`` (claimed, their entities pinned) and its futures."""
    loop = asyncio.get_running_loop()
    rows = [event_row(event_id, f"parcel:{event_id}") for event_id in ids]
    futures: list[asyncio.Future[Receipt]] = [loop.create_future() for _ in rows]
    for row in rows:
        assert guard.claim(row.event_id, set())
        cache.stepped(row.entity, row.entity_after)
    return (
        Pending(
            Batch(events=rows),
            list(zip(futures, rows, strict=True)),
            [r.entity for r in rows],
            cache.epoch,
        ),
        futures,
    )


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def make(slots: int = 8) -> tuple[GatedStore, EntityCache, DuplicateGuard, Committer]:
    store, cache, guard = GatedStore(), EntityCache(100), DuplicateGuard()
    committer = Committer(store, cache, guard, slots)
    committer.start()
    return store, cache, guard, committer


async def test_batches_waiting_for_a_commit_share_the_next_one():
    """While one commit is on disk, what workers hand over waits, and the
    next commit takes all of it: a slow disk costs per commit, not per batch."""
    store, cache, guard, committer = make()
    first, first_futures = pending(cache, guard, "a")
    committer.hand_over(first)
    await settle()
    second, second_futures = pending(cache, guard, "b", "c")
    third, third_futures = pending(cache, guard, "d")
    committer.hand_over(second)
    committer.hand_over(third)
    await settle()
    assert not any(f.done() for f in first_futures), "not acknowledged before it is durable"
    store.gate.set()
    await settle()
    assert [f.result().seq for f in first_futures] == [1]
    store.gate.set()
    await settle()
    assert store.batches == [["a"], ["b", "c", "d"]]
    receipts = [f.result() for f in second_futures + third_futures]
    assert [(r.event_id, r.outcome, r.seq) for r in receipts] == [
        ("b", "transitioned", 2),
        ("c", "transitioned", 3),
        ("d", "transitioned", 4),
    ]
    assert cache.pinned() == 0, "committed states may now be evicted"
    await committer.stop()


async def test_a_failed_commit_refuses_every_waiting_publisher_and_forgets_the_cache():
    store, cache, guard, committer = make()
    store.fail_with = sqlite3.OperationalError("disk I/O error")
    first, first_futures = pending(cache, guard, "a")
    committer.hand_over(first)
    await settle()
    # Stepped on the cache the failing commit will make stale.
    later, later_futures = pending(cache, guard, "b")
    committer.hand_over(later)
    store.gate.set()
    await settle()
    error = first_futures[0].exception()
    assert isinstance(error, WriteNotAcknowledged)
    assert isinstance(error.__cause__, sqlite3.OperationalError)
    stale = later_futures[0].exception()
    assert isinstance(stale, WriteNotAcknowledged) and "publish again" in str(stale)
    assert store.batches == [], "the stale batch was not written"
    assert cache.epoch == 1 and len(cache) == 0
    assert guard.claim("a", set()) and guard.claim("b", set()), "the ids may be sent again"
    await committer.stop()


async def test_a_group_hears_once_all_its_events_are_committed():
    store, _cache, guard, committer = make()
    loop = asyncio.get_running_loop()
    group = Group(loop.create_future(), 2)
    rows = [event_row("a"), DuplicateRow("a", "parcel:2", 1.0)]
    guard.claim("a", set())
    committer.hand_over(
        Pending(Batch(events=[rows[0]], duplicates=[rows[1]]), [(group, r) for r in rows], [], 0)
    )
    store.gate.set()
    await settle()
    assert [(r.event_id, r.outcome) for r in group.future.result()] == [
        ("a", "transitioned"),
        ("a", "duplicate"),
    ]
    await committer.stop()


async def test_a_dead_letter_is_acknowledged_as_one():
    store, _cache, _guard, committer = make()
    future: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
    row = DeadLetterRow(1.0, "shoplazza", None, "{", "not JSON")
    committer.hand_over(Pending(Batch(dead_letters=[row]), [(future, row)], [], 0))
    store.gate.set()
    await settle()
    assert future.result() == Receipt(None, "dead_letter", None, reason="not JSON")
    await committer.stop()


async def test_a_worker_waits_for_a_slot_until_a_commit_frees_one():
    store, cache, guard, committer = make(slots=1)
    await committer.reserve()
    first, _ = pending(cache, guard, "a")
    committer.hand_over(first)
    waiting = asyncio.create_task(committer.reserve())
    await settle()
    assert not waiting.done(), "backpressure: every slot holds an uncommitted batch"
    store.gate.set()
    await settle()
    assert waiting.done()
    committer.unreserve()
    await committer.stop()


async def test_stop_commits_what_was_handed_over():
    store, cache, guard, committer = make()
    batch, futures = pending(cache, guard, "a")
    committer.hand_over(batch)
    store.gate.set()
    await committer.stop()
    assert futures[0].result().outcome == "transitioned"


async def test_resync_refuses_batches_stepped_before_it():
    store, cache, guard, committer = make()
    store.gate.set()
    batch, futures = pending(cache, guard, "a")
    committer.resync()
    committer.hand_over(batch)
    await settle()
    assert isinstance(futures[0].exception(), WriteNotAcknowledged)
    assert store.batches == []
    await committer.stop()


@pytest.mark.parametrize(
    "err", [sqlite3.OperationalError("database is locked"), OSError(28, "No space left")]
)
def test_a_database_failure_becomes_a_store_error(err):
    wrapped = as_store_error(err)
    assert isinstance(wrapped, StoreError) and wrapped.__cause__ is err
    assert type(err).__name__ in str(wrapped)


def test_a_bug_is_not_dressed_as_a_store_error():
    bug = KeyError("x")
    assert as_store_error(bug) is bug
    already = WriteNotAcknowledged("x")
    assert as_store_error(already) is already
