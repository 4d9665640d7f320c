"""How long a PostgreSQL commit takes while the event loop is busy stepping.

    python -m benchmarks.commit_overlap [--commits 12] [--events 1000] [--slice-ms 100]

A cluster worker's loop steps batches of events in runs of a hundred
milliseconds and more; a commit that needs the loop between its round trips
waits for those runs. This opens a `PostgresStore` on a fresh database (the
test server of engine.testing.services) and times commits of ``--events``
event rows (one in ten with an outbox command, 200 entities), first with the
loop idle, then while a task keeps it busy in ``--slice-ms`` runs of pure
Python with a yield between them (a stand-in for stepping). The first two
commits of each series warm up and are left out. To compare two versions of
the store, run it from each one's tree, alternately. Writes
results/commit_overlap.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

from engine.store.postgres import PostgresStore
from engine.testing.services import fresh_database
from engine.testing.store_builders import batch, command, event_row

RESULTS = Path(__file__).parent / "results"
WARM_UP = 2


async def _busy(until: asyncio.Event, slice_s: float) -> None:
    """Keep the loop busy in runs of ``slice_s`` seconds until ``until`` is set."""
    while not until.is_set():
        end = time.perf_counter() + slice_s
        while time.perf_counter() < end:
            pass
        await asyncio.sleep(0)


async def series(url: str, tag: str, commits: int, events: int, slice_s: float) -> dict[str, Any]:
    """Milliseconds per commit (median, max) with the loop busy in ``slice_s`` runs (0: idle)."""
    store = await PostgresStore.open(url)
    stop = asyncio.Event()
    busy = asyncio.create_task(_busy(stop, slice_s)) if slice_s > 0 else None
    took = []
    try:
        for n in range(commits + WARM_UP):
            rows = [
                event_row(
                    f"order:{tag}-{i % 200}",
                    f"{tag}-{n}-{i}",
                    commands=[command(f"{tag}-{n}-{i}")] if i % 10 == 0 else [],
                )
                for i in range(events)
            ]
            started = time.perf_counter()
            await store.commit(batch(rows))
            took.append(time.perf_counter() - started)
    finally:
        stop.set()
        if busy is not None:
            await busy
        await store.close()
    kept = took[WARM_UP:]
    return {
        "slice_ms": slice_s * 1000,
        "median_ms": statistics.median(kept) * 1000,
        "max_ms": max(kept) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.commit_overlap")
    parser.add_argument("--commits", type=int, default=12)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--slice-ms", type=float, default=100.0)
    args = parser.parse_args()
    results = []
    with fresh_database() as url:
        for tag, slice_s in (("idle", 0.0), ("busy", args.slice_ms / 1000)):
            figures = asyncio.run(series(url, tag, args.commits, args.events, slice_s))
            results.append(figures)
            print(
                f"{args.events} events a commit, loop {tag:4} ({figures['slice_ms']:.0f} ms runs):"
                f" median {figures['median_ms']:,.1f} ms, max {figures['max_ms']:,.1f} ms"
            )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "commit_overlap.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
