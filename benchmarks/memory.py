"""Memory per entity, cached and idle, and `Engine.open` on large stores.

    python -m benchmarks.memory           # 10k and 100k entities (about a minute)
    python -m benchmarks.memory --full    # and 1M

For each size, a store of that many TikTok orders (each the state the order
chart leaves after its first status, copied under new keys, written in key
order straight into SQLite so that building takes seconds), then, each in a
fresh process so that its resident memory is its own:

- **idle**: `Engine.open` on the store (writer thread, the background loops
  running) and one entity read; resident memory after, against the same
  process before opening an empty store, per entity in the store; the seconds
  `Engine.open` took.
- **cached**: the same number of states, read from the store as the bus
  reads them (`load_entities`), held in the bus's `EntityCache`; resident
  memory per cached state.

Results in benchmarks/results/memory.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
from pathlib import Path

from benchmarks.replay import child_figures

RESULTS = Path(__file__).parent / "results"
SIZES = (10_000, 100_000)
FULL = (*SIZES, 1_000_000)

CHILD = r"""
import asyncio, gc, json, sys, time
from engine import Engine, configure_logging
from engine.bus.cache import EntityCache
from engine.chartset import ChartSet
from engine.replay_parallel import memory_mb
from engine.settings import EngineSettings
from engine.store.sqlite import SQLiteStore
from statecharts import chart_package

def rss_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

async def idle(db, empty, charts):
    # Open an empty store first, so that what the engine allocates whatever
    # the store holds (threads, statements, caches) is in the baseline.
    engine = await Engine.open(empty, charts=charts)
    await engine.stop()
    gc.collect()
    before = rss_mb()
    started = time.perf_counter()
    engine = await Engine.open(db, charts=charts)
    opened = time.perf_counter() - started
    try:
        await asyncio.sleep(0.5)  # the background loops take their first turn
        assert (await engine.entity(KEY)) is not None
        gc.collect()
        return {"open_seconds": opened, "rss_delta_mb": rss_mb() - before}
    finally:
        await engine.stop()

async def cached(db, count):
    store = await SQLiteStore.open_readonly(db)
    keys = [f"order:{n:012d}" for n in range(count)]
    gc.collect()
    before = rss_mb()
    cache = EntityCache(count)
    for start in range(0, count, 10_000):
        for key, state in (await store.load_entities(keys[start:start + 10_000])).items():
            cache.load(key, state)
    await store.close()
    del keys
    gc.collect()
    assert len(cache) == count
    return {"rss_delta_mb": rss_mb() - before}

configure_logging("WARNING", json=True)
mode, db, empty, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
KEY = f"order:{count - 1:012d}"
charts = ChartSet.load([chart_package()])
figures = asyncio.run(idle(db, empty, charts) if mode == "idle" else cached(db, count))
figures["peak_rss_mb"] = memory_mb()[0]
print(json.dumps(figures))
"""


async def _one_order(db: Path) -> None:
    """A store with one order, as the order chart leaves it after its first status."""
    from engine import ChartSet, Engine
    from engine.logs import configure_logging
    from engine.settings import EngineSettings
    from statecharts import chart_package

    configure_logging("WARNING", json=True)
    charts = ChartSet.load([chart_package()])
    engine = await Engine.open(
        db, charts=charts, settings=EngineSettings(run_timers=False, run_outbox=False)
    )
    try:
        await engine.publish(
            charts.event_types.make(
                "order.status_changed",
                "order:576653688135258178",
                {
                    "order_id": "576653688135258178",
                    "shop_id": "7495540735365777507",
                    "order_status": "AWAITING_SHIPMENT",
                    "update_time": 1_718_305_585,
                },
                event_id="memory:seed",
                source="bench",
            )
        )
    finally:
        await engine.stop()


def build_store(db: Path, count: int) -> int:
    """``count`` copies of the seed order under keys in order; the file's bytes."""
    asyncio.run(_one_order(db))
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO entities (key, kind, chart, state, data, version, last_seq, updated_at,"
            " chart_version, history)"
            " WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)"
            " SELECT printf('order:%012d', i), e.kind, e.chart, e.state, e.data, e.version,"
            " e.last_seq, e.updated_at, e.chart_version, e.history FROM n, entities e"
            " WHERE e.key = 'order:576653688135258178'",
            (count,),
        )
        conn.execute("DELETE FROM entities WHERE key = 'order:576653688135258178'")
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db.stat().st_size


def run_child(mode: str, db: Path, empty: Path, count: int) -> dict:
    return child_figures(CHILD, mode, db, empty, count)


def run(sizes: tuple[int, ...]) -> dict:
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        empty = Path(folder) / "empty.db"
        asyncio.run(_one_order(empty))
        for count in sizes:
            db = Path(folder) / f"entities-{count}.db"
            file_bytes = build_store(db, count)
            idle, cached = (
                run_child("idle", db, empty, count),
                run_child("cached", db, empty, count),
            )
            rows[count] = {
                "file_bytes_per_entity": round(file_bytes / count),
                "open_seconds": round(idle["open_seconds"], 3),
                "idle_rss_delta_mb": round(idle["rss_delta_mb"], 1),
                "idle_bytes_per_entity": round(idle["rss_delta_mb"] * 1024 * 1024 / count, 1),
                "cached_rss_delta_mb": round(cached["rss_delta_mb"], 1),
                "cached_bytes_per_entity": round(cached["rss_delta_mb"] * 1024 * 1024 / count),
                "peak_rss_mb_cached": round(cached["peak_rss_mb"], 1),
            }
            row = rows[count]
            print(
                f"{count:>9,} entities: Engine.open {row['open_seconds']:.3f}s;"
                f" idle in the store {row['idle_bytes_per_entity']} B/entity of RSS"
                f" ({row['idle_rss_delta_mb']} MB),"
                f" {row['file_bytes_per_entity']} B/entity on disk;"
                f" cached {row['cached_bytes_per_entity']:,} B/entity"
                f" ({row['cached_rss_delta_mb']} MB)"
            )
            db.unlink()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory")
    parser.add_argument("--full", action="store_true", help="add the 1M-entity store")
    rows = run(FULL if parser.parse_args().full else SIZES)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "memory.json").write_text(
        json.dumps({"benchmark": "memory", "sizes": {str(k): v for k, v in rows.items()}}, indent=2)
    )


if __name__ == "__main__":
    main()
