"""Replay speed and memory over a large event log.

    python -m benchmarks.replay [--events 1000000] [--orders 10000]

Builds a log through the engine with the channel's order chart: 10,000 TikTok
orders, each UNPAID, ON_HOLD and then repeated AWAITING_SHIPMENT updates with
rising update_time (every event a transition, entity data bounded). Then
replays it in a fresh process (so peak RSS is the replay's own), for a quarter
of the log and for all of it: memory follows the number of entities, not the
length of the log.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"

CHILD = r"""
import asyncio, json, resource, sys, time
from engine.chartset import ChartSet
from engine.gc_tuning import tune_gc
from engine.replay import replay
from engine.store.sqlite import SQLiteStore
from statecharts import chart_package

def peak_rss_mb():
    # VmHWM is this process image's own peak. ru_maxrss would also count the
    # parent's pages shared at fork (Linux keeps the maximum across exec), so a
    # parent that just built the log would show through.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

async def main(db, until):
    charts = ChartSet.load([chart_package()])
    tune_gc()  # as `channelsync replay` and `check` do
    store = await SQLiteStore.open(db)
    started = time.perf_counter()
    result = await replay(store, charts, until_seq=until)
    elapsed = time.perf_counter() - started
    await store.close()
    rss_mb = peak_rss_mb()
    print(json.dumps({"events": result.events, "entities": len(result.entities),
                      "seconds": elapsed, "events_per_s": result.events / elapsed,
                      "peak_rss_mb": rss_mb}))

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
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


def replay_in_child(db: Path, until: int) -> dict:
    output = subprocess.run(
        [sys.executable, "-c", CHILD, str(db), str(until)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
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
            until = int(args.events * share)
            runs = [replay_in_child(db, until) for _ in range(args.runs)]
            rows[share] = {
                "events": runs[0]["events"],
                "entities": runs[0]["entities"],
                "events_per_s_median": round(statistics.median(r["events_per_s"] for r in runs)),
                "peak_rss_mb_max": round(max(r["peak_rss_mb"] for r in runs), 1),
                "runs": [round(r["events_per_s"]) for r in runs],
            }
            print(
                f"replay {rows[share]['events']:>9,} events, {rows[share]['entities']:,} entities: "
                f"median {rows[share]['events_per_s_median']:,} events/s "
                f"(runs {rows[share]['runs']}), peak RSS {rows[share]['peak_rss_mb_max']} MB"
            )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "replay.json").write_text(
        json.dumps(
            {
                "benchmark": "replay",
                "events": args.events,
                "orders": args.orders,
                "build_seconds": round(built, 1),
                "replay": {str(k): v for k, v in rows.items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
