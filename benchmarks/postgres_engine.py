"""The engine on PostgreSQL beside the engine on SQLite, in one run.

    python -m benchmarks.postgres_engine [--events 30000] [--entities 3000] [--runs 3]

The same closed loop as `benchmarks.throughput`'s bulk peak (every event of
the parcel mix handed to `Engine.publish_many` at once; events/s to the last
commit), on a fresh SQLite file (writer thread, synchronous=FULL) and on a
fresh PostgreSQL database (`PostgresStore`, the server's default
synchronous_commit), the two taking turns run by run. Also the engine
process's CPU an event; PostgreSQL's server runs in processes of its own, so
its CPU is not in that figure (on a machine of 2 cores it competes with the
engine). Figures go in docs/postgres.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.throughput import make_events
from engine import ChartSet, Engine
from engine.gc_tuning import tune_gc
from engine.logs import configure_logging
from engine.sample import chart_package
from engine.settings import EngineSettings
from engine.testing.services import DEFAULT_POSTGRES, fresh_database

QUIET = EngineSettings(run_timers=False, run_outbox=False)


async def one_run(
    target: str | Path, charts: ChartSet, count: int, entities: int
) -> tuple[float, float]:
    """events/s and the engine process's CPU in us an event, on ``target``."""
    engine = await Engine.open(target, charts=charts, settings=QUIET)
    events = make_events(charts, count, entities, "bench")
    gc.freeze()
    cpu, started = time.process_time(), time.perf_counter()
    await engine.publish_many(events)
    elapsed = time.perf_counter() - started
    used = time.process_time() - cpu
    await engine.stop()
    gc.unfreeze()
    return count / elapsed, used / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--entities", type=int, default=3_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--url", default=DEFAULT_POSTGRES, help="a server; databases are made")
    args = parser.parse_args()
    configure_logging("WARNING", json=True)
    tune_gc()
    charts = ChartSet.load([chart_package()])
    results: dict[str, list[tuple[float, float]]] = {"SQLite": [], "PostgreSQL": []}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            run = one_run(Path(folder) / "bench.db", charts, args.events, args.entities)
            results["SQLite"].append(asyncio.run(run))
        with fresh_database(args.url) as url:
            results["PostgreSQL"].append(
                asyncio.run(one_run(url, charts, args.events, args.entities))
            )
    print(f"{args.events} events over {args.entities} parcels, publish_many, median of {args.runs}")
    for name, runs in results.items():
        rate = statistics.median(r for r, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"{name:11} {rate:9,.0f} events/s   engine process CPU {cpu:5.1f} us/event")


if __name__ == "__main__":
    main()
