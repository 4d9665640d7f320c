"""Replay speed and memory over a large event log, against its read-and-decode ceiling.

    python -m benchmarks.replay [--events 1000000] [--orders 10000] [--jobs N]

Builds a log through the engine with the channel's order chart: 10,000 TikTok
orders, each UNPAID, ON_HOLD and then repeated AWAITING_SHIPMENT updates with
rising update_time (every event a transition, entity data bounded). Then, each
in a fresh process (so peak RSS is the run's own), for a quarter of the log
and for all of it:

- the ceiling: the same rows read in the same order and each payload decoded
  with the decoder replay uses (pydantic-core's JSON), nothing else; in one
  process, and in ``--jobs`` processes each reading its share of the entities
  as the parallel replay does;
- replay in one process (`engine.replay.replay`);
- replay in ``--jobs`` processes (`engine.replay_parallel.replay_parallel`),
  with each process's peak RSS and unshared memory.

Memory follows the number of entities, not the length of the log. Every
ratio is between figures of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"

CHILD = r"""
import asyncio, json, multiprocessing, resource, sys, time
from engine.chartset import ChartSet
from engine.gc_tuning import tune_gc
from engine.replay import replay
from engine.replay_parallel import memory_mb, replay_parallel
from statecharts import chart_package

def ceiling_share(db, until, share, shares):
    # The read and the decode of replay, nothing else: the same query, the
    # same decoder; one share of the entities, as a parallel worker reads it.
    from pydantic_core import from_json
    from engine.bus.routing import PartitionRouter
    from engine.store.sqlite_partitions import ShareReader
    reader = ShareReader(db, share, PartitionRouter(shares).partition_of)
    count = 0
    for rows in reader.log_batches(until):
        for row in rows:
            from_json(row[8])
        count += len(rows)
    reader.close()
    return count

async def ceiling_single(db, until):
    # One process reads as `replay` does (the store's batches), and decodes.
    from pydantic_core import from_json
    from engine.store.sqlite import SQLiteStore
    store = await SQLiteStore.open_readonly(db)
    count = 0
    try:
        async for rows in store.iter_event_batches():
            for row in rows:
                if row[0] > until:
                    return count
                from_json(row[8])
                count += 1
    finally:
        await store.close()
    return count

def ceiling(db, until, jobs):
    if jobs == 1:
        return asyncio.run(ceiling_single(db, until)), []
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        counts = pool.starmap(ceiling_share, [(db, until, s, jobs) for s in range(jobs)])
    return sum(counts), []

async def single(db, until, charts):
    from engine.store.sqlite import SQLiteStore
    store = await SQLiteStore.open_readonly(db)
    try:
        result = await replay(store, charts, until_seq=until)
    finally:
        await store.close()
    return result.events, len(result.entities)

def cpu_seconds():
    # This process's and its reaped children's (the workers'): CPU time moves
    # far less than wall time when other work shares the machine.
    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in (resource.getrusage(resource.RUSAGE_SELF),
                      resource.getrusage(resource.RUSAGE_CHILDREN))
    )

def main(mode, db, until, jobs):
    charts = ChartSet.load([chart_package()])
    tune_gc()  # as `channelsync replay` and `check` do
    shares = []
    cpu = cpu_seconds()
    started = time.perf_counter()
    if mode == "ceiling":
        events, _ = ceiling(db, until, jobs)
        entities = None
    elif mode == "single":
        events, entities = asyncio.run(single(db, until, charts))
    else:
        result = replay_parallel(db, charts, jobs=jobs, until_seq=until)
        events, entities = result.events, len(result.entities)
        shares = [{"events": s.events, "entities": s.entity_count,
                   "peak_rss_mb": round(s.peak_rss_mb, 1), "private_mb": round(s.private_mb, 1)}
                  for s in result.shares]
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds() - cpu
    print(json.dumps({"events": events, "entities": entities, "seconds": elapsed,
                      "events_per_s": events / elapsed, "peak_rss_mb": memory_mb()[0],
                      "events_per_cpu_s": events / cpu,
                      "shares": shares}))

