"""Child process for the outbox takeover test: a dispatcher on a shared database.

It holds the database's lock (the parent's engine opens without it), runs the
outbox with a short lease, appends ``child <key>`` to CALLS for every command
it starts, and hangs forever inside the command of entity ``parcel:hang``
(printing ``hanging``) until the parent SIGKILLs it.

Usage: python -m tests.integration.claim_child DB CALLS LEASE
"""

from __future__ import annotations

import asyncio
import os
import sys

from engine import ChartSet, Engine
from engine.logs import configure_logging
from engine.outbox import OutboxCommand
from engine.sample import chart_package
from engine.settings import EngineSettings


async def main(db: str, calls: str, lease: float) -> None:
    configure_logging("ERROR", json=True)
    handle = os.open(calls, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    async def notify(command: OutboxCommand) -> None:
        os.write(handle, f"child {command.idempotency_key}\n".encode())
        if command.entity == "parcel:hang":
            print("hanging", flush=True)
            await asyncio.Event().wait()

    engine = await Engine.open(
        db,
        charts=ChartSet.load([chart_package()]),
        handlers={"notify_buyer": notify},
        settings=EngineSettings(run_timers=False, outbox_interval=0.01, outbox_lease=lease),
    )
    await asyncio.Event().wait()
    await engine.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
