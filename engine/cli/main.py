"""The `channelsync` command line: the composition root of engine and plugins."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from engine.charts.loader import ChartLoadError, load_chart
from engine.charts.mermaid import to_mermaid
from engine.charts.schema import ChartSpec, chart_json_schema
from engine.chartset import ChartPackage, discover_packages, register_timer_events
from engine.logs import configure_logging
from engine.rules import Rules
from engine.store.errors import NotChannelsyncDatabase, SchemaMismatch
from engine.store.sqlite import SQLiteStore, StoreError
from engine.vault import present_entity

app = typer.Typer(
    name="channelsync",
    help="Keep a Shoplazza store and a TikTok Shop (US) in sync with declarative statecharts.",
    no_args_is_help=True,
    add_completion=False,
)
chart_app = typer.Typer(help="Validate and draw statecharts.", no_args_is_help=True)
app.add_typer(chart_app, name="chart")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DbOption = Annotated[Path, typer.Option("--db", help="The SQLite database file.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.callback()
def _configure(
    log_level: Annotated[
        str,
        typer.Option(
            "--log-level",
            envvar="CHANNELSYNC_LOG_LEVEL",
            help="Log lines at this level and above go to standard error.",
        ),
    ] = "WARNING",
) -> None:
    """Logs go to standard error, so `--json` output on standard output stays
    clean; `serve`, `sandbox` and `demo` choose their own level."""
    configure_logging(log_level)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    return typer.Exit(code)


def _all_rules(packages: dict[str, ChartPackage]) -> Rules:
    """The guards, actions and event types of every installed package together."""
    rules = Rules()
    for package in packages.values():
        rules.update(package.rules)
        register_timer_events(package.chart_files, rules)
    return rules


def _installed_charts() -> list[tuple[str, Path, ChartSpec]]:
    """(package name, file, chart) for every installed chart."""
    packages = discover_packages()
    rules = _all_rules(packages)
    try:
        return [
            (name, Path(file), load_chart(file, rules).spec)
            for name, package in sorted(packages.items())
            for file in package.chart_files
        ]
    except ChartLoadError as error:
        raise _fail(f"an installed chart does not load:\n{error}") from None


async def open_existing(db: Path, *, writable: bool = False) -> SQLiteStore:
    """The database at ``db``: read-only (SEC-4) unless the command writes.

    Another application's file, or a channelsync database of another schema
    version, is one line on standard error and exit code 2."""
    if not db.exists():
        raise _fail(f"no database at {db}")
    try:
        if writable:
            return await SQLiteStore.open(db)
        return await SQLiteStore.open_readonly(db)
    except (NotChannelsyncDatabase, SchemaMismatch) as error:
        # The message may quote another file's table names: never rich markup.
        raise _fail(escape(str(error)), 2) from None
    except StoreError as error:
        raise _fail(escape(str(error))) from None


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=False, default=str))


# --------------------------------------------------------------------- state


@app.command()
def state(
    db: DbOption,
    entity: Annotated[
        str | None, typer.Option("--entity", help="One entity key, with its history.")
    ] = None,
    chart: Annotated[
        str | None, typer.Option("--chart", help="Only entities of this chart.")
    ] = None,
    dead_letters: Annotated[
        bool, typer.Option("--dead-letters", help="List the dead letters.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Show entities' states (and one entity's history, ignored events included)."""

    async def run() -> None:
        store = await open_existing(db)
        try:
            if dead_letters:
                letters = await store.dead_letters(entity)
                # Each row stands for every copy of one input (same source and digest);
                # ``raw`` is its first 4 KB, ``size`` the whole input's bytes.
                rows = [
                    {
                        "id": d.id,
                        "received_at": d.received_at,
                        "last_seen": d.last_seen,
                        "count": d.count,
                        "size": d.size,
                        "digest": d.digest,
                        "source": d.source,
                        "entity": d.entity,
                        "error": d.error,
                        "raw": d.raw,
                    }
                    for d in letters
                ]
                if as_json:
                    _print_json(rows)
                else:
                    columns = ["id", "source", "entity", "count", "size", "error"]
                    _table("Dead letters", rows, columns)
                return
            if entity is not None:
                found = await store.entity(entity)
                history = await store.history(entity)
                letters = await store.dead_letters(entity)
                if found is None and not history and not letters:
                    raise _fail(f"no entity {entity!r} in {db}")
                record = (
                    found.as_dict()
                    if found
                    else {"key": entity, "chart": None, "state": None, "data": {}, "version": 0}
                )
                record["history"] = history
                record["dead_letters"] = [
                    {"error": d.error, "raw": d.raw, "source": d.source} for d in letters
                ]
                record = present_entity(record, record["data"])  # SEC-3
                if as_json:
                    _print_json([record])
                else:
                    _print_entity(record)
                return
            entities = await store.entities(chart=chart)
            if as_json:
                _print_json([present_entity(e.as_dict(), e.data) for e in entities])
                return
            _table(
                "Entities", [e.as_dict() for e in entities], ["key", "chart", "state", "version"]
            )
            counts = {
                t: await store.count(t) for t in ("events", "dead_letters", "duplicates", "timers")
            }
            out.print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items()))
        finally:
            await store.close()

    asyncio.run(run())


