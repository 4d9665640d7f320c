"""`channelsync commands`: list the outbox's work and act on one command by id.

    channelsync commands --db sync.db [--status S] [--entity KEY] [--json]
    channelsync commands retry ID --db sync.db [--reason TEXT] [--by NAME]
    channelsync commands discard ID --db sync.db [--reason TEXT] [--by NAME]

A command a dispatcher has claimed shows as ``running``, with the claimant
and when its lease ends (ENG-10). Exit codes: 0 done; 1 the action is refused
by the command's status (a done, discarded or inert command, or the retry of
a running one); 2 bad input (no such id, an unknown status).
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from engine.cli.common import StoreOption, fail, open_existing, out, print_json, store_target
from engine.clock import SystemClock

if TYPE_CHECKING:
    from engine.outbox_admin import CommandView, OutboxCommands

# What the command runs is imported when it runs: this module is imported to
# build the command line (engine/cli/main.py).

commands_app = typer.Typer(
    help="List the outbox's commands (pending, held, parked, failed...) and retry or discard one.",
    invoke_without_command=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(commands_app, name="commands")


DbOption = Annotated[Path | None, typer.Option("--db", help="The SQLite database file.")]
ReasonOption = Annotated[
    str | None, typer.Option("--reason", help="Why (kept with the command's record).")
]
ByOption = Annotated[str | None, typer.Option("--by", help="Who acts (default: your user name).")]
# What every command action (retry, discard) takes besides the options above.
CommandIdArgument = Annotated[int, typer.Argument(metavar="ID", help="The command's id.")]
CommandJsonOption = Annotated[bool, typer.Option("--json", help="Print the command as JSON.")]


def iso(timestamp: float | None) -> str | None:
    """A time as ISO 8601 in UTC (``2026-11-29T18:04:05Z``)."""
    if timestamp is None:
        return None
    moment = datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
    return moment.replace("+00:00", "Z")


def command_json(view: CommandView) -> dict[str, Any]:
    record = view.as_dict()
    for key in ("next_attempt_at", "created_at", "done_at", "claim_until"):
        record[key] = iso(record[key])
    for action in record["actions"]:
        action["at"] = iso(action["at"])
    return record


async def _with_commands(
    db: Path | str, work: Callable[[OutboxCommands], Awaitable[Any]], *, writable: bool = False
) -> Any:
    """``work`` on the database's commands; the listing reads it read-only (SEC-4)."""
    from engine.outbox_admin import OutboxCommands

    store = await open_existing(db, writable=writable)
    try:
        return await work(OutboxCommands(store, SystemClock()))
    finally:
        await store.close()


@commands_app.callback()
def commands(
    ctx: typer.Context,
    db: DbOption = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="pending, running (claimed by a dispatcher whose call is under way), held,"
            " parked, failed (parked or pending a retry), done, discarded, inert, open"
            " (pending, running, held and parked: the default) or all.",
        ),
    ] = None,
    entity: Annotated[str | None, typer.Option("--entity", help="Only this entity's.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    store_url: StoreOption = None,
) -> None:
    """List outbox commands: id, type, entity, status, attempts, next attempt, reason."""
    if ctx.invoked_subcommand is not None:
        # `commands --db X retry ID` works as well as `commands retry ID --db X`
        ctx.obj = (db, store_url)
        return
    target = store_target(db, store_url)

    async def listing(commands: OutboxCommands) -> list[CommandView]:
        return await commands.list(status, entity=entity)

    from engine.outbox_admin import UnknownStatusFilter

    try:
        views = asyncio.run(_with_commands(target, listing))
    except UnknownStatusFilter as error:
        raise fail(str(error), 2) from None
    if as_json:
        print_json([command_json(v) for v in views])
        return
    rows = [
        {
            "id": v.id,
            "type": v.type,
            "entity": v.entity,
            "status": v.status,
            "attempts": v.attempts,
            "next attempt": iso(v.next_attempt_at),
        }
        for v in views
    ]
    table = Table(title="Commands")
    columns = ["id", "type", "entity", "status", "attempts", "next attempt"]
    for column in columns:
        # Ids and keys are what an operator copies: folded, never cut short.
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if row[c] is None else str(row[c]) for c in columns))
    out.print(table)
    if not views:
        out.print(f"no {(status or 'open').lower()} commands", highlight=False)
    # Reasons are sentences (a platform's refusal, a hold): one line each, unwrapped.
    for view in views:
        if view.reason:
            out.print(f"#{view.id} {view.status}: {view.reason}", highlight=False, markup=False)


def _act(
    db: Path | str,
    command_id: int,
    action: Callable[[OutboxCommands], Awaitable[CommandView]],
    as_json: bool,
) -> None:
    from engine.outbox_admin import CommandActionRefused, CommandNotFound

    try:
        view = asyncio.run(_with_commands(db, action, writable=True))
    except CommandNotFound as error:
        raise fail(f"{error} in {db}", 2) from None
    except CommandActionRefused as error:
        raise fail(str(error), 1) from None
    if as_json:
        print_json(command_json(view))
        return
    last = view.actions[-1]
    out.print(
        f"command {command_id} ({view.type} for {view.entity}): {last.status_before} ->"
        f" {view.status}, by {last.actor} at {iso(last.at)}",
        highlight=False,
    )


def _db(ctx: typer.Context, db: Path | None, store_url: str | None) -> Path | str:
    """The database given to the action, or else to ``commands`` before it."""
    if db is None and store_url is None and ctx.obj is not None:
        db, store_url = ctx.obj
    return store_target(db, store_url)


def _actor(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (a bare container)
        return "operator"


@commands_app.command("retry")
def retry(
    ctx: typer.Context,
    command_id: CommandIdArgument,
    db: DbOption = None,
    reason: ReasonOption = None,
    by: ByOption = None,
    as_json: CommandJsonOption = False,
    store_url: StoreOption = None,
) -> None:
    """Run a pending, held or parked command again now, with its same idempotency key."""
    actor = _actor(by)
    database = _db(ctx, db, store_url)
    _act(database, command_id, lambda c: c.retry(command_id, actor=actor, reason=reason), as_json)


@commands_app.command("discard")
def discard(
    ctx: typer.Context,
    command_id: CommandIdArgument,
    db: DbOption = None,
    reason: ReasonOption = None,
    by: ByOption = None,
    as_json: CommandJsonOption = False,
    store_url: StoreOption = None,
) -> None:
    """Make sure a pending, held or parked command never runs."""
    actor = _actor(by)
    database = _db(ctx, db, store_url)
    _act(database, command_id, lambda c: c.discard(command_id, reason, actor=actor), as_json)
