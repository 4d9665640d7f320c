"""The duplicate guard (ENG-2): an event id is applied once, across
partitions, in one batch, whatever the order and the timing of reads and
commits."""

from __future__ import annotations

import asyncio
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import ChartSet
from engine.bus import EventBus
from engine.bus.duplicates import DuplicateGuard
from engine.bus.routing import PartitionRouter
from engine.sample import chart_package
from tests.unit.bus_memory_store import MemoryStore

CHARTS = ChartSet.load([chart_package()])
IDS = st.sampled_from([f"id-{n}" for n in range(6)])
BATCHES = st.lists(st.lists(IDS, min_size=1, max_size=5), min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(BATCHES, st.data())
def test_eng2_an_id_is_committed_once_however_reads_and_commits_interleave(batches, data):
    """ENG-2: workers read the stored ids (at any moment between starting and
    finishing their read), claim, and hand over; commits land in between and
    some fail. For any interleaving, no id is ever committed twice, and with
    no failure every id sent is committed."""
    guard = DuplicateGuard()
    durable: set[str] = set()
    stage = [0] * len(batches)  # 0 to start, 1 to read, 2 to finish, 3 done
    tickets: dict[int, int] = {}
    seen: dict[int, set[str]] = {}
    pending: list[list[str]] = []
    failed = False
    while True:
        moves = [("worker", i) for i, at in enumerate(stage) if at < 3]
        moves += [("commit", 0)] if pending else []
        if not moves:
            break
        move, index = data.draw(st.sampled_from(moves))
        if move == "commit":
            ids = [event_id for batch in pending for event_id in batch]
            pending.clear()
            if data.draw(st.booleans(), label="fails"):
                failed = True
                guard.release(ids)
                continue
            assert not durable & set(ids) and len(set(ids)) == len(ids), ids
            durable |= set(ids)
            guard.committed(ids)
        elif stage[index] == 0:
            tickets[index] = guard.start_read()
        elif stage[index] == 1:
            seen[index] = set(durable)  # the store as this worker's read sees it
        else:
            known = seen[index] | guard.finish_read(tickets[index])
            pending.append([e for e in batches[index] if guard.claim(e, known)])
        if move == "worker":
            stage[index] += 1
    if not failed:
        assert durable == {event_id for batch in batches for event_id in batch}


def test_the_same_id_twice_in_one_batch_is_applied_once():
    guard = DuplicateGuard()
    assert [guard.claim(e, set()) for e in ("a", "b", "a")] == [True, True, False]


def test_a_released_id_may_come_again_and_a_committed_one_may_not():
    guard = DuplicateGuard()
    assert guard.claim("a", set()) and guard.claim("b", set())
    guard.release(["a"])
    guard.committed(["b"])
    assert guard.claim("a", set()), "its commit failed: a retry is applied"
    assert guard.claim("b", set()), "committed: from now on the store answers for it"
    assert not guard.claim("b", {"b"})


def _spread_over_partitions(n: int) -> list[str]:
    """``n`` parcel keys that land on different partitions of two."""
    router = PartitionRouter(2)
    keys = [f"parcel:{i}" for i in range(40)]
    return [
        next(k for k in keys if router.partition_of(k) == 0),
        next(k for k in keys if router.partition_of(k) == 1),
    ][:n]


KEYS = _spread_over_partitions(2)
# (which id, which parcel): ids repeat across parcels and so across partitions.
DELIVERIES = st.lists(st.tuples(st.integers(0, 4), st.sampled_from(KEYS)), min_size=1, max_size=24)


async def _deliver(items, pauses, concurrently, bulk):
    store = MemoryStore(pauses)
    bus = EventBus(store, CHARTS, partitions=2, max_batch=3)
    bus.start()
    # Every event a note (always applies), all received at the same instant.
    events = [
        CHARTS.event_types.make(
            "parcel.note", key, {"text": "n"}, event_id=f"id-{n}", source="t", received_at=5.0
        )
        for n, key in items
    ]
    try:
        if bulk:
            groups = await asyncio.gather(*await bus.submit_many(events))
            receipts = {id(r): r for group in groups for r in group}
            by_event = [r for group in groups for r in group]
            assert len(receipts) == len(events)
        elif concurrently:
            by_event = await asyncio.gather(*[await bus.submit(e) for e in events])
        else:
            by_event = [await (await bus.submit(e)) for e in events]
    finally:
        await bus.stop()
    return store, events, by_event


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    DELIVERIES,
    st.lists(st.integers(0, 3), min_size=1, max_size=5),
    st.sampled_from(["one by one", "concurrently", "bulk"]),
)
def test_eng2_an_id_sent_for_two_partitions_at_one_instant_counts_once(items, pauses, how):
    """ENG-2: the same id sent for parcels on different partitions, with equal
    timestamps, in any order and interleaving: exactly one copy is applied and
    every other is a recorded duplicate. One by one, the first copy wins."""
    store, events, receipts = asyncio.run(
        _deliver(items, pauses, how == "concurrently", how == "bulk")
    )
    applied = [r for r in receipts if r.outcome != "duplicate"]
    assert Counter(r.event_id for r in applied) == Counter({e.event_id: 1 for e in events})
    assert len(store.duplicates) == len(events) - len(applied)
    assert set(store.events) == {e.event_id for e in events}
    if how == "one by one":
        first = {}
        for event, receipt in zip(events, receipts, strict=True):
            first.setdefault(event.event_id, (event.entity, receipt))
        for event_id, (entity, receipt) in first.items():
            assert receipt.outcome != "duplicate" and receipt.entity == entity, event_id
