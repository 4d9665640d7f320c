"""Child process for the SIGKILL tests: publish a stream, print an ACK per receipt.

Usage: python -m tests.reliability.crash_child DB START COUNT
"""

from __future__ import annotations

import asyncio
import sys

from engine import ChartSet, Engine
from engine.logs import configure_logging
from engine.sample import chart_package
from engine.settings import EngineSettings
from tests.parcel_model import EVENT_TYPES, payload_for

FRESH_PARCELS = 100_000


async def main(db: str, start: int, count: int) -> None:
    configure_logging("ERROR", json=True)
    engine = await Engine.open(
        db,
        charts=ChartSet.load([chart_package()]),
        settings=EngineSettings(run_timers=False, run_outbox=False),
    )
    out = sys.stdout
    window = 64
    for base in range(start, start + count, window):
        events = []
        for n in range(base, min(base + window, start + count)):
            if n >= FRESH_PARCELS:  # one pack each: parcels left packed, with a timer armed
                event_type, key = "parcel.pack", f"parcel:{n}"
            else:
                event_type = "parcel.pack" if n % 3 == 0 else EVENT_TYPES[n % len(EVENT_TYPES)]
                key = f"parcel:{n % 97}"
            events.append(
                engine.make_event(
                    event_type,
                    key,
                    payload_for(event_type, n),
                    event_id=f"ev-{n}",
                    source="crash-test",
                )
            )
        futures = [await engine.submit(e) for e in events]
        for future in asyncio.as_completed(futures):
            receipt = await future
            out.write(f"ACK {receipt.event_id} {receipt.outcome}\n")
        out.flush()
    await engine.stop()
    out.write("DONE\n")
    out.flush()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
