"""The inspector's entity pages: SQLite's indexed queries find exactly what the
protocol's plain reads find, and walking the pages visits every match once.

Keys are chosen to be awkward: a prefix of another, ``_`` (a LIKE wildcard),
upper and lower case, non-ASCII letters, an emoji, a code point beyond the
Basic Multilingual Plane; prefixes may end in the highest code point.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import ChartSet, Engine
from engine.sample import chart_package as sample_package
from engine.settings import EngineSettings
from engine.store.inspector_reads import EntityQuery, entity_page, prefix_range, state_counts
from engine.store.sqlite import SQLiteStore

IDS = [
    "1",
    "10",
    "1a",
    "1_",
    "1_x",
    "A",
    "a",
    "é",
    "éa",
    "😀",
    "~",
    "z9",
    "\U0002a6d6",
    "\U0002a6d6b",
]
KEYS = [f"parcel:{i}" for i in IDS]
CANCELLED = {"parcel:10", "parcel:a", "parcel:éa"}
ALPHABET = "parcel:01a_Aéz~😀\U0002a6d6\U0010ffffbx"


class PlainReads:
    """The store seen only through the protocol (what another Store gets)."""

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reads") / "reads.db"

    async def build() -> None:
        engine = await Engine.open(
            path,
            charts=ChartSet.load([sample_package()]),
            settings=EngineSettings(run_timers=False, run_outbox=False),
        )
        try:
            for n, key in enumerate(KEYS):
                await engine.publish(
                    engine.make_event("parcel.pack", key, {"weight_kg": 1.0}, event_id=f"p{n}")
                )
                if key in CANCELLED:
                    await engine.publish(
                        engine.make_event("parcel.cancel", key, {}, event_id=f"c{n}")
                    )
        finally:
            await engine.stop()

    asyncio.run(build())
    return path


queries = st.builds(
    EntityQuery,
    prefix=st.text(ALPHABET, max_size=9),
    chart=st.sampled_from([None, "parcel", "order"]),
    state=st.sampled_from([None, "packed", "cancelled", "pack"]),
    limit=st.integers(1, 6),
)


@settings(max_examples=60, deadline=None)
@given(query=queries)
def test_sqlite_pages_find_what_the_protocol_reads_find(db: Path, query: EntityQuery) -> None:
    expected = sorted(
        k
        for k in KEYS
        if k.startswith(query.prefix)
        and query.chart in (None, "parcel")
        # "pack" is no state of the parcel chart, only a prefix of one: it finds nothing.
        and query.state != "pack"
        and (query.state is None or (query.state == "cancelled") == (k in CANCELLED))
    )
    assert _walk(db, query, plain=False) == expected
    assert _walk(db, query, plain=True) == expected
    counted, plain_counted = asyncio.run(_counts(db, query))
    assert counted == plain_counted
    assert sum(n for _chart, _state, n in counted) == len(expected)


async def _counts(db: Path, query: EntityQuery) -> tuple[list[Any], list[Any]]:
    store = await SQLiteStore.open_readonly(db)
    try:
        return await state_counts(store, query), await state_counts(PlainReads(store), query)
    finally:
        await store.close()


def _walk(db: Path, query: EntityQuery, *, plain: bool) -> list[str]:
    async def walk() -> list[str]:
        store = await SQLiteStore.open_readonly(db)
        reads: Any = PlainReads(store) if plain else store
        try:
            keys: list[str] = []
            after = None
            while True:
                page = await entity_page(reads, EntityQuery(**{**_fields(query), "after": after}))
                keys += [e.key for e in page]
                if len(page) < query.limit:
                    return keys
                after = page[-1].key
        finally:
            await store.close()

    return asyncio.run(walk())


def _fields(query: EntityQuery) -> dict[str, Any]:
    return {name: getattr(query, name) for name in EntityQuery.__dataclass_fields__}


@given(prefix=st.text(ALPHABET, max_size=5), key=st.text(ALPHABET, max_size=8))
def test_a_prefix_is_a_range_of_keys(prefix: str, key: str) -> None:
    bounds = prefix_range(prefix)
    if bounds is None:
        assert prefix == ""
        return
    low, high = bounds
    inside = key >= low and (high is None or key < high)
    assert inside == key.startswith(prefix)
    # SQLite compares UTF-8 bytes: the same order as code points.
    encoded = key.encode() >= low.encode() and (high is None or key.encode() < high.encode())
    assert encoded == inside


async def test_timeline_pages_and_the_live_feed_read_alike_on_any_store(db: Path) -> None:
    from engine.store.inspector_reads import event_count, events_after, last_seq, timeline_page

    store = await SQLiteStore.open_readonly(db)
    plain = PlainReads(store)
    try:
        for key in ("parcel:10", "parcel:1", "parcel:none"):
            for reads in (store, plain):
                newest = await timeline_page(reads, key, limit=1)
                everything = await timeline_page(reads, key, limit=10)
                assert newest == everything[:1]
                assert [e["seq"] for e in everything] == sorted(
                    (e["seq"] for e in await store.history(key)), reverse=True
                )
                if everything:
                    older = await timeline_page(reads, key, before=everything[0]["seq"])
                    assert older == everything[1:]
                assert await event_count(reads, key) == len(everything)
        assert await last_seq(store) == await last_seq(plain) == len(KEYS) + len(CANCELLED)
        after = await events_after(store, 3, limit=4)
        assert [e["seq"] for e in after] == [4, 5, 6, 7]
    finally:
        await store.close()