main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
"""


async def build_log(db: Path, events: int, orders: int) -> float:
    from engine import ChartSet, Engine
    from engine.logs import configure_logging
    from engine.settings import EngineSettings
    from statecharts import chart_package

    configure_logging("WARNING", json=True)
    charts = ChartSet.load([chart_package()])
    engine = await Engine.open(
        db,
        charts=charts,
        settings=EngineSettings(run_timers=False, run_outbox=False, synchronous="OFF"),
    )
    started = time.perf_counter()
    per_order = events // orders
    window = []
    for round_ in range(per_order):
        status = "UNPAID" if round_ == 0 else "ON_HOLD" if round_ == 1 else "AWAITING_SHIPMENT"
        for n in range(orders):
            order_id = str(576653688135258178 + n)
            event = charts.event_types.make(
                "order.status_changed",
                f"order:{order_id}",
                {
                    "order_id": order_id,
                    "shop_id": "7495540735365777507",
                    "order_status": status,
                    "update_time": 1_718_305_585 + round_,
                },
                event_id=f"bench:{order_id}:{round_}",
                source="bench",
                received_at=1_718_305_585.0,
            )
            window.append(await engine.submit(event))
            if len(window) >= 5000:
                await asyncio.gather(*window)
                window.clear()
    await asyncio.gather(*window)
    await engine.stop()
    return time.perf_counter() - started


def child_figures(code: str, *args: object) -> dict:
    """Run ``code`` in a fresh interpreter (its memory its own); the JSON object
    its last line of output holds."""
    output = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def run_in_child(mode: str, db: Path, until: int, jobs: int) -> dict:
    return child_figures(CHILD, mode, db, until, jobs)


def measure(db: Path, until: int, jobs: int, runs: int) -> dict:
    """Each figure ``runs`` times, the kinds alternated so that the machine's
    drift touches them alike; medians."""
    kinds = {
        "ceiling_1": ("ceiling", 1),
        f"ceiling_{jobs}": ("ceiling", jobs),
        "single": ("single", 1),
        f"parallel_{jobs}": ("parallel", jobs),
    }
    samples: dict[str, list[dict]] = {name: [] for name in kinds}
    for _ in range(runs):
        for name, (mode, n) in kinds.items():
            samples[name].append(run_in_child(mode, db, until, n))
    row: dict = {"events": samples["single"][0]["events"]}
    row["entities"] = samples["single"][0]["entities"]
    for name, runs_ in samples.items():
        row[name] = {
            "events_per_s_median": round(statistics.median(r["events_per_s"] for r in runs_)),
            "runs": [round(r["events_per_s"]) for r in runs_],
            "events_per_cpu_s_median": round(
                statistics.median(r["events_per_cpu_s"] for r in runs_)
            ),
            "peak_rss_mb_max": round(max(r["peak_rss_mb"] for r in runs_), 1),
        }
    row[f"parallel_{jobs}"]["shares"] = samples[f"parallel_{jobs}"][-1]["shares"]
    # The keys the summary table of `python -m benchmarks` reads.
    row["events_per_s_median"] = row["single"]["events_per_s_median"]
    row["peak_rss_mb_max"] = row["single"]["peak_rss_mb_max"]
    return row


def report(row: dict, jobs: int) -> None:
    single, parallel = row["single"], row[f"parallel_{jobs}"]
    ceiling_1, ceiling_n = row["ceiling_1"], row[f"ceiling_{jobs}"]
    print(f"replay {row['events']:>9,} events, {row['entities']:,} entities:")
    for name, figures in (
        ("read-and-decode ceiling, 1 process", ceiling_1),
        (f"read-and-decode ceiling, {jobs} processes", ceiling_n),
        ("replay, 1 process", single),
        (f"replay, {jobs} processes", parallel),
    ):
        print(
            f"  {name:<42} {figures['events_per_s_median']:>9,}/s (runs {figures['runs']}),"
            f" {figures['events_per_cpu_s_median']:,} per CPU s,"
            f" peak RSS {figures['peak_rss_mb_max']} MB"
        )
    rate = parallel["events_per_s_median"]
    print(
        f"  {jobs} processes / ceiling: {rate / ceiling_1['events_per_s_median']:.2f} of one"
        f" process's, {rate / ceiling_n['events_per_s_median']:.2f} of {jobs} processes';"
        f" {rate / single['events_per_s_median']:.2f}x one process's replay"
    )
    for n, share in enumerate(parallel["shares"]):
        print(
            f"  process {n}: {share['events']:,} events, {share['entities']:,} entities,"
            f" peak RSS {share['peak_rss_mb']} MB, unshared {share['private_mb']} MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "replay.db"
        built = asyncio.run(build_log(db, args.events, args.orders))
        print(
            f"built a {args.events:,}-event log over {args.orders:,} orders in {built:.0f}s "
            f"({args.events / built:,.0f} events/s with synchronous=OFF)"
        )
        rows = {}
        for share in (0.25, 1.0):
            rows[share] = measure(db, int(args.events * share), args.jobs, args.runs)
            report(rows[share], args.jobs)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "replay.json").write_text(
        json.dumps(
            {
                "benchmark": "replay",
                "events": args.events,
                "orders": args.orders,
                "jobs": args.jobs,
                "build_seconds": round(built, 1),
                "replay": {str(k): v for k, v in rows.items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
