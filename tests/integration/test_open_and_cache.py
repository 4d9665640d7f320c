"""`Engine.open` does not read the entities or the log, and the bus keeps at
most `cache_size` of them in memory (issue 18).

However many entities a database holds, opening it costs the same: no cache
warm-up, no count, no scan. Its time on a million entities is measured in
benchmarks/memory.py; this holds what it reads.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine import Engine, FakeClock
from engine.chartset import ChartSet
from engine.settings import EngineSettings
from engine.store.sqlite import SQLiteStore

# What reads the entities or the log in bulk (or a count of them).
BULK_READS = {
    "entities",
    "entities_logged_after",
    "entity_keys",
    "find_entities",
    "find_records",
    "iter_event_batches",
    "iter_events",
    "load_entities",
    "history",
    "count",
    "event_outcomes",
}


def _counting(calls: Counter[str], name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(method):

        def generator(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return method(*args, **kwargs)

        return generator

    async def coroutine(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        if name == "fetchall":  # the generic query: which tables it reads
            calls["sql: " + " ".join(str(args[1]).split())] += 1
        return await method(*args, **kwargs)

    return coroutine


@pytest.fixture
def store_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every call of the store's async methods, by name, from now on."""
    calls: Counter[str] = Counter()
    for name, method in inspect.getmembers(SQLiteStore):
        if name.startswith("_") or name in ("open", "open_readonly"):
            continue
        if inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method):
            monkeypatch.setattr(SQLiteStore, name, _counting(calls, name, method))
    return calls


async def _fill(path: Path, charts: ChartSet, entities: int) -> None:
    engine = await Engine.open(
        path, charts=charts, settings=EngineSettings(run_timers=False, run_outbox=False)
    )
    try:
        await engine.publish_many(
            [
                engine.make_event("parcel.pack", f"parcel:{n}", {"weight_kg": 1}, event_id=f"e{n}")
                for n in range(entities)
            ]
        )
    finally:
        await engine.stop()


@pytest.mark.parametrize("writer", ["thread", "process"])
async def test_opening_reads_no_entity_and_no_event_whatever_the_store_holds(
    db_path: Path, sample_charts: ChartSet, store_calls: Counter[str], writer: str
) -> None:
    await _fill(db_path, sample_charts, 3000)
    store_calls.clear()
    engine = await Engine.open(
        db_path, charts=sample_charts, clock=FakeClock(), settings=EngineSettings(writer=writer)
    )
    try:
        await asyncio.sleep(0.3)  # the timer, purge and outbox loops take their first turn
        assert sorted(set(store_calls) & BULK_READS) == []
        queries = [call[5:] for call in store_calls if call.startswith("sql: ")]
        # The next seq to give: the rowid's last value, one step down its B-tree.
        assert [q for q in queries if " FROM entities" in q or " FROM events" in q] == [
            "SELECT COALESCE(MAX(seq), 0) FROM events"
        ]
        # It still serves them, each read when asked for.
        assert (await engine.entity("parcel:2999")).state == "packed"
        assert store_calls["load_entities"] == 1
    finally:
        await engine.stop()


@pytest.mark.parametrize(("cache_size", "reread"), [(10, True), (1000, False)])
async def test_the_cache_holds_at_most_its_size_of_entities(
    db_path: Path,
    sample_charts: ChartSet,
    monkeypatch: pytest.MonkeyPatch,
    cache_size: int,
    reread: bool,
) -> None:
    """`EngineSettings.cache_size` bounds the states the bus keeps: after a
    hundred other parcels, the first is read from the store again when the
    cache holds ten, and served from memory when it holds a thousand."""
    loaded: list[str] = []
    load = SQLiteStore.load_entities

    async def recording(self: SQLiteStore, keys: Any) -> Any:
        loaded.extend(keys)
        return await load(self, keys)

    monkeypatch.setattr(SQLiteStore, "load_entities", recording)
    settings = EngineSettings(run_timers=False, run_outbox=False, cache_size=cache_size)
    engine = await Engine.open(db_path, charts=sample_charts, settings=settings)
    try:
        for n in range(101):
            key = f"parcel:{n % 100}"
            await engine.publish(
                engine.make_event("parcel.note", key, {"text": "x"}, event_id=f"e{n}")
            )
    finally:
        await engine.stop()
    assert loaded.count("parcel:1") == 1
    assert loaded.count("parcel:0") == (2 if reread else 1)
