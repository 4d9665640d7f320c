"""`channelsync migrate`: move entities to a newer version of their chart (ENG-9).

Each move is a ``chart.upgraded`` event published through the engine
(engine.version_migration), logged and replayable like any other.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from engine.cli.common import fail, load_charts, open_existing, out, print_json, print_table
from engine.cli.in_use import refused_when_in_use
from engine.settings import EngineSettings

if TYPE_CHECKING:
    from engine.chartset import ChartSet
    from engine.version_migration import PlannedMove

# What the command runs is imported when it runs: this module is imported to
# build the command line (engine/cli/main.py).

COLUMNS = ["chart", "from", "to", "entities", "outcomes"]


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate_command)


def migrate_command(
    db: Annotated[Path, typer.Option("--db", help="The SQLite database file.")],
    chart: Annotated[str | None, typer.Option("--chart", help="Only this chart.")] = None,
    to: Annotated[
        int | None, typer.Option("--to", help="Move to this version (default: the newest).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would move; publish nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Move entities pinned to an older version of their chart to a newer one:
    one `chart.upgraded` event each, through the engine (renames the states,
    runs the chart's data migration). Prints how many moved, per chart and version."""
    from engine.chartset import VersionNotInstalled
    from engine.version_migration import NothingToMoveTo, plan_moves

    charts = load_charts()

    async def run() -> list[PlannedMove]:
        if dry_run:
            store = await open_existing(db)
            try:
                return await plan_moves(store, charts, chart, to)
            finally:
                await store.close()
        return await _publish(db, charts, chart, to)

    try:
        with refused_when_in_use():
            moves = asyncio.run(run())
    except (NothingToMoveTo, VersionNotInstalled) as error:
        raise fail(str(error), 2) from None
    _report(moves, dry_run, as_json)
    if any(move.outcomes.get("error") for move in moves):
        raise typer.Exit(1)


async def _publish(
    db: Path, charts: ChartSet, chart: str | None, to: int | None
) -> list[PlannedMove]:
    from engine.runtime import Engine
    from engine.version_migration import plan_moves, publish_moves

    if not db.exists():
        raise fail(f"no database at {db}")
    # Moves carry no commands and arm no timers: the engine runs neither here.
    settings = EngineSettings(run_timers=False, run_outbox=False)
    engine = await Engine.open(db, charts=charts, settings=settings)
    try:
        moves = await plan_moves(engine.store, charts, chart, to)
        await publish_moves(engine, moves)
        return moves
    finally:
        await engine.stop()


def _report(moves: list[PlannedMove], dry_run: bool, as_json: bool) -> None:
    rows = [
        {
            "chart": move.chart,
            "from": move.from_version,
            "to": move.to_version,
            "entities": len(move.entities),
            "outcomes": ", ".join(f"{k} {v}" for k, v in sorted(move.outcomes.items()))
            or ("would move" if dry_run else ""),
        }
        for move in moves
    ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("nothing to migrate: every entity is on its chart's target version")
        return
    title = "would migrate (dry run)" if dry_run else "migrated"
    print_table(title, rows, COLUMNS)
