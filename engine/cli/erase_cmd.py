"""`channelsync erase ENTITY`: destroy one entity's personal data for good (SEC-3)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from engine.cli.common import fail, load_charts, out
from engine.cli.in_use import refused_when_in_use
from engine.settings import EngineSettings


def register(app: typer.Typer) -> None:
    app.command()(erase)


def erase(
    entity: Annotated[str, typer.Argument(help="The entity key, e.g. order:576653688135258178.")],
    db: Annotated[Path, typer.Option("--db", help="The SQLite database file.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why (kept in the log; no personal data here).")
    ] = "the buyer asked for erasure",
    requested_by: Annotated[
        str, typer.Option("--by", help="Who asked for it (kept in the log).")
    ] = "operator",
) -> None:
    """Destroy the key of one entity's personal data (a buyer's name, phone,
    address and email) and record the erasure in the log. The rest of the
    entity, and replay and `check`, are unaffected; the fields then read "erased"."""
    from engine.erasure import ErasureRefused
    from engine.runtime import Engine

    if not db.exists():
        raise fail(f"no database at {db}")
    charts = load_charts()

    async def run() -> str:
        engine = await Engine.open(
            db, charts=charts, settings=EngineSettings(run_timers=False, run_outbox=False)
        )
        try:
            receipt = await engine.erase_personal_data(
                entity, reason=reason, requested_by=requested_by
            )
        finally:
            await engine.stop()
        return "already erased" if receipt.outcome == "duplicate" else "erased"

    try:
        with refused_when_in_use():  # serve holds the database (ENG-10): one line, exit 1
            outcome = asyncio.run(run())
    except (ErasureRefused, ValueError) as error:
        raise fail(str(error), 2) from None
    out.print(f"{entity}: personal data {outcome}", highlight=False)
