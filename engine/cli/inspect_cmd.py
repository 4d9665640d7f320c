"""`channelsync check` and `channelsync history`: is the log sound, what happened to one entity."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from engine.cli.common import (
    DbOption,
    JobsOption,
    StoreOption,
    err,
    fail,
    format_time,
    load_charts,
    open_existing,
    out,
    print_json,
    print_table,
    progress,
    refuse_jobs_on_store,
    store_target,
)
from engine.gc_tuning import tune_gc

if TYPE_CHECKING:
    from engine.chartset import ChartSet
    from engine.replay import Divergence, ReplayResult

# What the command runs is imported when it runs: this module is imported to
# build the command line (engine/cli/main.py).

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def register(app: typer.Typer) -> None:
    app.command("check")(check_command)
    app.command()(history)


def describe(outcome: dict[str, Any]) -> str:
    """A recorded outcome as one phrase: ``a -> b``, or ``ignored: why``."""
    if outcome["outcome"] == "transitioned":
        return f"{outcome['from_state']} -> {outcome['to_state']}"
    return f"{outcome['outcome']}: {outcome['reason']}"


def check_command(
    db: DbOption = None, store_url: StoreOption = None, jobs: JobsOption = None
) -> None:
    """Replay the whole log and compare every outcome and every stored entity."""
    from engine.replay import ReplayError, check
    from engine.replay_parallel import default_jobs

    target = store_target(db, store_url)
    refuse_jobs_on_store(target, jobs)
    charts = load_charts()
    tune_gc()

    async def run() -> tuple[ReplayResult | None, int]:
        store = await open_existing(target)
        try:
            total = await store.count("events")
            # Only a SQLite file is split between processes (refuse_jobs_on_store).
            if isinstance(target, Path) and (jobs or default_jobs(total)) > 1:
                return None, total  # the workers open the file themselves
            with progress(total, "checking") as advance:
                report = await check(store, charts, progress=advance)
            return report, await store.count("entities")
        finally:
            await store.close()

    try:
        report, entities = asyncio.run(run())
        if report is None:
            assert isinstance(target, Path)
            workers = jobs or default_jobs(entities)
            report, entities = _check_in_processes(target, charts, workers, entities)
    except ReplayError as error:
        raise fail(str(error), 2) from None
    if report.divergence is None:
        out.print(
            f"ok: {report.events} events replayed, {entities} entities match", highlight=False
        )
        return
    _report_divergence(report.divergence)
    raise typer.Exit(1)


def _check_in_processes(
    db: Path, charts: ChartSet, workers: int, total: int
) -> tuple[ReplayResult, int]:
    """`check` in ``workers`` processes; with the count of entities, which match
    the stored ones when it passes."""
    from engine.replay_parallel import check_parallel

    with progress(total, "checking") as advance:
        report = check_parallel(db, charts, jobs=workers, progress=advance)
    return report, sum(share.entity_count for share in report.shares)


def _report_divergence(divergence: Divergence) -> None:
    err.print("[red]replay disagrees with the log[/red]")
    if divergence.seq is not None:
        err.print(
            f"first divergent event: seq {divergence.seq} ({divergence.event_id}) on "
            f"{divergence.entity}",
            highlight=False,
        )
        err.print(f"state before: {divergence.state_before}", highlight=False)
        err.print(f"recorded:   {describe(divergence.recorded)}", highlight=False)
        err.print(f"recomputed: {describe(divergence.recomputed)}", highlight=False)
        return
    err.print(f"stored entity {divergence.entity} differs from the replay", highlight=False)
    stored = json.dumps(divergence.recorded["stored"], default=str)
    replayed = json.dumps(divergence.recomputed["replayed"], default=str)
    err.print(f"stored:   {stored}", highlight=False)
    err.print(f"replayed: {replayed}", highlight=False)


def history(
    key: Annotated[str, typer.Argument(help="The entity key, e.g. order:576653688135258178.")],
    db: DbOption = None,
    as_json: JsonOption = False,
    store_url: StoreOption = None,
) -> None:
    """One entity's whole story: events, transitions, commands and their results,
    timers and dead letters."""
    from engine.history import entity_history
    from engine.vault import present_entity

    target = store_target(db, store_url)

    async def run() -> dict[str, Any]:
        store = await open_existing(target)
        try:
            return await entity_history(store, key)
        finally:
            await store.close()

    story = asyncio.run(run())
    story = present_entity(story, (story["entity"] or {}).get("data"))  # SEC-3
    if story["entity"] is None and not story["events"] and not story["dead_letters"]:
        raise fail(f"nothing is known of {key}")
    if as_json:
        print_json(story)
        return
    entity = story["entity"]
    out.print(
        f"[bold]{key}[/bold]  state: {entity['state'] if entity else '(none)'}"
        f"  version: {entity['version'] if entity else 0}"
    )
    rows = [_history_row(event) for event in story["events"]]
    print_table("History", rows, ["seq", "time", "event", "change", "commands"])
    if story["timers"]:
        print_table(
            "Timers armed",
            [{**t, "due_at": format_time(t["due_at"])} for t in story["timers"]],
            ["name", "due_at", "event_type"],
        )
    if story["dead_letters"]:
        print_table("Dead letters", story["dead_letters"], ["source", "error", "discarded"])


def _history_row(event: dict[str, Any]) -> dict[str, Any]:
    origin = (
        f" (result of command {event['result_of_command']})" if event["result_of_command"] else ""
    )
    return {
        "seq": event["seq"],
        "time": format_time(event["received_at"]),
        "event": event["type"] + origin,
        "change": describe(event),
        "commands": "; ".join(
            f"#{c['id']} {c['type']}: {_command_state(c)}" for c in event["commands"]
        ),
    }


def _command_state(command: dict[str, Any]) -> str:
    """``done``, ``parked (why)``; a discarded command's reason says it all."""
    if command["status"] == "discarded":
        return str(command["reason"])
    return str(command["status"]) + (f" ({command['reason']})" if command["reason"] else "")
