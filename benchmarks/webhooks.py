"""Signed webhooks per second through `channelsync serve`, and their p99.

    python -m benchmarks.webhooks [--count 20000] [--concurrency 64]

Starts `channelsync serve` as its own process on loopback (SQLite, fsync on),
then sends signed TikTok webhooks (type 12, a return request: each one event)
from a load generator in a third process: keep-alive HTTP/1.1 on
``concurrency`` connections, written with asyncio streams so the client costs
a few microseconds a request (httpx would spend more CPU than the server it
measures). Latency is from writing a request to reading its 200, which
`serve` sends only after the event is committed. At the end every
acknowledged webhook must be in the log.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from adapters.sandbox.load import free_port, raw_request, start_serve, webhook_bodies
from benchmarks.throughput import process_cpu

RESULTS = Path(__file__).parent / "results"


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def blast(host: str, port: int, requests: list[bytes], concurrency: int) -> dict:
    """Send every request over ``concurrency`` keep-alive connections, one
    request in flight per connection; statuses and latencies."""
    queue = list(reversed(requests))
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while queue:
                request = queue.pop()
                started = time.perf_counter()
                writer.write(request)
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "sent": len(requests),
        "statuses": statuses,
        "acknowledged": statuses.get(200, 0),
        "seconds": elapsed,
        "per_second": len(requests) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(0.99 * (len(latencies) - 1))] * 1000,
        "max_ms": latencies[-1] * 1000,
    }


def _client_main() -> None:
    """The load generator's own process: ``host port concurrency count prefix``."""
    host, port, concurrency, count, prefix = sys.argv[2:7]
    bodies = webhook_bodies(int(count), prefix)
    requests = [raw_request(host, int(port), "/webhooks/tiktok", body) for body in bodies]
    try:
        import uvloop

        run = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        run = asyncio.run
    print(json.dumps(run(blast(host, int(port), requests, int(concurrency)))))


def run_load(count: int, concurrency: int, warmup: int = 1_000) -> dict:
    """Start serve, warm it up, measure ``count`` webhooks, check the log."""
    with tempfile.TemporaryDirectory() as folder:
        db, port = Path(folder) / "webhooks.db", free_port()
        server = asyncio.run(start_serve(db, port))
        try:
            client = [sys.executable, "-m", "benchmarks.webhooks", "--client", "127.0.0.1"]
            subprocess.run(
                [*client, str(port), str(concurrency), str(warmup), "warmup"],
                check=True,
                capture_output=True,
            )
            cpu_started = process_cpu(server.pid)
            output = subprocess.run(
                [*client, str(port), str(concurrency), str(count), "load"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            cpu_ended = process_cpu(server.pid)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        figures = json.loads(output.strip().splitlines()[-1])
        with sqlite3.connect(db) as conn:
            figures["logged"] = conn.execute(
                "SELECT COUNT(*) FROM events WHERE event_id LIKE 'tiktok:load-%'"
            ).fetchone()[0]
    figures["concurrency"] = concurrency
    # serve's own process (its loop and threads; the writer process is a child of
    # its own): what one webhook costs it, the figure load moves least.
    if cpu_started is not None and cpu_ended is not None:
        figures["serve_cpu_us_per_webhook"] = (cpu_ended - cpu_started) / count * 1e6
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [run_load(args.count, args.concurrency) for _ in range(args.runs)]
    best = sorted(runs, key=lambda r: r["per_second"])[len(runs) // 2]
    result = {
        "benchmark": "webhooks",
        "count": args.count,
        "concurrency": args.concurrency,
        "per_second_median": round(best["per_second"]),
        "p50_ms": round(best["p50_ms"], 1),
        "p99_ms": round(best["p99_ms"], 1),
        "serve_cpu_us_per_webhook": round(best.get("serve_cpu_us_per_webhook", 0.0)),
        "runs": [
            {k: (round(v, 1) if isinstance(v, float) else v) for k, v in r.items()} for r in runs
        ],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "webhooks.json").write_text(json.dumps(result, indent=2))
    for r in runs:
        print(
            f"{r['sent']} webhooks, {r['concurrency']} connections: {r['per_second']:,.0f}/s, "
            f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms; statuses {r['statuses']}, "
            f"serve CPU {r.get('serve_cpu_us_per_webhook', 0):.0f} us a webhook, "
            f"{r['logged']} in the log"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        _client_main()
    else:
        main()
