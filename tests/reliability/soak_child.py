"""Child process for the crash soak: publish a range of events, carry out the
outbox, print an ACK per durable receipt; SIGKILLed at random by the parent.

Usage: python -m tests.reliability.soak_child DB EFFECTS START END
"""

from __future__ import annotations

import asyncio
import os
import sys

from engine import ChartSet, Engine
from engine.logs import configure_logging
from engine.sample import chart_package
from engine.settings import EngineSettings
from tests.parcel_model import EVENT_TYPES, payload_for


def soak_event(n: int) -> tuple[str, str, dict]:
    """The n-th event of the soak stream: the same for every process."""
    event_type = "parcel.pack" if n % 4 == 0 else EVENT_TYPES[n % len(EVENT_TYPES)]
    return event_type, f"parcel:{n % 211}", payload_for(event_type, n)


async def main(db: str, effects: str, start: int, end: int) -> None:
    configure_logging("ERROR", json=True)
    handle = os.open(effects, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    async def notify(command):  # the outside world: an append-only, fsynced record
        os.write(handle, f"{command.idempotency_key}\n".encode())
        os.fsync(handle)

    engine = await Engine.open(
        db,
        charts=ChartSet.load([chart_package()]),
        handlers={"notify_buyer": notify},
        settings=EngineSettings(run_timers=False, outbox_interval=0.01),
    )
    out = sys.stdout
    for base in range(start, end, 50):
        futures = []
        for n in range(base, min(base + 50, end)):
            kind, key, payload = soak_event(n)
            futures.append(
                await engine.submit(
                    engine.make_event(kind, key, payload, event_id=f"soak-{n}", source="soak")
                )
            )
        for future in futures:
            receipt = await future
            out.write(f"ACK {receipt.event_id}\n")
        out.flush()
    await engine.outbox.run_until_idle()
    await engine.stop()
    out.write("DONE\n")
    out.flush()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