def _table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    out.print(table)


def _print_entity(record: dict[str, Any]) -> None:
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
    _table("History", rows, ["seq", "event", "event_id", "change"])
    if record["dead_letters"]:
        _table("Dead letters", record["dead_letters"], ["source", "error"])


# --------------------------------------------------------------------- charts


@chart_app.command("validate")
def chart_validate(
    paths: Annotated[list[Path], typer.Argument(help="Chart files or folders of them.")],
) -> None:
    """Check chart files (ENG-1); prints every problem with file, line and place."""
    rules = _all_rules(discover_packages())
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    if not files:
        raise _fail("no chart files given")
    register_timer_events(files, rules)
    failed = False
    for file in files:
        try:
            loaded = load_chart(file, rules)
        except ChartLoadError as error:
            failed = True
            for problem in error.problems:
                err.print(str(problem), highlight=False, markup=False)
            continue
        spec = loaded.spec
        out.print(
            f"ok  {file}  ({spec.name}: {len(spec.states)} states, "
            f"{len(spec.transitions)} transitions, {len(spec.timers)} timers)",
            highlight=False,
        )
    if failed:
        raise typer.Exit(1)


@chart_app.command("show")
def chart_show(
    name: Annotated[str, typer.Argument(help="The chart's name, e.g. order.")],
    format: Annotated[str, typer.Option("--format", help="mermaid, json or yaml.")] = "mermaid",
    internal: Annotated[
        bool, typer.Option("--internal", help="Draw internal transitions as self-loops.")
    ] = False,
) -> None:
    """Print an installed chart as a Mermaid stateDiagram-v2 (or JSON/YAML)."""
    if format not in ("mermaid", "json", "yaml"):
        raise _fail(f"unknown format {format!r}: use mermaid, json or yaml")
    charts = _installed_charts()
    for _package, file, spec in charts:
        if spec.name != name:
            continue
        if format == "mermaid":
            typer.echo(to_mermaid(spec, internal=internal), nl=False)
        elif format == "json":
            _print_json(spec.model_dump(mode="json"))
        else:
            typer.echo(file.read_text(encoding="utf-8"), nl=False)
        return
    known = ", ".join(sorted(spec.name for _p, _f, spec in charts))
    raise _fail(f"no chart named {name!r}; installed: {known}")


@chart_app.command("schema")
def chart_schema() -> None:
    """Print the JSON Schema of chart files (for editors)."""
    _print_json(chart_json_schema())


@chart_app.command("list")
def chart_list() -> None:
    """List installed chart packages and their charts."""
    for package, file, spec in _installed_charts():
        out.print(
            f"{package}: {spec.name} (entity kind {spec.entity_kind}) {file}", highlight=False
        )


COMMANDS_ENTRY_POINT_GROUP = "channelsync.commands"


def register_commands() -> None:
    """Attach the engine's own command modules, then those plugins provide
    (entry point group ``channelsync.commands``: a callable taking the app)."""
    from importlib.metadata import entry_points

    from engine.cli import commands_cmd, debug, demo, erase_cmd  # noqa: F401

    for point in entry_points(group=COMMANDS_ENTRY_POINT_GROUP):
        point.load()(app)


register_commands()


if __name__ == "__main__":
    app()
