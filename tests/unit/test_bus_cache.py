"""The entity cache: bounded, least recently used out first, and never
serving a state whose commit failed."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import ChartSet
from engine.bus import EventBus
from engine.bus.cache import EntityCache
from engine.sample import chart_package
from engine.step import EntityState
from engine.store.errors import StoreError
from tests.parcel_model import EVENT_TYPES, ParcelModel, payload_for
from tests.unit.bus_memory_store import MemoryStore

CHARTS = ChartSet.load([chart_package()])
KEYS = [f"parcel:{n}" for n in range(6)]


def state(key: str, version: int) -> EntityState:
    return EntityState(key, "parcel", "created", {"v": version}, version)


# What happens to a cache: states read, stepped and committed, eviction after
# a commit, and a failed commit that forgets everything.
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("load"), st.sampled_from(KEYS)),
        st.tuples(st.just("step"), st.sampled_from(KEYS)),
        st.tuples(st.just("commit"), st.integers(0, 3)),
        st.tuples(st.just("evict"), st.none()),
        st.tuples(st.just("forget"), st.none()),
    ),
    max_size=60,
)


@given(st.integers(0, 4), OPERATIONS)
def test_the_cache_keeps_to_its_size_and_never_drops_an_uncommitted_state(size, operations):
    """For any sequence: after an eviction the cache holds at most ``size``
    states unless all it holds are uncommitted; an uncommitted state is always
    there, the newest one stepped; after `forget` nothing is served."""
    cache = EntityCache(size)
    newest: dict[str, EntityState] = {}  # what a step made last, per key
    uncommitted: list[str] = []  # one key per step, in commit order
    for version, (operation, argument) in enumerate(operations, start=1):
        if operation == "load":
            before = cache.get(argument)
            cache.load(argument, state(argument, version))
            assert before is None or cache[argument] is before, "a cached state is not replaced"
        elif operation == "step":
            newest[argument] = state(argument, version)
            cache.stepped(argument, newest[argument])
            uncommitted.append(argument)
        elif operation == "commit":
            cache.committed(uncommitted[:argument])
            del uncommitted[:argument]
        elif operation == "evict":
            cache.evict()
            assert len(cache) <= size or cache.pinned() == len(cache)
        else:
            epoch = cache.epoch
            cache.forget()
            assert cache.epoch == epoch + 1
            assert all(cache.get(key) is None for key in KEYS) and len(cache) == 0
            uncommitted.clear()
        for key in uncommitted:
            assert cache.get(key) is newest[key]
        assert cache.pinned() == len(set(uncommitted))


def test_the_least_recently_used_committed_state_goes_first():
    cache = EntityCache(2)
    for key in ("parcel:a", "parcel:b"):
        cache.load(key, state(key, 0))
    cache.stepped("parcel:a", state("parcel:a", 1))  # a is now the most recent
    cache.committed(["parcel:a"])
    cache.load("parcel:c", state("parcel:c", 0))
    cache.evict()
    assert cache.missing(["parcel:a", "parcel:b", "parcel:c"]) == ["parcel:b"]


def test_an_uncommitted_state_outlives_eviction_even_when_it_is_the_oldest():
    cache = EntityCache(1)
    cache.stepped("parcel:a", state("parcel:a", 1))
    cache.load("parcel:b", state("parcel:b", 0))
    cache.load("parcel:c", state("parcel:c", 0))
    cache.stepped("parcel:d", state("parcel:d", 1))
    cache.evict()
    assert sorted(cache.missing(["parcel:a", "parcel:b", "parcel:c", "parcel:d"])) == [
        "parcel:b",
        "parcel:c",
    ]
    assert len(cache) == 2, "above its size: both uncommitted states stay"


# Events for a few parcels, with some commits failing: the commit numbers.
DELIVERIES = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from(EVENT_TYPES), st.integers(0, 40)),
    min_size=1,
    max_size=30,
)
FAILURES = st.sets(st.integers(1, 12), max_size=4)


async def _deliver(items, failures, cache_size, pauses, concurrently):
    store = MemoryStore(pauses)
    store.fail_commits = failures
    bus = EventBus(store, CHARTS, partitions=2, max_batch=4, cache_size=cache_size)
    bus.start()
    events = [
        CHARTS.event_types.make(
            kind,
            f"parcel:{parcel}",
            payload_for(kind, n),
            event_id=f"e{i}",
            source="t",
            received_at=1.0,
        )
        for i, (parcel, kind, n) in enumerate(items)
    ]
    try:
        if concurrently:
            futures = [await bus.submit(e) for e in events]
            outcomes = await asyncio.gather(*futures, return_exceptions=True)
        else:
            outcomes = []
            for event in events:
                try:
                    outcomes.append(await (await bus.submit(event)))
                except StoreError as err:
                    outcomes.append(err)
    finally:
        await bus.stop()
    return store, events, outcomes


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    DELIVERIES,
    FAILURES,
    st.integers(0, 3),
    st.lists(st.integers(0, 3), min_size=1, max_size=5),
    st.booleans(),
)
def test_an_acknowledged_event_never_builds_on_one_whose_commit_failed(
    items, failures, cache_size, pauses, concurrently
):
    """Whatever commits fail, whatever the cache's size and the interleaving:
    each parcel in the store is what its acknowledged events make, in the
    order sent, and each acknowledgement says so. A state cached from a
    refused event would show here as an acknowledged step from it."""
    store, events, outcomes = asyncio.run(
        _deliver(items, failures, cache_size, pauses, concurrently)
    )
    models: dict[str, ParcelModel] = {}
    for event, outcome in zip(events, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            assert isinstance(outcome, StoreError), outcome
            assert event.event_id not in store.events
            continue
        model = models.setdefault(event.entity, ParcelModel())
        before = model.state
        changed = model.apply(event.type, event.payload_dict())
        assert (outcome.outcome == "transitioned") == changed, event
        assert outcome.from_state == before
        assert store.events[event.event_id].outcome == outcome.outcome
    for key, model in models.items():
        stored = store.entity(key)
        if model.version:
            assert (stored.state, stored.data, stored.version) == (
                model.state,
                model.data,
                model.version,
            )
        else:
            assert stored is None


@pytest.mark.parametrize("cache_size", [0, 100])
def test_after_a_failed_commit_the_next_event_starts_from_the_stored_state(cache_size):
    """The failed step's state is not served: the parcel is read again."""
    items = [(0, "parcel.pack", 1), (0, "parcel.cancel", 0)]
    store, _events, outcomes = asyncio.run(_deliver(items, {1}, cache_size, [0], False))
    assert isinstance(outcomes[0], StoreError)
    assert (outcomes[1].from_state, outcomes[1].to_state) == ("created", "cancelled")
    assert store.entity("parcel:0").version == 1
