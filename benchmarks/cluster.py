"""Issue 16's figures: the cluster against one SQLite process and raw PostgreSQL, in one run.

    python -m benchmarks.cluster [--events 12000] [--workers 1,2,4] [--webhooks 3000]
    python -m benchmarks --only cluster

On this machine's PostgreSQL and NATS JetStream (the test servers of
engine.testing.services), each part on a database and a stream of its own,
dropped at the end:

- **raw PostgreSQL**: the ceiling, a plain batched insert of the same rows
  (each event's row, its entity's row upserted) in transactions of 256 events.
- **one SQLite process**: the same events through `Engine.submit` on a SQLite
  file (the embedded default: writer thread, synchronous=FULL).
- **N worker processes** (1, 2, 4): the events are first published to the
  stream (a backlog); then N worker processes (`engine.cluster.worker` on the
  sample parcel chart, a fresh PostgreSQL database each time) lease the
  partitions and drain it. The rate is taken from the moment the leases are
  balanced (every worker holds at most its fair share, all 256 held) to the
  last commit, so joining and rebalancing are left out; the same window's CPU
  of the worker processes (/proc) divided by its events is their per-event CPU.
  The window opens with the partitions' feeds being made (JetStream creates a
  consumer for each); how long until its first commit is reported, and from
  then to the last commit the CPU an event of the run database's PostgreSQL
  backends and of the NATS server (the whole server, when it runs on this
  machine: other clients' work counts too).
- **receiver**: a receiver-role process (`channelsync.receiver_role`) takes
  signed TikTok webhooks on keep-alive connections; the time from writing a
  request to reading its 200 (sent after JetStream's ack) gives p50/p99, and
  the process's CPU over the load divided by the webhooks its per-event CPU.

PostgreSQL's and NATS's own CPU is not counted in the workers' per-event
figures; it is reported beside them. Writes results/cluster.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from engine import ChartSet, Engine
from engine.cluster.jetstream import JetStreamPublisher, connect_bus, ensure_stream
from engine.cluster.leases import Leases, fair_share
from engine.cluster.partitions import PARTITIONS
from engine.sample import chart_package
from engine.settings import EngineSettings
from engine.store.postgres import PostgresStore
from engine.testing.services import fresh_database, nats_url, postgres_url, unique_name

RESULTS = Path(__file__).parent / "results"
# Seconds a worker run may take at the most before it is given up (the run
# is then reported as incomplete, not hung).
RUN_LIMIT = 90.0
POLL = 0.05


def production_logging() -> None:
    """As serve logs (JSON lines, INFO), to /dev/null: every process of the run alike."""
    from engine.logs import configure_logging

    # CHANNELSYNC_BENCH_LOG: a file to keep the lines in, to see what a run did.
    target = os.environ.get("CHANNELSYNC_BENCH_LOG") or os.devnull
    configure_logging("INFO", json=True, stream=open(target, "a"))  # noqa: SIM115


def build_events(count: int) -> list[Any]:
    """The throughput benchmark's parcel mix: every event transitions."""
    from benchmarks.throughput import make_events

    charts = ChartSet.load([chart_package()])
    return make_events(charts, count, max(count // 10, 1), unique_name("c"))


def cpu_seconds(pid: int) -> float:
    """User + system CPU a live process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ ceilings


def raw_postgres(events: list[Any], batch: int = 256) -> float:
    """Events/s of a plain batched insert of the same rows (events, entities upserted)."""
    rows = [
        (n + 1, e.event_id, e.type, e.entity, e.payload.model_dump_json(), e.received_at)
        for n, e in enumerate(events)
    ]
    with fresh_database() as url, psycopg.connect(url) as conn:
        conn.execute(
            "CREATE TABLE events (seq BIGINT PRIMARY KEY, event_id TEXT NOT NULL UNIQUE,"
            " type TEXT NOT NULL, entity TEXT NOT NULL, payload TEXT NOT NULL,"
            " received_at DOUBLE PRECISION)"
        )
        conn.execute(
            "CREATE TABLE entities (key TEXT PRIMARY KEY, state TEXT NOT NULL, seq BIGINT NOT NULL)"
        )
        conn.commit()
        started = time.perf_counter()
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany("INSERT INTO events VALUES (%s, %s, %s, %s, %s, %s)", chunk)
                cur.executemany(
                    "INSERT INTO entities VALUES (%s, %s, %s) ON CONFLICT (key)"
                    " DO UPDATE SET state = EXCLUDED.state, seq = EXCLUDED.seq",
                    [(r[3], r[2], r[0]) for r in chunk],
                )
        return len(rows) / (time.perf_counter() - started)


async def _one_process(target: str | Path, events: list[Any]) -> dict[str, float]:
    engine = await Engine.open(
        target, [chart_package()], settings=EngineSettings(run_timers=False, run_outbox=False)
    )
    try:
        cpu, started = time.process_time(), time.perf_counter()
        futures = [await engine.submit(e) for e in events]
        await asyncio.gather(*futures)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
    finally:
        await engine.stop()
    return {"events_per_s": len(events) / elapsed, "cpu_us_per_event": cpu * 1e6 / len(events)}


def single_sqlite(events: list[Any]) -> dict[str, float]:
    """The embedded default on the same events: one process, one SQLite file."""
    with tempfile.TemporaryDirectory() as folder:
        return asyncio.run(_one_process(Path(folder) / "one.db", events))


def single_postgres(events: list[Any]) -> dict[str, float]:
    """One engine process on PostgreSQL (no bus, no leases): the store's own cost,
    and the write-ahead log it writes an event (the server's whole WAL over the
    run: other clients of a shared server add to it)."""
    with fresh_database() as url, psycopg.connect(url, autocommit=True) as conn:
        lsn = "SELECT pg_current_wal_lsn()"
        (before,) = conn.execute(lsn).fetchone() or ("0/0",)
        result = asyncio.run(_one_process(url, events))
        (wal,) = conn.execute(f"SELECT pg_wal_lsn_diff(({lsn}), %s)", (before,)).fetchone() or (0,)
    result["wal_bytes_per_event"] = float(wal) / len(events)
    return result


# ------------------------------------------------------------------ workers


async def fill_stream(bus: str, stream: str, prefix: str, events: list[Any]) -> None:
    """Publish every event to its partition's subject (acknowledged, in order per entity)."""
    conn = await connect_bus(bus)
    try:
        await ensure_stream(conn.js, stream=stream, prefix=prefix)
        publisher = JetStreamPublisher(conn.js, stream=stream, prefix=prefix)
        # One entity's events must be stored in order: a window of concurrent
        # publishes never holds two events of one entity.
        window: dict[str, Any] = {}
        for event in events:
            if event.entity in window or len(window) >= 256:
                await asyncio.gather(*window.values())
                window.clear()
            body = event.model_dump_json().encode()
            window[event.entity] = asyncio.ensure_future(
                publisher.publish(event.event_id, event.entity, body)
            )
        await asyncio.gather(*window.values())
    finally:
        await conn.close()


async def prepare_database(url: str, members: list[str]) -> None:
    """Schema and lease tables made once, before the workers race to make them;
    ``members`` announced as live workers, so that each one's first round
    takes its fair share, not all 256 partitions to hand back later (the run
    measures draining, not rebalancing)."""
    charts = ChartSet.load([chart_package()])
    store = await PostgresStore.open(url, migrations=charts.migrations)
    await store.close()
    leases = await Leases.connect(url, "benchmark-setup")
    try:
        async with leases.conn.transaction():
            for member in members:
                await leases.conn.execute(
                    "INSERT INTO cluster_workers (worker_id, host, pid, expires_at)"
                    " VALUES (%s, 'benchmark', 0, now() + interval '60 seconds')",
                    (member,),
                )
    finally:
        await leases.close()


def _poll(url: str, count: int) -> tuple[int, bool]:
    """Events committed so far, and whether the leases are balanced among ``count``."""
    with psycopg.connect(url, autocommit=True) as conn:
        (done,) = conn.execute("SELECT count(*) FROM events").fetchone() or (0,)
        held = conn.execute(
            "SELECT owner, count(*) FROM partition_leases"
            " WHERE owner IS NOT NULL AND expires_at > now() GROUP BY owner"
        ).fetchall()
    share = fair_share(PARTITIONS, count)
    balanced = (
        len(held) == count
        and sum(n for _, n in held) == PARTITIONS
        and max(n for _, n in held) <= share
    )
    return int(done), balanced


def worker_run(bus: str, stream: str, prefix: str, total: int, count: int) -> dict[str, Any]:
    """``count`` worker processes drain the stream into a fresh database. Their
    log lines (and anything else they print) go to files, read afterwards: a
    pipe nobody reads would block a chatty worker mid-run."""
    with fresh_database() as url, tempfile.TemporaryDirectory() as folder:
        members = [f"bench-{n}" for n in range(count)]
        asyncio.run(prepare_database(url, members))
        argv = [sys.executable, "-m", "benchmarks.cluster", "--child-worker", url, bus, stream]
        logs = Path(folder) / "workers.jsonl"
        env = {**os.environ, "CHANNELSYNC_BENCH_LOG": str(logs)}
        children = []
        for n in range(count):
            with open(Path(folder) / f"stderr-{n}", "w") as err:
                children.append(
                    subprocess.Popen([*argv, prefix, members[n]], stdout=err, stderr=err, env=env)
                )
        try:
            result = _watch(url, children, total, count)
        except RuntimeError as error:
            printed = "".join(p.read_text() for p in sorted(Path(folder).glob("stderr-*")))
            raise RuntimeError(f"{error}; it printed: {printed[-3000:]}") from None
        finally:
            for child in children:
                child.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    child.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
        result["warnings"] = _warnings(logs)
        printed = "".join(p.read_text() for p in sorted(Path(folder).glob("stderr-*")))
        if printed:
            result["printed"] = printed[-2000:]
        return result


def _warnings(logs: Path) -> dict[str, Any]:
    """How many log lines of each event the workers wrote at warning or error,
    with the first one's error or reason."""
    counts: dict[str, Any] = {}
    if logs.exists():
        for line in logs.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("level") not in ("warning", "error"):
                continue
            seen = counts.setdefault(entry["event"], {"count": 0})
            seen["count"] += 1
            for field in ("error", "error_type", "reason"):
                if field in entry and field not in seen:
                    seen[field] = str(entry[field])[:300]
    return counts


def servers_cpu(url: str) -> tuple[float, float | None]:
    """CPU seconds so far of the PostgreSQL backends serving ``url``'s database
    (those alive now) and of a NATS server on this machine (None if none is)."""
    with psycopg.connect(url, autocommit=True) as conn:
        pids = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        ).fetchall()
    postgres = 0.0
    for (pid,) in pids:
        with contextlib.suppress(OSError):  # a backend that ended meanwhile
            postgres += cpu_seconds(pid)
    nats = [p for p in Path("/proc").glob("[0-9]*") if _comm(p) == "nats-server"]
    return postgres, (cpu_seconds(int(nats[0].name)) if nats else None)


def _comm(process: Path) -> str:
    try:
        return (process / "comm").read_text().strip()
    except OSError:
        return ""


def _watch(url: str, children: list[Any], total: int, count: int) -> dict[str, Any]:
    """Poll the database until every event is committed; the balanced window's
    figures, and the servers' CPU from the window's first commit to its last."""
    started = time.perf_counter()
    window: tuple[float, int, float] | None = None  # (time, events, workers' CPU)
    first: tuple[float, int, tuple[float, float | None]] | None = None
    done = 0
    while done < total and time.perf_counter() - started < RUN_LIMIT:
        if any(child.poll() is not None for child in children):
            raise RuntimeError("a worker process ended before the stream was drained")
        done, balanced = _poll(url, count)
        if window is None and balanced:
            window = (time.perf_counter(), done, sum(cpu_seconds(c.pid) for c in children))
        if window is not None and first is None and done > window[1]:
            first = (time.perf_counter(), done, servers_cpu(url))
        time.sleep(POLL)
    ended = time.perf_counter()
    cpu_end = sum(cpu_seconds(c.pid) for c in children)
    result: dict[str, Any] = {"workers": count, "committed": done, "complete": done >= total}
    result["seconds_to_balance"] = None if window is None else round(window[0] - started, 2)
    if window is not None and done > window[1]:
        events = done - window[1]
        result["window_events"] = events
        result["events_per_s"] = events / (ended - window[0])
        result["cpu_us_per_event"] = (cpu_end - window[2]) * 1e6 / events
    if window is not None and first is not None and done > first[1]:
        result["seconds_to_first_commit"] = round(first[0] - window[0], 2)
        result["servers_us_per_event"] = _servers(url, first[2], done - first[1])
    return result


def _servers(url: str, before: tuple[float, float | None], events: int) -> dict[str, Any]:
    postgres, nats = servers_cpu(url)
    return {
        "postgres": (postgres - before[0]) * 1e6 / events,
        "nats": None if nats is None or before[1] is None else (nats - before[1]) * 1e6 / events,
    }


async def _worker_child(url: str, bus: str, stream: str, prefix: str, member: str) -> None:
    from engine.cluster.worker import EngineOnly, Worker, WorkerSettings

    production_logging()
    charts = ChartSet.load([chart_package()])

    async def notify_buyer(command: Any) -> None:
        return None  # the platform call a real handler makes is not what is measured

    async def open_engine(store: str, settings: EngineSettings) -> EngineOnly:
        engine = await Engine.open(
            store, charts=charts, settings=settings, handlers={"notify_buyer": notify_buyer}
        )
        return EngineOnly(engine)

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    settings = WorkerSettings(url, bus, stream, prefix, worker_id=member)
    await Worker(settings, open_engine).run(stop)


# ------------------------------------------------------------------ receiver


async def _receiver_child(url: str, bus: str, stream: str, prefix: str, port: str) -> None:
    from adapters.sandbox import story
    from channelsync.receiver_role import open_receiver
    from channelsync.settings import ChannelSettings

    production_logging()
    settings = ChannelSettings(
        db=Path("unused.db"), tiktok_app_key=story.APP_KEY, tiktok_app_secret=story.APP_SECRET
    )
    role = await open_receiver(settings, store=url, bus=bus, stream=stream, prefix=prefix)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await role.serve("127.0.0.1", int(port))
        print("ready", flush=True)
        await stop.wait()
    finally:
        await role.stop()


def receiver_run(bus: str, webhooks: int, concurrency: int) -> dict[str, Any]:
    """Acknowledge latency and CPU of one receiver process publishing to JetStream."""
    from adapters.sandbox.load import free_port, raw_request, webhook_bodies
    from benchmarks.webhooks import blast

    stream, prefix = unique_name("BENCH_RECV"), unique_name("bench.recv").replace("_", ".")
    port = free_port()
    with fresh_database() as url, tempfile.TemporaryFile("w+") as err:
        argv = [sys.executable, "-m", "benchmarks.cluster", "--child-receiver", url, bus, stream]
        child = subprocess.Popen(
            [*argv, prefix, str(port)], stdout=subprocess.PIPE, stderr=err, text=True
        )
        try:
            if child.stdout is None or child.stdout.readline().strip() != "ready":
                err.seek(0)
                raise RuntimeError(f"the receiver did not start: {err.read()[-2000:]}")

            def requests(count: int, tag: str) -> list[bytes]:
                bodies = webhook_bodies(count, unique_name(tag))
                return [raw_request("127.0.0.1", port, "/webhooks/tiktok", b) for b in bodies]

            asyncio.run(blast("127.0.0.1", port, requests(300, "warm"), concurrency))
            load = requests(webhooks, "load")
            cpu = cpu_seconds(child.pid)
            figures = asyncio.run(blast("127.0.0.1", port, load, concurrency))
            figures["cpu_us_per_webhook"] = (cpu_seconds(child.pid) - cpu) * 1e6 / webhooks
        finally:
            child.send_signal(signal.SIGTERM)
            child.wait(timeout=20)
            asyncio.run(_drop_stream(bus, stream))
    figures["concurrency"] = concurrency
    return figures


async def _drop_stream(bus: str, stream: str) -> None:
    conn = await connect_bus(bus)
    try:
        await conn.js.delete_stream(stream)
    finally:
        await conn.close()


# ------------------------------------------------------------------ the run


def run(events: int, workers: list[int], webhooks: int, concurrency: int) -> dict[str, Any]:
    """Every part in this order, each on its own database and stream."""
    postgres_url()  # fail now, with the reason, when a server is missing
    bus = nats_url()
    made = build_events(events)
    results: dict[str, Any] = {"events": events, "cores": os.cpu_count()}
    results["raw_postgres_per_s"] = raw_postgres(made)
    results["single_sqlite"] = single_sqlite(made)
    results["single_postgres"] = single_postgres(made)
    stream, prefix = unique_name("BENCH_EVENTS"), unique_name("bench.events").replace("_", ".")
    try:
        started = time.perf_counter()
        asyncio.run(fill_stream(bus, stream, prefix, made))
        results["publish_per_s"] = events / (time.perf_counter() - started)
        results["workers"] = [worker_run(bus, stream, prefix, events, n) for n in workers]
    finally:
        asyncio.run(_drop_stream(bus, stream))
    results["receiver"] = receiver_run(bus, webhooks, concurrency)
    one = next((r for r in results["workers"] if r["workers"] == 1), None)
    for row in results["workers"]:
        rate = row.get("events_per_s")
        if one and one.get("events_per_s") and rate:
            row["vs_one_worker"] = rate / one["events_per_s"]
    return results


def report(results: dict[str, Any]) -> list[tuple[str, str]]:
    """The figures as table rows (measure, figure)."""
    raw, sqlite = results["raw_postgres_per_s"], results["single_sqlite"]
    rows = [
        ("raw PostgreSQL batched insert (events/s)", f"{raw:,.0f}"),
        (
            "one SQLite process (events/s)",
            f"{sqlite['events_per_s']:,.0f}, {sqlite['cpu_us_per_event']:.0f} us CPU/event",
        ),
        (
            "one process on PostgreSQL, no bus (events/s)",
            f"{results['single_postgres']['events_per_s']:,.0f},"
            f" {results['single_postgres']['cpu_us_per_event']:.0f} us CPU/event",
        ),
        (
            "  PostgreSQL WAL per event",
            f"{results['single_postgres']['wal_bytes_per_event']:,.0f} B",
        ),
        ("publish to JetStream, one client (events/s)", f"{results['publish_per_s']:,.0f}"),
    ]
    for row in results["workers"]:
        rate = row.get("events_per_s")
        figure = "incomplete" if rate is None else f"{rate:,.0f} = {rate / raw:.2f} of raw PG"
        if rate is not None and "vs_one_worker" in row:
            figure += f", {row['vs_one_worker']:.2f}x one"
        rows.append((f"{row['workers']} worker process(es) (events/s)", figure))
        if row.get("warnings"):
            rows.append(("  worker warnings", json.dumps(row["warnings"])))
        if "cpu_us_per_event" in row:
            rows.append(("  worker CPU per event", f"{row['cpu_us_per_event']:.0f} us"))
        if "servers_us_per_event" in row:
            rows.append(_servers_row(row))
    hooks = results["receiver"]
    rows += [
        (
            f"receiver acks via JetStream (/s, {hooks['concurrency']} conns)",
            f"{hooks['per_second']:,.0f}",
        ),
        ("  ack latency p50 / p99", f"{hooks['p50_ms']:.1f} / {hooks['p99_ms']:.1f} ms"),
        ("  receiver CPU per webhook", f"{hooks['cpu_us_per_webhook']:.0f} us"),
    ]
    return rows


def _servers_row(row: dict[str, Any]) -> tuple[str, str]:
    servers = row["servers_us_per_event"]
    nats = "?" if servers["nats"] is None else f"{servers['nats']:.0f}"
    return (
        "  first commit after (s); PG, NATS CPU/event",
        f"{row['seconds_to_first_commit']:.2f}; {servers['postgres']:.0f}, {nats} us",
    )


def main() -> None:
    production_logging()
    if len(sys.argv) > 1 and sys.argv[1] in ("--child-worker", "--child-receiver"):
        child = _worker_child if sys.argv[1] == "--child-worker" else _receiver_child
        asyncio.run(child(*sys.argv[2:]))  # type: ignore[operator]
        return
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cluster")
    parser.add_argument("--events", type=int, default=12_000)
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--webhooks", type=int, default=3_000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    results = run(args.events, counts, args.webhooks, args.concurrency)
    for name, figure in report(results):
        print(f"{name:52} {figure}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cluster.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
