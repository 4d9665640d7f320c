"""One cluster worker process for the tests (kill -9, SIGSTOP), on the sample
parcel chart. Its ``notify_buyer`` handler records each run in the table
``notified`` (the test creates it) under the command's idempotency key, with
the pid that ran it: what a platform deduplicating by key would see.

    python -m tests.cluster.worker_child STORE BUS STREAM PREFIX LEASE_TTL
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

import psycopg

from engine import ChartSet, Engine
from engine.cluster.worker import EngineOnly, Worker, WorkerSettings
from engine.logs import configure_logging
from engine.outbox import OutboxCommand
from engine.sample import chart_package
from engine.settings import EngineSettings

# Commands run again only after their claim ran out: short, so a killed
# claimant's command is taken over within the test's patience.
CHARTS = ChartSet.load([chart_package()])
SETTINGS = EngineSettings(outbox_interval=0.05, outbox_lease=2.0, timer_interval=0.2)


async def open_engine(url: str, settings: EngineSettings, record: Any) -> EngineOnly:
    engine = await Engine.open(
        url, charts=CHARTS, settings=settings, handlers={"notify_buyer": record}
    )
    return EngineOnly(engine)


def recorder(effects: psycopg.AsyncConnection[Any], tag: int, *, reply: bool = False) -> Any:
    """The notify_buyer handler: one row a key, with every runner's tag; with
    ``reply``, it answers with a note on the parcel (a result event)."""

    async def record(command: OutboxCommand) -> list[dict[str, Any]] | None:
        await effects.execute(
            "INSERT INTO notified (key, parcel, pids) VALUES (%s, %s, ARRAY[%s])"
            " ON CONFLICT (key) DO UPDATE SET pids = notified.pids || %s",
            (command.idempotency_key, command.entity, tag, tag),
        )
        if not reply:
            return None
        note = {"text": "buyer notified"}
        return [
            {
                "event_id": f"{command.idempotency_key}:reply",
                "type": "parcel.note",
                "entity": command.entity,
                "source": "test",
                "payload": note,
            }
        ]

    return record


async def main(store: str, bus: str, stream: str, prefix: str, ttl: float) -> None:
    configure_logging("INFO", json=True)
    effects = await psycopg.AsyncConnection.connect(store, autocommit=True)
    pid = os.getpid()
    record = recorder(effects, pid)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    def dump() -> None:
        for task in asyncio.all_tasks():
            task.print_stack(file=sys.stderr)
        sys.stderr.flush()

    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump)
    worker = Worker(
        WorkerSettings(store, bus, stream, prefix, lease_ttl=ttl, worker_id=f"child-{pid}"),
        lambda url, settings: open_engine(url, settings, record),
        SETTINGS,
    )
    try:
        await worker.run(stop)
    finally:
        await effects.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5], float(sys.argv[5])))
