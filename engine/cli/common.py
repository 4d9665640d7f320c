"""What the command modules share: consoles, errors, options, the database, charts.

Light to import: every command module imports it while the command line is
assembled (`channelsync --help` included), so the store and the charts are
imported by the functions that open or load them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from engine.chartset import ChartSet
    from engine.store.protocol import Store

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DbOption = Annotated[Path | None, typer.Option("--db", help="The SQLite database file.")]
StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="A PostgreSQL database (postgresql://user@host/name) instead of --db.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
JobsOption = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        min=1,
        help="Processes that replay, each a share of the entities (default: one per core,"
        " at most one per 10,000 events; 1: this process alone).",
    ),
]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as the command's one error line; raise what it returns."""
    err.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    return typer.Exit(code)


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=False, default=str))


def print_table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    out.print(table)


def format_time(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def store_target(db: Path | None, store: str | None) -> Path | str:
    """The database a command reads: ``--db FILE`` or ``--store URL``, exactly one."""
    if (db is None) == (store is None):
        raise fail("give the database with --db FILE or --store postgresql://...", 2)
    if store is not None:
        from engine.store.urls import is_store_url, shown

        if not is_store_url(store):
            raise fail(f"--store takes a postgresql:// URL, not {escape(shown(store))}", 2)
        return store
    assert db is not None
    return db


def refuse_jobs_on_store(target: Path | str | None, jobs: int | None) -> None:
    """Replay in processes reads a SQLite file's shares of entities
    (engine/store/sqlite_partitions.py); a PostgreSQL database (a `--store`
    URL from `store_target`) is replayed in this process, so ``--jobs`` above
    1 with it is refused rather than quietly ignored."""
    if isinstance(target, str) and jobs is not None and jobs > 1:
        raise fail(
            "--jobs above 1 needs a SQLite file (--db): --store is replayed in one process", 2
        )


async def open_existing(db: Path | str, *, writable: bool = False) -> Store:
    """The database at ``db`` (a SQLite file, or a PostgreSQL URL from
    `store_target`): read-only (SEC-4) unless the command writes.

    Another application's database, or a channelsync database of another
    schema version, is one line on standard error and exit code 2."""
    from engine.settings import EngineSettings
    from engine.store.errors import NotChannelsyncDatabase, SchemaMismatch, StoreError
    from engine.store.urls import is_store_url, open_store

    if not is_store_url(db) and not Path(db).exists():
        raise fail(f"no database at {db}")
    try:
        return await open_store(db, settings=EngineSettings(), read_only=not writable)
    except (NotChannelsyncDatabase, SchemaMismatch) as error:
        # The message may quote another file's table names: never rich markup.
        raise fail(escape(str(error)), 2) from None
    except StoreError as error:
        raise fail(escape(str(error))) from None


def load_charts(charts_dir: Path | None = None) -> ChartSet:
    """The installed charts; with ``charts_dir``, its files replace the installed
    charts of the same name, every version of them (a new version to try)."""
    from engine import chartset
    from engine.charts.loader import ChartLoadError, read_chart_file

    packages = list(chartset.discover_packages().values())
    files = [f for p in packages for f in p.chart_files]
    if charts_dir is not None:
        replacements = sorted(charts_dir.glob("*.yaml"))
        if not replacements:
            raise fail(f"no chart files in {charts_dir}")
        replaced = {read_chart_file(f).spec.name for f in replacements}
        files = [f for f in files if read_chart_file(f).spec.name not in replaced]
        files.extend(replacements)
    try:
        return chartset.ChartSet.load(packages, chart_files=files)
    except ChartLoadError as error:
        raise fail(f"the charts do not load:\n{error}") from None


@contextmanager
def progress(total: int | None, label: str) -> Iterator[Callable[..., None]]:
    """A progress bar on a terminal; nothing otherwise."""
    if not sys.stdout.isatty():
        yield lambda n=1: None
        return
    from rich.progress import Progress

    with Progress(console=out, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n=1: bar.advance(task, n)
