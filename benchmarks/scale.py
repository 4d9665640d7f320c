"""Throughput with 1,000,000 entities in the store, against 10,000 (same run)."""

from __future__ import annotations

import asyncio
import resource
import tempfile
import time
from pathlib import Path

from engine.settings import EngineSettings


async def _fill(db: Path, entities: int) -> None:
    from engine import ChartSet, Engine
    from engine.sample import chart_package

    charts = ChartSet.load([chart_package()])
    engine = await Engine.open(
        db,
        charts=charts,
        settings=EngineSettings(
            run_timers=False, run_outbox=False, synchronous="OFF", cache_size=50_000
        ),
    )
    window = []
    for n in range(entities):
        window.append(
            await engine.submit(
                charts.event_types.make(
                    "parcel.pack",
                    f"parcel:{n}",
                    {"weight_kg": 1.0},
                    event_id=f"fill-{n}",
                    source="b",
                    received_at=1.0,
                )
            )
        )
        if len(window) >= 10_000:
            await asyncio.gather(*window)
            window.clear()
    await asyncio.gather(*window)
    await engine.stop()


async def _measure(db: Path, entities: int, count: int) -> float:
    from engine import ChartSet, Engine
    from engine.sample import chart_package

    charts = ChartSet.load([chart_package()])
    engine = await Engine.open(
        db, charts=charts, settings=EngineSettings(run_timers=False, run_outbox=False)
    )
    step = max(1, entities // 10_000)
    events = [
        charts.event_types.make(
            "parcel.note",
            f"parcel:{(n % 10_000) * step}",
            {"text": "n"},
            event_id=f"m-{n}",
            source="b",
            received_at=1.0,
        )
        for n in range(count)
    ]
    started = time.perf_counter()
    await asyncio.gather(*[await engine.submit(e) for e in events])
    elapsed = time.perf_counter() - started
    await engine.stop()
    return count / elapsed


def run(big: int = 1_000_000, small: int = 10_000, count: int = 50_000) -> dict[str, float]:
    from engine.logs import configure_logging

    configure_logging("WARNING", json=True)
    with tempfile.TemporaryDirectory() as folder:
        small_db, big_db = Path(folder) / "small.db", Path(folder) / "big.db"
        asyncio.run(_fill(small_db, small))
        small_rate = asyncio.run(_measure(small_db, small, count))
        started = time.perf_counter()
        asyncio.run(_fill(big_db, big))
        fill_seconds = time.perf_counter() - started
        big_rate = asyncio.run(_measure(big_db, big, count))
        size_mb = big_db.stat().st_size / 1e6
    return {
        "entities_small": small,
        "entities_big": big,
        "rate_small": small_rate,
        "rate_big": big_rate,
        "ratio": big_rate / small_rate,
        "fill_seconds": fill_seconds,
        "db_mb": size_mb,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


if __name__ == "__main__":
    print(run())
