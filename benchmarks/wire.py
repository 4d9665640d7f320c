"""Events from the wire: JSON text per event through `Engine.publish_raw`.

    python -m benchmarks.wire [--events 80000] [--entities 10000] [--rounds 3]

What a host does: it receives each event as JSON text, one request or message
at a time, and hands it to the engine with many calls in flight (``--in-flight``
callers, each awaiting its receipt before taking the next text). The texts are
built before the clock starts (the mix of benchmarks/throughput.py, without
``received_at``: the engine stamps it), and the engine runs as ``serve`` runs
it: writer process, collector tuned; logging at WARNING.

Two figures beside it, measured alternately with it in each round, so every
ratio is between figures of the same minutes on the same machine:

- the pre-built figure: the same events built and validated before the clock
  starts, one `submit` each (the headline ingest of benchmarks/throughput.py);
- its ceiling, raw sqlite3: ``json.loads`` of each text, append the event and
  upsert its entity, 1,000 a transaction, WAL, synchronous=FULL, minimal schema.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.throughput import RESULTS, make_events, peak
from engine import ChartSet, Engine
from engine.gc_tuning import tune_gc
from engine.logs import configure_logging
from engine.sample import chart_package
from engine.settings import EngineSettings

IN_FLIGHT = 2_000


def wire_texts(charts: ChartSet, count: int, entities: int, prefix: str) -> list[bytes]:
    """The throughput mix as JSON documents, as a host would receive them."""
    texts = []
    for event in make_events(charts, count, entities, prefix):
        document: dict[str, Any] = {
            "event_id": event.event_id,
            "type": event.type,
            "source": "bench",
            "entity": event.entity,
            "occurred_at": 1.7e9,
            "payload": event.payload_dict(),
        }
        texts.append(json.dumps(document, separators=(",", ":")).encode())
    return texts


async def publish_raw_rate(
    charts: ChartSet, count: int, entities: int, in_flight: int = IN_FLIGHT
) -> tuple[float, float]:
    """Events/s through `publish_raw` with ``in_flight`` callers, and the
    engine process's CPU microseconds per event. Every event must transition."""
    with tempfile.TemporaryDirectory() as folder:
        engine = await Engine.open(
            Path(folder) / "wire.db",
            charts=charts,
            settings=EngineSettings(run_timers=False, run_outbox=False, writer="process"),
        )
        texts = wire_texts(charts, count, entities, "wire")
        gc.freeze()
        pending = iter(texts)
        refused: list[str] = []

        async def caller() -> None:
            for text in pending:
                receipt = await engine.publish_raw(text, "bench")
                if receipt.outcome != "transitioned":
                    refused.append(f"{receipt.outcome}: {receipt.reason}")

        cpu_started = time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(in_flight)))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        await engine.stop()
    if refused:
        raise AssertionError(f"{len(refused)} events did not transition, first: {refused[0]}")
    return count / elapsed, cpu / count * 1e6


def raw_json_ceiling(texts: list[bytes]) -> float:
    """Events/s of ``json.loads`` + append event + upsert entity, 1,000 a
    transaction, WAL, synchronous=FULL, on a fresh file with a minimal schema:
    the least any engine could do with these texts durably."""
    with tempfile.TemporaryDirectory() as folder:
        conn = sqlite3.connect(Path(folder) / "raw.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(
            "CREATE TABLE events (seq INTEGER PRIMARY KEY, event_id TEXT UNIQUE,"
            " entity TEXT, payload TEXT, outcome TEXT)"
        )
        conn.execute(
            "CREATE TABLE entities (key TEXT PRIMARY KEY, state TEXT, data TEXT,"
            " version INTEGER) WITHOUT ROWID"
        )
        started = time.perf_counter()
        for base in range(0, len(texts), 1000):
            chunk = texts[base : base + 1000]
            documents = [json.loads(text) for text in chunk]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO events VALUES (?,?,?,?,?)",
                [
                    (base + n, d["event_id"], d["entity"], text, "transitioned")
                    for n, (d, text) in enumerate(zip(documents, chunk, strict=True))
                ],
            )
            conn.executemany(
                "INSERT INTO entities VALUES (?,?,?,1) ON CONFLICT(key) DO UPDATE"
                " SET state=excluded.state, data=excluded.data, version=version+1",
                [(d["entity"], d["type"], '{"weight_kg":1.0}') for d in documents],
            )
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        conn.close()
    return len(texts) / elapsed


async def measure(
    count: int, entities: int, rounds: int, in_flight: int = IN_FLIGHT
) -> dict[str, Any]:
    """``rounds`` rounds of the three figures, alternated; medians and runs."""
    charts = ChartSet.load([chart_package()])
    texts = wire_texts(charts, count, entities, "raw")
    wire, wire_cpu, prebuilt, prebuilt_cpu, ceiling = [], [], [], [], []
    for _ in range(rounds):
        ceiling.append(raw_json_ceiling(texts))
        rate, cpu = await publish_raw_rate(charts, count, entities, in_flight)
        wire.append(rate)
        wire_cpu.append(cpu)
        built = await peak(charts, count, entities, writer="process")
        prebuilt.append(built.events_per_s)
        prebuilt_cpu.append(built.loop_cpu_us)
    median = statistics.median
    return {
        "benchmark": "wire",
        "events": count,
        "entities": entities,
        "in_flight": in_flight,
        "configuration": "writer process, GC tuned, logging WARNING",
        "publish_raw_per_s_median": round(median(wire)),
        "publish_raw_runs": [round(r) for r in wire],
        "publish_raw_cpu_us_per_event": round(median(wire_cpu), 2),
        "prebuilt_per_s_median": round(median(prebuilt)),
        "prebuilt_runs": [round(r) for r in prebuilt],
        "prebuilt_cpu_us_per_event": round(median(prebuilt_cpu), 2),
        "raw_json_sqlite_per_s_median": round(median(ceiling)),
        "raw_json_sqlite_runs": [round(r) for r in ceiling],
        "ratio_to_prebuilt": round(median(w / p for w, p in zip(wire, prebuilt, strict=True)), 3),
        "ratio_to_raw": round(median(w / c for w, c in zip(wire, ceiling, strict=True)), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=80_000)
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--in-flight", type=int, default=IN_FLIGHT)
    args = parser.parse_args()
    tune_gc()
    with open("/dev/null", "w") as sink:
        configure_logging("WARNING", json=True, stream=sink)
        result = asyncio.run(measure(args.events, args.entities, args.rounds, args.in_flight))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "wire.json").write_text(json.dumps(result, indent=2))
    print(
        f"publish_raw, JSON per event, {args.in_flight} in flight: "
        f"{result['publish_raw_per_s_median']:,}/s (runs {result['publish_raw_runs']}, "
        f"{result['publish_raw_cpu_us_per_event']} us CPU an event) = "
        f"{result['ratio_to_prebuilt']} of pre-built {result['prebuilt_per_s_median']:,}/s "
        f"(runs {result['prebuilt_runs']}), {result['ratio_to_raw']} of raw sqlite3 + json.loads "
        f"{result['raw_json_sqlite_per_s_median']:,}/s (runs {result['raw_json_sqlite_runs']})"
    )


if __name__ == "__main__":
    main()
