"""Dead letters as both stores read, purge and discard them, written once.

A discard is kept on the letter's row (``discarded_at``, ``discarded_by``,
``discard_reason``), never a deletion: an operator can still see the letter
and who decided it needs nothing more. A letter is open while it is not
discarded, or when the same input came again after the discard (its
``last_seen`` is later): the new arrival is new information, so it shows
again, and the earlier discard stays on the row beside it.
"""

from __future__ import annotations

from engine.store.rows import DeadLetterRow, LetterDiscard
from engine.store.sql_reads import SharedSQL, where_of

_COLUMNS = (
    "received_at, source, entity, raw, error, id, digest, size, count, last_seen,"
    " discarded_at, discarded_by, discard_reason"
)
# The SQL twin of `DeadLetterRow.open`.
OPEN_SQL = "(discarded_at IS NULL OR COALESCE(last_seen, received_at) > discarded_at)"


class SharedDeadLetters(SharedSQL):
    """Dead letters: read (open ones by default), purge, discard one."""

    async def dead_letters(
        self, entity: str | None = None, *, include_discarded: bool = False
    ) -> list[DeadLetterRow]:
        where, params = where_of([("entity", entity)])
        if not include_discarded:
            where += (" AND " if where else " WHERE ") + OPEN_SQL
        rows = await self.fetchall(
            f"SELECT {_COLUMNS} FROM dead_letters{where} ORDER BY id", params
        )
        return [DeadLetterRow(*row) for row in rows]

    async def dead_letter(self, letter_id: int) -> DeadLetterRow | None:
        rows = await self.fetchall(
            f"SELECT {_COLUMNS} FROM dead_letters WHERE id = ?", (letter_id,)
        )
        return DeadLetterRow(*rows[0]) if rows else None

    async def purge_dead_letters(self, before: float) -> int:
        """Delete the dead letters last seen before ``before``; how many went."""
        return await self.execute_write(
            "DELETE FROM dead_letters WHERE COALESCE(last_seen, received_at) < ?", (before,)
        )

    async def discard_dead_letter(
        self, letter_id: int, *, now: float, actor: str, reason: str | None = None
    ) -> LetterDiscard:
        # One statement: the check (still open) and the change cannot be split
        # by a concurrent discard, so two operators never both discard it.
        changed = await self.execute_write(
            "UPDATE dead_letters SET discarded_at = ?, discarded_by = ?, discard_reason = ?"
            f" WHERE id = ? AND {OPEN_SQL}",
            # NUL is the one character PostgreSQL's text cannot hold.
            (now, actor, reason.replace("\x00", "\ufffd") if reason else None, letter_id),
        )
        letter = await self.dead_letter(letter_id)
        if letter is None:
            return LetterDiscard("missing", None)
        return LetterDiscard("discarded" if changed else "refused", letter)


__all__ = ["OPEN_SQL", "SharedDeadLetters"]
