"""`channelsync dead-letters discard`: resolve one dead letter as needing nothing more.

    channelsync dead-letters discard ID --db sync.db [--reason TEXT] [--by NAME] [--json]

The letter is kept, marked with who discarded it, when and why, and leaves
the open letters that `channelsync state --dead-letters` lists
(docs/input-limits.md). It is one statement on the database, safe beside a
running engine, like `channelsync commands`. Exit codes: 0 done; 1 refused
(it was discarded already); 2 no such letter.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from engine.cli.commands_cmd import ByOption, DbOption, ReasonOption, _actor, _db, iso
from engine.cli.common import StoreOption, fail, open_existing, out, print_json
from engine.clock import SystemClock

if TYPE_CHECKING:
    from engine.store.rows import DeadLetterRow


def register(app: typer.Typer) -> None:
    # Engine modules are imported when the command runs, not to build the CLI.
    group = typer.Typer(
        help="Act on one dead letter by id (list them with `channelsync state --dead-letters`).",
        no_args_is_help=True,
    )
    group.command("discard")(discard)
    app.add_typer(group, name="dead-letters")


async def _discard(db: Path | str, letter_id: int, actor: str, reason: str | None) -> DeadLetterRow:
    from engine.dead_letters import discard_dead_letter

    store = await open_existing(db, writable=True)
    try:
        now = SystemClock().now()
        return await discard_dead_letter(store, letter_id, now=now, actor=actor, reason=reason)
    finally:
        await store.close()


def discard(
    ctx: typer.Context,
    letter_id: Annotated[int, typer.Argument(metavar="ID", help="The dead letter's id.")],
    db: DbOption = None,
    reason: ReasonOption = None,
    by: ByOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the letter as JSON.")] = False,
    store_url: StoreOption = None,
) -> None:
    """Mark a dead letter discarded (kept, with who, when and why)."""
    from engine.dead_letters import DeadLetterDiscarded, DeadLetterNotFound

    database = _db(ctx, db, store_url)
    try:
        letter = asyncio.run(_discard(database, letter_id, _actor(by), reason))
    except DeadLetterNotFound as error:
        raise fail(f"{error} in {database}", 2) from None
    except DeadLetterDiscarded as error:
        raise fail(str(error), 1) from None
    if as_json:
        print_json(
            {
                "id": letter.id,
                "source": letter.source,
                "entity": letter.entity,
                "error": letter.error,
                "discarded_at": iso(letter.discarded_at),
                "discarded_by": letter.discarded_by,
                "discard_reason": letter.discard_reason,
            }
        )
        return
    out.print(
        f"dead letter {letter.id} ({letter.source}): discarded by {letter.discarded_by}"
        f" at {iso(letter.discarded_at)}",
        highlight=False,
        markup=False,
    )
