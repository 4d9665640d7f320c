"""`SQLiteStore`'s outbox: what dispatchers claim and record, what operators
list and do (the SQL itself is in `engine.store.outbox_sql`)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from engine.store import outbox_sql
from engine.store.commands import (
    ActionOutcome,
    CallResult,
    Claimed,
    CommandAction,
    FinishOutcome,
    OutboxCommand,
)
from engine.store.outbox_sql import ACTION_COLUMNS, DUE_SQL, status_clause
from engine.store.rows import dumps
from engine.store.sql_reads import SharedOutboxReads, command_of
from engine.store.sqlite_base import SQLiteBase, chunks, marks

# The outbox gauges of /metrics (engine.metrics) in one pass over the open
# commands only (the status index keeps done ones out); "failed" as
# `channelsync commands --status failed` counts it.
OUTBOX_COUNTS_SQL = (
    "SELECT coalesce(sum(status = 'pending'), 0), coalesce(sum(status = 'held'), 0),"
    f" coalesce(sum(status = 'parked'), 0), coalesce(sum({status_clause('failed', 0)[0]}), 0)"
    " FROM outbox WHERE status IN ('pending', 'held', 'parked')"
)


def _handled(types: Collection[str]) -> str:
    return dumps(sorted(types))


class SQLiteOutbox(SQLiteBase, SharedOutboxReads):
    async def due_commands(
        self, now: float, handled: Collection[str], limit: int = 500
    ) -> list[OutboxCommand]:
        rows = await self.fetchall(DUE_SQL, (now, _handled(handled), limit))
        return [command_of(r) for r in rows]

    async def claim_commands(
        self, token: str, now: float, lease: float, handled: Collection[str], limit: int = 500
    ) -> list[Claimed]:
        # A cheap read first: an idle outbox costs no write transaction.
        if not await self.due_commands(now, handled, 1):
            return []
        rows = await self.run_write(outbox_sql.claim, token, now, lease, _handled(handled), limit)
        return [Claimed(command_of(row), row[-1]) for row in rows]

    async def renew_claims(
        self, token: str, ids: Sequence[int], now: float, lease: float
    ) -> list[int]:
        return await self.run_write(outbox_sql.renew, token, list(ids), now, lease)

    async def finish_command(
        self, command_id: int, token: str, result: CallResult
    ) -> FinishOutcome:
        return await self.run_write(outbox_sql.finish, result, command_id, token)

    async def release_claim(self, command_id: int, token: str) -> bool:
        return bool(await self.run_write(outbox_sql.release, command_id, token))

    async def void_claims(self) -> int:
        return await self.run_write(outbox_sql.void_all)

    async def outbox_counts(self) -> dict[str, int]:
        """Commands pending, held, parked and failed (engine.metrics.OutboxCounts)."""
        pending, held, parked, failed = (await self.fetchall(OUTBOX_COUNTS_SQL))[0]
        return {"pending": pending, "held": held, "parked": parked, "failed": failed}

    async def _actions(self, ids: list[int]) -> dict[int, tuple[CommandAction, ...]]:
        found: dict[int, list[CommandAction]] = {}
        for chunk in chunks(ids):
            rows = await self.fetchall(
                f"SELECT {ACTION_COLUMNS} FROM outbox_actions"
                f" WHERE command_id IN ({marks(len(chunk))}) ORDER BY id",
                chunk,
            )
            for row in rows:
                found.setdefault(row[0], []).append(CommandAction(*row[1:]))
        return {key: tuple(value) for key, value in found.items()}

    async def _act(
        self,
        command_id: int,
        action: str,
        allowed: tuple[str, ...],
        actor: str,
        reason: str | None,
        now: float,
    ) -> ActionOutcome:
        return await self.run_write(outbox_sql.act, command_id, action, allowed, actor, reason, now)


__all__ = ["SQLiteOutbox", "command_of"]
