"""Dead letters: input that could not be used, kept once per digest.

A dead letter keeps the sha256 of the input, its size and a prefix of it, not
the input itself: a body sent again and again (a platform's retries, or junk)
is one row whose count grows, and a large body costs a few kilobytes. Rows
last seen longer ago than the retention are purged (`Engine.purge_dead_letters`).

An operator resolves a letter that needs nothing more by discarding it
(`Engine.discard_dead_letter`): the row stays, marked with who discarded it,
when and why, and leaves the open letters (`engine.store.dead_letters_sql`).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from engine.events import EventRejected
from engine.logs import get_logger
from engine.settings import RETENTION as RETENTION  # re-exported: where it was defined before
from engine.store.rows import DeadLetterRow

if TYPE_CHECKING:
    from engine.store.protocol import LogStore

log = get_logger("channelsync.dead_letters")

# Bytes of the input that are kept: enough for an operator to see what it was.
PREFIX_BYTES = 4096


def dead_letter_row(
    raw: str | bytes, source: str, rejected: EventRejected, now: float, size: int | None = None
) -> DeadLetterRow:
    """The row for ``raw``; ``size``: the whole input's size when ``raw`` is
    only what was read of it (a body cut at the size cap)."""
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", errors="surrogatepass")
    return DeadLetterRow(
        now,
        source,
        rejected.entity,
        data[:PREFIX_BYTES].decode("utf-8", errors="replace"),
        rejected.reason,
        digest=hashlib.sha256(data).hexdigest(),
        size=len(data) if size is None else size,
        last_seen=now,
    )


class DeadLetterNotFound(LookupError):
    """No dead letter has this id (never kept, or purged)."""

    def __init__(self, letter_id: int) -> None:
        super().__init__(f"no dead letter with id {letter_id}")
        self.letter_id = letter_id


class DeadLetterDiscarded(ValueError):
    """The letter was discarded already; the message says when, by whom, why."""

    def __init__(self, letter: DeadLetterRow) -> None:
        super().__init__(f"dead letter {letter.id} was {discarded_text(letter)}")
        self.letter = letter


def discarded_text(letter: DeadLetterRow) -> str:
    """``discarded at <time> by <actor>: <reason>`` (empty for an open letter)."""
    if letter.discarded_at is None:
        return ""
    at = datetime.fromtimestamp(letter.discarded_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    why = f": {letter.discard_reason}" if letter.discard_reason else ""
    return f"discarded at {at} by {letter.discarded_by}{why}"


# Dead letter ids are integers both stores can hold: nothing outside names one.
_ID_RANGE = range(-(2**63), 2**63)


async def discard_dead_letter(
    store: LogStore, letter_id: int, *, now: float, actor: str, reason: str | None
) -> DeadLetterRow:
    """Record that ``actor`` decided the letter needs nothing more (the row
    stays, with who, why and when); the letter as it is now. Raises
    `DeadLetterNotFound`, or `DeadLetterDiscarded` if it was discarded already."""
    if letter_id not in _ID_RANGE:
        raise DeadLetterNotFound(letter_id)
    outcome, letter = await store.discard_dead_letter(
        letter_id, now=now, actor=actor, reason=reason
    )
    if letter is None:
        raise DeadLetterNotFound(letter_id)
    if outcome == "refused":
        raise DeadLetterDiscarded(letter)
    # The operator's reason is free text: it stays in the database, not the log.
    log.info("dead letter discarded", dead_letter=letter_id, entity=letter.entity, actor=actor)
    return letter
