"""`channelsync demo`: a short story played through the engine on a SQLite file."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from engine.cli.common import out
from engine.cli.in_use import refused_when_in_use
from engine.clock import FakeClock
from engine.settings import EngineSettings


async def play_parcel_story(db: Path) -> None:
    """The engine on its own: three parcels, a refused shipment, a timer, a duplicate."""
    # Imported here: this module is imported to build the command line.
    from engine.chartset import discover_packages
    from engine.runtime import Engine

    clock = FakeClock()
    package = discover_packages()["sample"]
    engine = await Engine.open(
        db, [package], clock=clock, settings=EngineSettings(run_timers=False, run_outbox=False)
    )
    try:

        async def say(event_type: str, entity: str, event_id: str, **payload: object) -> None:
            receipt = await engine.publish(
                engine.make_event(event_type, entity, payload, event_id=event_id, source="demo")
            )
            change = (
                f"{receipt.from_state} -> {receipt.to_state}"
                if receipt.outcome == "transitioned"
                else f"{receipt.outcome} ({receipt.reason})"
            )
            out.print(f"  {entity:<10} {event_type:<22} {change}", highlight=False)

        out.print("[bold]Parcels[/bold]")
        await say("parcel.pack", "parcel:1", "p1-pack", weight_kg=1.2)
        await say("parcel.pack", "parcel:2", "p2-pack", weight_kg=0.4)
        await say("parcel.pack", "parcel:3", "p3-pack", weight_kg=3.0)
        await say("parcel.ship", "parcel:1", "p1-ship-1")
        await say("parcel.ship", "parcel:1", "p1-ship-2", tracking_number="1Z999AA10123456784")
        await say("parcel.ship", "parcel:1", "p1-ship-2", tracking_number="1Z999AA10123456784")
        await say("parcel.cancel", "parcel:3", "p3-cancel")
        out.print("  ... two hours pass on the demo clock")
        clock.advance(2 * 3600)
        fired = await engine.fire_due_timers()
        out.print(f"  {fired} timer(s) fired")
        await say("parcel.deliver", "parcel:1", "p1-deliver")
        out.print("[bold]Final states[/bold]")
        for entity in await engine.entities():
            out.print(f"  {entity.key:<10} {entity.state:<10} {entity.data}", highlight=False)
    finally:
        await engine.stop()


DEMO_ENTRY_POINT_GROUP = "channelsync.demo"


def register(app: typer.Typer) -> None:
    app.command()(demo)


def demo(
    db: Annotated[Path | None, typer.Option("--db", help="Keep the database here.")] = None,
    engine_only: Annotated[
        bool, typer.Option("--engine-only", help="The engine's own parcel story.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show the engine's log.")] = False,
) -> None:
    """Play a merchant story on a fresh SQLite file: the installed channel's
    (over loopback HTTP against its sandboxes), or the engine's own."""
    from importlib.metadata import entry_points

    from engine.logs import configure_logging

    configure_logging("DEBUG" if verbose else "WARNING")
    if db is None:
        db = Path(tempfile.mkdtemp(prefix="channelsync-demo-")) / "demo.db"
    elif db.exists():
        raise typer.BadParameter(f"{db} exists; the demo wants a fresh file", param_hint="--db")
    stories = list(entry_points(group=DEMO_ENTRY_POINT_GROUP))
    # A fresh file, but another demo may have just been started on the same path.
    with refused_when_in_use():
        if stories and not engine_only:
            stories[0].load()(db)
        else:
            asyncio.run(play_parcel_story(db))
    out.print(f"Database: {db}", highlight=False)
