"""`channelsync whatif`: one entity's events from seq N replayed under another
chart version or a chart file, beside what the log recorded (engine.whatif)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from engine.cli.common import (
    DbOption,
    JsonOption,
    StoreOption,
    fail,
    load_charts,
    open_existing,
    out,
    print_json,
    print_table,
    store_target,
)
from engine.cli.inspect_cmd import describe

if TYPE_CHECKING:
    from engine.whatif import Outcome, WhatIf

# engine.whatif (the log reader, the step) is imported when the command runs:
# this module is imported to build the command line (engine/cli/main.py).

COLUMNS = ["seq", "event", "logged", "what-if", ""]


def register(app: typer.Typer) -> None:
    app.command("whatif")(whatif_command)


def whatif_command(
    entity: Annotated[str, typer.Argument(help="The entity key, e.g. parcel:42.")],
    db: DbOption,
    from_seq: Annotated[int, typer.Option("--from", help="Replay from this seq of the log.")],
    version: Annotated[
        int | None, typer.Option("--version", help="An installed version of the entity's chart.")
    ] = None,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="A chart file to replay with instead.")
    ] = None,
    as_json: JsonOption = False,
    store_url: StoreOption = None,
) -> None:
    """Replay ENTITY from --from under --version or --chart (default: the newest
    installed version) and show where the outcomes differ from the log.
    Reads the database only."""
    from engine.log_reader import ReplayError
    from engine.whatif import WhatIfError, what_if

    charts = load_charts()
    target = store_target(db, store_url)

    async def run() -> WhatIf:
        store = await open_existing(target)
        try:
            return await what_if(
                store, charts, entity, from_seq=from_seq, version=version, chart_file=chart
            )
        finally:
            await store.close()

    try:
        result = asyncio.run(run())
    except (WhatIfError, ReplayError) as error:
        raise fail(escape(str(error)), 2) from None
    if as_json:
        print_json(result.as_dict())
        return
    _print(result)


def _phrase(outcome: Outcome) -> str:
    return describe(asdict(outcome))


def _print(result: WhatIf) -> None:
    differing = sum(row.differs for row in result.rows)
    first = result.first_difference
    out.print(
        f"{result.entity} from seq {result.from_seq} under chart {result.chart} version"
        f" {result.version} (starting in {result.state_before}): {len(result.rows)} events,"
        f" {differing} differ"
        + (f", first at seq {first}" if first is not None else "")
        + f"; final state {result.final_logged} in the log, {result.final_replayed} here",
        highlight=False,
        markup=False,
    )
    print_table(
        "",
        [
            {
                "seq": row.seq,
                "event": row.type,
                "logged": _phrase(row.logged),
                "what-if": _phrase(row.replayed),
                "": "differs" if row.differs else "",
            }
            for row in result.rows
        ],
        COLUMNS,
    )
