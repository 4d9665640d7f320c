"""Replay and debugging from the command line: export, ingest, replay, check, history."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

from engine.charts.loader import ChartLoadError, read_chart_file
from engine.chartset import ChartSet, discover_packages
from engine.cli.in_use import refused_when_in_use
from engine.cli.main import _fail, _print_json, _table, app, err, open_existing, out
from engine.gc_tuning import tune_gc
from engine.history import entity_history
from engine.logfile import (
    LogFileError,
    NoBase,
    event_of,
    export_log,
    logged_events_from_file,
    read_base,
    read_header,
    read_records,
    starts_mid_log,
)
from engine.replay import (
    LoggedEvent,
    ReplayError,
    check,
    logged_events,
    replay,
    replay_steps,
    what_if,
)
from engine.settings import EngineSettings
from engine.step import EntityState
from engine.vault import present_entity

DbOption = Annotated[Path | None, typer.Option("--db", help="The SQLite database file.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def load_charts(charts_dir: Path | None = None) -> ChartSet:
    """The installed charts; with ``charts_dir``, its files replace the installed
    charts of the same name (a new version to try)."""
    packages = list(discover_packages().values())
    files = [f for p in packages for f in p.chart_files]
    if charts_dir is not None:
        replacements = {read_chart_file(f).spec.name: f for f in sorted(charts_dir.glob("*.yaml"))}
        if not replacements:
            raise _fail(f"no chart files in {charts_dir}")
        files = [replacements.pop(read_chart_file(f).spec.name, f) for f in files]
        files.extend(replacements.values())
    try:
        return ChartSet.load(packages, chart_files=files)
    except ChartLoadError as error:
        raise _fail(f"the charts do not load:\n{error}") from None


def parse_until(text: str | None) -> tuple[int | None, float | None]:
    """``--until 1200`` is a sequence number; ``--until 2026-11-26T18:00:00Z`` a time."""
    if text is None:
        return None, None
    if text.isdigit():
        return int(text), None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _fail(f"--until takes a sequence number or an ISO time, not {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return None, moment.timestamp()


@contextmanager
def progress(total: int | None, label: str) -> Iterator[Callable[..., None]]:
    """A progress bar on a terminal; nothing otherwise."""
    if not sys.stdout.isatty():
        yield lambda n=1: None
        return
    with Progress(console=out, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n=1: bar.advance(task, n)


def _time(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _states_json(states: dict[str, EntityState]) -> list[dict[str, Any]]:
    # Shown as `state --json` shows them: sealed values as markers (SEC-3).
    return [present_entity(states[key].as_dict(), states[key].data) for key in sorted(states)]


@app.command()
def export(
    db: Annotated[Path, typer.Option("--db", help="The SQLite database file.")],
    out_file: Annotated[Path, typer.Option("--out", help="The JSONL file to write.")],
    entity: Annotated[str | None, typer.Option("--entity", help="Only this entity.")] = None,
    since: Annotated[int, typer.Option("--since", help="Only events after this seq.")] = 0,
    redact: Annotated[
        bool,
        typer.Option("--redact", help="Replace buyers' personal data (sealed or not) by a marker."),
    ] = False,
) -> None:
    """Write the event log (one event a line, with its recorded outcome) as JSONL.
    With --since, the file also carries the state at that seq of each entity
    its events touch (rebuilt by replay), which `replay FILE` starts from.
    With --redact, the file can be shared: no buyer's personal data, not even sealed."""
    charts = load_charts() if since > 0 else None

    async def run() -> int:
        store = await open_existing(db)
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
        raise _fail(f"cannot write the states at seq {since}: {error}", 2) from None
    cut = f", after seq {since}, with the entities' states at that seq" if since > 0 else ""
    out.print(f"exported {count} events to {out_file}{cut}", highlight=False)


@app.command()
def ingest(
    db: Annotated[Path, typer.Option("--db", help="The SQLite database to feed.")],
    log_file: Annotated[Path, typer.Argument(help="A JSONL event log.")],
) -> None:
    """Feed a log through the engine: new events are applied, known ones are
    duplicates and change nothing, malformed ones become dead letters. The
    commands the events ask for are recorded as inert: the log's own database
    did that work, so this one never carries it out (`channelsync commands
    --status inert`)."""
    from engine.runtime import Engine

    try:
        header = read_header(log_file)
    except LogFileError as error:
        raise _fail(str(error)) from None
    if starts_mid_log(header):
        raise _fail(
            f"{log_file} starts after seq {header['since_seq']} of its log (export --since):"
            " ingest applies events from the entities' initial states, so it takes a whole"
            " log; export without --since (or read this one with `channelsync replay`)",
            2,
        )
    charts = load_charts()
    tune_gc()
    inert = (
        f"ingested from {log_file.name}: the database that logged it did this work,"
        " so this one never carries it out"
    )

    async def run() -> dict[str, int]:
        engine = await Engine.open(
            db,
            charts=charts,
            settings=EngineSettings(run_timers=False, run_outbox=False, inert_commands=inert),
        )
        counts: dict[str, int] = {}
        try:
            window: list[Any] = []

            async def drain() -> None:
                for receipt in await engine.publish_many(window):
                    counts[receipt.outcome] = counts.get(receipt.outcome, 0) + 1
                advance(len(window))
                window.clear()

            with progress(None, "ingesting") as advance:
                for record in read_records(log_file):
                    window.append(event_of(record))
                    if len(window) >= 5000:
                        await drain()
                await drain()
        finally:
            await engine.stop()
        return counts

    try:
        with refused_when_in_use():
            counts = asyncio.run(run())
    except LogFileError as error:
        raise _fail(str(error)) from None
    out.print(
        "ingested: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), highlight=False
    )


