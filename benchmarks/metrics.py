"""What the metrics cost the hot path: throughput's closed loop with the
engine's commit observer on and off, alternating in one run.

    python -m benchmarks.metrics [--events 50000] [--entities 5000] [--pairs 5]

Each pair runs the same events (throughput's mix, one `submit` each, writer
thread) once with `EngineMetrics.committed` told of every commit and once
without; the figure is the median over pairs of the event loop's CPU per event
(less noisy than events/s on a shared machine) and of events/s, and the ratio
of the two sides. A scrape (`render_metrics`) is timed on the engine after its
run: it reads the queues and two counts from the store.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.throughput import make_events
from engine import ChartSet, Engine
from engine.gc_tuning import tune_gc
from engine.logs import configure_logging
from engine.metrics import render_metrics
from engine.sample import chart_package
from engine.settings import EngineSettings


async def one_run(charts: ChartSet, count: int, entities: int, observed: bool) -> dict[str, float]:
    """Events/s and loop CPU µs per event for one closed-loop run."""
    with tempfile.TemporaryDirectory() as folder:
        engine = await Engine.open(
            Path(folder) / "bench.db",
            charts=charts,
            settings=EngineSettings(run_timers=False, run_outbox=False),
        )
        if not observed:
            engine.bus.observe_commits(None)
        events = make_events(charts, count, entities, "m")
        gc.freeze()
        cpu, started = time.process_time(), time.perf_counter()
        futures = [await engine.submit(event) for event in events]
        await asyncio.gather(*futures)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        scrape_started = time.perf_counter()
        await render_metrics(engine)
        scrape_ms = (time.perf_counter() - scrape_started) * 1000
        await engine.stop()
        gc.unfreeze()
    return {
        "events_per_s": count / elapsed,
        "loop_cpu_us": cpu / count * 1e6,
        "scrape_ms": scrape_ms,
    }


async def compare(count: int, entities: int, pairs: int) -> dict[str, object]:
    charts = ChartSet.load([chart_package()])
    runs: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
    for pair in range(pairs):
        # Alternate which side goes first: a machine getting busier hurts both.
        order = ("on", "off") if pair % 2 == 0 else ("off", "on")
        for side in order:
            runs[side].append(await one_run(charts, count, entities, side == "on"))

    def median(side: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[side])

    return {
        "events": count,
        "pairs": pairs,
        "loop_cpu_us": {side: round(median(side, "loop_cpu_us"), 2) for side in runs},
        "events_per_s": {side: round(median(side, "events_per_s")) for side in runs},
        "cpu_ratio_on_off": round(median("on", "loop_cpu_us") / median("off", "loop_cpu_us"), 3),
        "throughput_ratio_on_off": round(
            median("on", "events_per_s") / median("off", "events_per_s"), 3
        ),
        "scrape_ms": round(median("on", "scrape_ms"), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--entities", type=int, default=5_000)
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    with open("/dev/null", "w") as sink:  # logging as in production, to nowhere
        configure_logging("INFO", json=True, stream=sink)
        tune_gc()
        figures = asyncio.run(compare(args.events, args.entities, args.pairs))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
