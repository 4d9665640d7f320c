"""`channelsync export` and `channelsync ingest`: the event log as a JSONL file."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from engine.cli.common import (
    DbOption,
    StoreOption,
    fail,
    load_charts,
    open_existing,
    out,
    progress,
    store_target,
)
from engine.cli.in_use import refused_when_in_use
from engine.gc_tuning import tune_gc
from engine.settings import EngineSettings

if TYPE_CHECKING:
    from engine.runtime import Engine

# The log file, replay and the engine are imported by the commands that use
# them: this module is imported to build the command line (engine/cli/main.py).

# Events handed to the engine at once while ingesting: big enough to travel in
# groups, small enough to show progress.
INGEST_WINDOW = 5000


def register(app: typer.Typer) -> None:
    app.command()(export)
    app.command()(ingest)


def export(
    out_file: Annotated[Path, typer.Option("--out", help="The JSONL file to write.")],
    db: DbOption = None,
    entity: Annotated[str | None, typer.Option("--entity", help="Only this entity.")] = None,
    since: Annotated[int, typer.Option("--since", help="Only events after this seq.")] = 0,
    redact: Annotated[
        bool,
        typer.Option("--redact", help="Replace buyers' personal data (sealed or not) by a marker."),
    ] = False,
    store_url: StoreOption = None,
) -> None:
    """Write the event log (one event a line, with its recorded outcome) as JSONL.
    With --since, the file also carries the state at that seq of each entity
    its events touch (rebuilt by replay), which `replay FILE` starts from.
    With --redact, the file can be shared: no buyer's personal data, not even sealed."""
    from engine.logfile import export_log
    from engine.replay import ReplayError

    target = store_target(db, store_url)
    charts = load_charts() if since > 0 else None

    async def run() -> int:
        store = await open_existing(target)
        try:
            with out_file.open("wb") as handle:
                return await export_log(
                    store,
                    handle,
                    entity=entity,
                    since_seq=since,
                    exported_at=datetime.now(UTC).timestamp(),
                    charts=charts,
                    redact=redact,
                )
        finally:
            await store.close()

    try:
        count = asyncio.run(run())
    except ReplayError as error:
        out_file.unlink(missing_ok=True)
        raise fail(f"cannot write the states at seq {since}: {error}", 2) from None
    cut = f", after seq {since}, with the entities' states at that seq" if since > 0 else ""
    out.print(f"exported {count} events to {out_file}{cut}", highlight=False)


def ingest(
    db: Annotated[Path, typer.Option("--db", help="The SQLite database to feed.")],
    log_file: Annotated[Path, typer.Argument(help="A JSONL event log.")],
) -> None:
    """Feed a log through the engine: new events are applied, known ones are
    duplicates and change nothing, malformed ones become dead letters. The
    commands the events ask for are recorded as inert: the log's own database
    did that work, so this one never carries it out (`channelsync commands
    --status inert`)."""
    from engine.logfile import LogFileError, read_header, starts_mid_log
    from engine.runtime import Engine

    try:
        header = read_header(log_file)
    except LogFileError as error:
        raise fail(str(error)) from None
    if starts_mid_log(header):
        raise fail(
            f"{log_file} starts after seq {header['since_seq']} of its log (export --since):"
            " ingest applies events from the entities' initial states, so it takes a whole"
            " log; export without --since (or read this one with `channelsync replay`)",
            2,
        )
    settings = EngineSettings(
        run_timers=False,
        run_outbox=False,
        inert_commands=f"ingested from {log_file.name}: the database that logged it did"
        " this work, so this one never carries it out",
    )
    charts = load_charts()
    tune_gc()

    async def run() -> dict[str, int]:
        engine = await Engine.open(db, charts=charts, settings=settings)
        try:
            with progress(None, "ingesting") as advance:
                return await _feed(engine, log_file, advance)
        finally:
            await engine.stop()

    try:
        with refused_when_in_use():
            counts = asyncio.run(run())
    except LogFileError as error:
        raise fail(str(error)) from None
    out.print(
        "ingested: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), highlight=False
    )


async def _feed(engine: Engine, log_file: Path, advance: Callable[..., None]) -> dict[str, int]:
    """Publish the file's events in windows; how many had each outcome."""
    from engine.logfile import event_of, read_records

    counts: dict[str, int] = {}
    window: list[Any] = []

    async def drain() -> None:
        for receipt in await engine.publish_many(window):
            counts[receipt.outcome] = counts.get(receipt.outcome, 0) + 1
        advance(len(window))
        window.clear()

    for record in read_records(log_file):
        window.append(event_of(record))
        if len(window) >= INGEST_WINDOW:
            await drain()
    await drain()
    return counts
