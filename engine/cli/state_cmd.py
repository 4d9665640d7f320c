"""`channelsync state`: entities' states, one entity's history, the dead letters."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from engine.cli.common import (
    DbOption,
    JsonOption,
    StoreOption,
    fail,
    open_existing,
    out,
    print_json,
    store_target,
)
from engine.cli.common import print_table as table

if TYPE_CHECKING:
    from engine.store.protocol import Store
    from engine.store.rows import DeadLetterRow


def register(app: typer.Typer) -> None:
    app.command()(state)


def state(
    db: DbOption = None,
    entity: Annotated[
        str | None, typer.Option("--entity", help="One entity key, with its history.")
    ] = None,
    chart: Annotated[
        str | None, typer.Option("--chart", help="Only entities of this chart.")
    ] = None,
    in_state: Annotated[
        str | None,
        typer.Option(
            "--state",
            help="Only entities in which this state is active: an atomic state or any "
            "parent or region of one (sync.failed, sync, shipped).",
        ),
    ] = None,
    dead_letters: Annotated[
        bool, typer.Option("--dead-letters", help="List the open dead letters.")
    ] = False,
    discarded: Annotated[
        bool,
        typer.Option(
            "--include-discarded",
            help="With --dead-letters: the discarded ones too, with who, when and why.",
        ),
    ] = False,
    as_json: JsonOption = False,
    store_url: StoreOption = None,
) -> None:
    """Show entities' states (and one entity's history, ignored events included)."""

    target = store_target(db, store_url)

    async def run() -> None:
        store = await open_existing(target)
        try:
            if dead_letters:
                letters = await store.dead_letters(entity, include_discarded=discarded)
                _show_dead_letters(letters, as_json)
            elif entity is not None:
                _show_entity(await _entity_record(store, target, entity), as_json)
            else:
                await _show_entities(store, chart, in_state, as_json)
        finally:
            await store.close()

    asyncio.run(run())


def _show_dead_letters(letters: list[DeadLetterRow], as_json: bool) -> None:
    from engine.dead_letters import discarded_text

    # Each row stands for every copy of one input (same source and digest);
    # ``raw`` is its first 4 KB, ``size`` the whole input's bytes.
    fields = ("id", "received_at", "last_seen", "count", "size", "digest", "source", "entity")
    rows = [
        {
            **{name: getattr(d, name) for name in fields},
            "error": d.error,
            "raw": d.raw,
            "discarded": discarded_text(d) or None,
        }
        for d in letters
    ]
    if as_json:
        print_json(rows)
    else:
        columns = ["id", "source", "entity", "count", "size", "error", "discarded"]
        table("Dead letters", rows, columns)


async def _entity_record(store: Store, db: Path | str, key: str) -> dict[str, Any]:
    found = await store.entity(key)
    history = await store.history(key)
    letters = await store.dead_letters(key)
    if found is None and not history and not letters:
        raise fail(f"no entity {key!r} in {db}")
    from engine.vault import present_entity

    record = (
        found.as_dict()
        if found
        else {"key": key, "chart": None, "state": None, "data": {}, "version": 0}
    )
    record["history"] = history
    record["dead_letters"] = [{"error": d.error, "raw": d.raw, "source": d.source} for d in letters]
    return present_entity(record, record["data"])  # SEC-3


def _show_entity(record: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json([record])
        return
    out.print(
        f"[bold]{record['key']}[/bold]  chart={record['chart']}  state={record['state']}"
        f"  version={record['version']}"
    )
    out.print_json(json.dumps(record["data"], default=str))
    rows = []
    for item in record["history"]:
        change = (
            f"{item['from_state']} -> {item['to_state']}"
            if item["outcome"] == "transitioned"
            else f"{item['outcome']}: {item['reason']}"
        )
        rows.append(
            {
                "seq": item["seq"],
                "event": item["type"],
                "event_id": item["event_id"],
                "change": change,
            }
        )
    table("History", rows, ["seq", "event", "event_id", "change"])
    if record["dead_letters"]:
        table("Dead letters", record["dead_letters"], ["source", "error"])


async def _show_entities(
    store: Store, chart: str | None, in_state: str | None, as_json: bool
) -> None:
    if in_state is not None and ("," in in_state or not in_state):
        raise fail(f"--state takes one state id (like sync.failed), not {in_state!r}")
    entities = await store.entities(chart=chart, state=in_state)
    if as_json:
        from engine.vault import present_entity

        print_json([present_entity(e.as_dict(), e.data) for e in entities])
        return
    table("Entities", [e.as_dict() for e in entities], ["key", "chart", "state", "version"])
    counts = {t: await store.count(t) for t in ("events", "dead_letters", "duplicates", "timers")}
    out.print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items()))