@app.command("replay")
def replay_command(
    log_file: Annotated[Path | None, typer.Argument(help="A JSONL log (or use --db).")] = None,
    db: DbOption = None,
    entity: Annotated[str | None, typer.Option("--entity", help="Only this entity.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="A seq or an ISO time.")] = None,
    charts_dir: Annotated[
        Path | None,
        typer.Option("--charts", help="Replay under these chart files instead (what-if)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Rebuild state from a log with the live step, no side effects. With
    --charts, report where other chart versions would change the outcome."""
    if (log_file is None) == (db is None):
        raise _fail("give either a JSONL file or --db")
    until_seq, until_time = parse_until(until)
    try:
        base = read_base(log_file) if log_file is not None else {}
        since = int(read_header(log_file).get("since_seq") or 0) if log_file else 0
    except NoBase as error:
        raise _fail(str(error), 2) from None
    except LogFileError as error:
        raise _fail(str(error)) from None
    if until_seq is not None and until_seq < since:
        raise _fail(f"{log_file} starts after seq {since}: --until must be {since} or later", 2)
    charts = load_charts(charts_dir)
    tune_gc()

    async def run() -> None:
        store = await open_existing(db) if db is not None else None
        try:
            total = await store.count("events") if store is not None else None

            def source() -> AsyncIterator[LoggedEvent]:
                if store is not None:
                    return logged_events(store, charts, entity=entity)
                assert log_file is not None
                return logged_events_from_file(log_file, charts)

            if charts_dir is not None:
                await _what_if(source(), charts, entity, as_json, base)
                return
            if as_json and store is not None:
                with progress(total, "replaying") as advance:
                    result = await replay(
                        store,
                        charts,
                        entity=entity,
                        until_seq=until_seq,
                        until_time=until_time,
                        progress=advance,
                    )
                _print_json(_states_json(result.entities))
                return
            # A file that starts mid-log starts from the states at its cut.
            states: dict[str, EntityState] = {
                key: state for key, state in base.items() if entity in (None, key)
            }
            timelines: dict[str, list[list[str]]] = {}
            with progress(total, "replaying") as advance:
                async for replayed in replay_steps(
                    source(),
                    charts,
                    states,
                    entity=entity,
                    until_seq=until_seq,
                    until_time=until_time,
                ):
                    advance()
                    if as_json:
                        continue
                    logged, result = replayed.logged, replayed.result
                    change = (
                        f"{result.from_state} -> {result.to_state}"
                        if result.to_state
                        else f"{result.outcome.value}: {result.reason}"
                    )
                    commands = ", ".join(c.type for c in result.commands)
                    timelines.setdefault(logged.event.entity, []).append(
                        [
                            str(logged.seq),
                            _time(logged.event.received_at),
                            logged.event.type,
                            change,
                            commands,
                        ]
                    )
            if as_json:
                _print_json(_states_json(states))
                return
            for key in sorted(timelines):
                final = states.get(key)
                out.print(
                    f"[bold]{key}[/bold]  final state: {final.state if final else '(unchanged)'}"
                )
                _table(
                    "",
                    [
                        dict(zip(("seq", "time", "event", "change", "commands"), row, strict=True))
                        for row in timelines[key]
                    ],
                    ["seq", "time", "event", "change", "commands"],
                )
        finally:
            if store is not None:
                await store.close()

    try:
        asyncio.run(run())
    except LogFileError as error:
        raise _fail(str(error)) from None
    except ReplayError as error:
        raise _fail(str(error), 2) from None


async def _what_if(
    events: AsyncIterator[LoggedEvent],
    charts: ChartSet,
    entity: str | None,
    as_json: bool,
    base: dict[str, EntityState],
) -> None:
    count, differences = await what_if(events, charts, entity=entity, base=base)
    if as_json:
        _print_json(
            [
                {
                    "entity": d.entity,
                    "first_seq": d.first_seq,
                    "first_event_id": d.first_event_id,
                    "state_before": d.state_before,
                    "recorded": d.recorded,
                    "recomputed": d.recomputed,
                    "differing_events": d.differing_events,
                    "final_recorded": d.final_recorded,
                    "final_what_if": d.final_what_if,
                }
                for d in differences
            ]
        )
        return
    out.print(
        f"replayed {count} events under the new charts: "
        f"{len(differences)} entit{'y' if len(differences) == 1 else 'ies'} would differ",
        highlight=False,
    )
    _table(
        "What would change",
        [
            {
                "entity": d.entity,
                "first event": f"{d.first_seq} {d.first_event_id}",
                "recorded": _describe(d.recorded),
                "with the new charts": _describe(d.recomputed),
                "final": f"{d.final_recorded} -> {d.final_what_if}",
            }
            for d in differences
        ],
        ["entity", "first event", "recorded", "with the new charts", "final"],
    )


def _describe(outcome: dict[str, Any]) -> str:
    if outcome["outcome"] == "transitioned":
        return f"{outcome['from_state']} -> {outcome['to_state']}"
    return f"{outcome['outcome']}: {outcome['reason']}"


@app.command("check")
def check_command(
    db: Annotated[Path, typer.Option("--db", help="The SQLite database file.")],
) -> None:
    """Replay the whole log and compare every outcome and every stored entity."""
    charts = load_charts()
    tune_gc()

    async def run() -> tuple[Any, int]:
        store = await open_existing(db)
        try:
            with progress(await store.count("events"), "checking") as advance:
                report = await check(store, charts, progress=advance)
            return report, await store.count("entities")
        finally:
            await store.close()

    try:
        report, entities = asyncio.run(run())
    except ReplayError as error:
        raise _fail(str(error), 2) from None
    divergence = report.divergence
    if divergence is None:
        out.print(
            f"ok: {report.events} events replayed, {entities} entities match", highlight=False
        )
        return
    err.print("[red]replay disagrees with the log[/red]")
    if divergence.seq is not None:
        err.print(
            f"first divergent event: seq {divergence.seq} ({divergence.event_id}) on "
            f"{divergence.entity}",
            highlight=False,
        )
        err.print(f"state before: {divergence.state_before}", highlight=False)
        err.print(f"recorded:   {_describe(divergence.recorded)}", highlight=False)
        err.print(f"recomputed: {_describe(divergence.recomputed)}", highlight=False)
    else:
        err.print(f"stored entity {divergence.entity} differs from the replay", highlight=False)
        err.print(
            f"stored:   {json.dumps(divergence.recorded['stored'], default=str)}", highlight=False
        )
        err.print(
            f"replayed: {json.dumps(divergence.recomputed['replayed'], default=str)}",
            highlight=False,
        )
    raise typer.Exit(1)


@app.command()
def history(
    key: Annotated[str, typer.Argument(help="The entity key, e.g. order:576653688135258178.")],
    db: Annotated[Path, typer.Option("--db", help="The SQLite database file.")],
    as_json: JsonOption = False,
) -> None:
    """One entity's whole story: events, transitions, commands and their results,
    timers and dead letters."""

    async def run() -> dict[str, Any]:
        store = await open_existing(db)
        try:
            return await entity_history(store, key)
        finally:
            await store.close()

    story = asyncio.run(run())
    story = present_entity(story, (story["entity"] or {}).get("data"))  # SEC-3
    if story["entity"] is None and not story["events"] and not story["dead_letters"]:
        raise _fail(f"nothing is known of {key}")
    if as_json:
        _print_json(story)
        return
    entity = story["entity"]
    out.print(
        f"[bold]{key}[/bold]  state: {entity['state'] if entity else '(none)'}"
        f"  version: {entity['version'] if entity else 0}"
    )
    rows = []
    for event in story["events"]:
        change = (
            f"{event['from_state']} -> {event['to_state']}"
            if event["outcome"] == "transitioned"
            else f"{event['outcome']}: {event['reason']}"
        )
        origin = (
            f" (result of command {event['result_of_command']})"
            if event["result_of_command"]
            else ""
        )
        rows.append(
            {
                "seq": event["seq"],
                "time": _time(event["received_at"]),
                "event": event["type"] + origin,
                "change": change,
                "commands": "; ".join(
                    f"#{c['id']} {c['type']}: {_command_state(c)}" for c in event["commands"]
                ),
            }
        )
    _table("History", rows, ["seq", "time", "event", "change", "commands"])
    if story["timers"]:
        _table(
            "Timers armed",
            [{**t, "due_at": _time(t["due_at"])} for t in story["timers"]],
            ["name", "due_at", "event_type"],
        )
    if story["dead_letters"]:
        _table("Dead letters", story["dead_letters"], ["source", "error"])


def _command_state(command: dict[str, Any]) -> str:
    """``done``, ``parked (why)``; a discarded command's reason says it all."""
    if command["status"] == "discarded":
        return str(command["reason"])
    return command["status"] + (f" ({command['reason']})" if command["reason"] else "")
