"""`SQLiteStore`'s outbox: what dispatchers claim and record, what operators
list and do (the SQL itself is in `engine.store.outbox_sql`)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from engine.store import outbox_sql
from engine.store.commands import (
    DISCARDABLE,
    RETRYABLE,
    ActionOutcome,
    CallResult,
    Claimed,
    CommandAction,
    CommandView,
    FinishOutcome,
    OutboxCommand,
)
from engine.store.outbox_sql import COMMAND_COLUMNS, DUE_SQL, VIEW_COLUMNS, status_clause
from engine.store.rows import dumps, loads
from engine.store.sqlite_base import SQLiteBase, chunks, marks


def command_of(row: Sequence[Any]) -> OutboxCommand:
    """An `OutboxCommand` from a row of `COMMAND_COLUMNS`."""
    return OutboxCommand(
        row[0], row[1], row[2], loads(row[3]), row[4], row[5], row[6], row[7], row[8]
    )


def _view(row: Sequence[Any], actions: tuple[CommandAction, ...], now: float) -> CommandView:
    claimed_by, claim_until = row[13], row[14]
    status = row[3]
    if status == "pending" and claim_until is not None and claim_until > now:
        status = "running"
    else:  # a claim that ran out is nobody's: the command is plainly pending
        claimed_by = claim_until = None
    (id_, type_, entity, _stored, attempts, last_error, key, created_at, available_at) = row[:9]
    done_at, hold_key, event_seq, payload = row[9:13]
    return CommandView(
        id=id_,
        type=type_,
        entity=entity,
        status=status,
        attempts=attempts,
        last_error=last_error,
        idempotency_key=key,
        created_at=created_at,
        available_at=available_at,
        done_at=done_at,
        hold_key=hold_key,
        event_seq=event_seq,
        payload=loads(payload),
        actions=actions,
        claimed_by=claimed_by,
        claim_until=claim_until,
    )


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


class SQLiteOutbox(SQLiteBase):
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

    async def list_commands(
        self, *, status: str | None = None, entity: str | None = None
    ) -> list[OutboxCommand]:
        clauses, params = [], []
        for column, value in (("status", status), ("entity", entity)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self.fetchall(
            f"SELECT {COMMAND_COLUMNS} FROM outbox{where} ORDER BY id", params
        )
        return [command_of(r) for r in rows]

    async def command_views(
        self, status_filter: str, now: float, *, entity: str | None = None
    ) -> list[CommandView]:
        clause, params = status_clause(status_filter, now)
        clauses = [clause] if clause else []
        if entity is not None:
            clauses.append("entity = ?")
            params.append(entity)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self.fetchall(f"SELECT {VIEW_COLUMNS} FROM outbox{where} ORDER BY id", params)
        actions = await self._actions([r[0] for r in rows])
        return [_view(r, actions.get(r[0], ()), now) for r in rows]

    async def command_view(self, command_id: int, now: float) -> CommandView | None:
        rows = await self.fetchall(f"SELECT {VIEW_COLUMNS} FROM outbox WHERE id = ?", (command_id,))
        if not rows:
            return None
        actions = await self._actions([command_id])
        return _view(rows[0], actions.get(command_id, ()), now)

    async def _actions(self, ids: list[int]) -> dict[int, tuple[CommandAction, ...]]:
        found: dict[int, list[CommandAction]] = {}
        for chunk in chunks(ids):
            rows = await self.fetchall(
                "SELECT command_id, action, actor, reason, at, status_before, attempts_before,"
                f" error_before FROM outbox_actions WHERE command_id IN ({marks(len(chunk))})"
                " ORDER BY id",
                chunk,
            )
            for row in rows:
                found.setdefault(row[0], []).append(CommandAction(*row[1:]))
        return {key: tuple(value) for key, value in found.items()}

    async def retry_command(
        self,
        command_id: int,
        *,
        now: float,
        actor: str,
        reason: str | None = None,
        allowed: tuple[str, ...] = RETRYABLE,
    ) -> ActionOutcome:
        return await self.run_write(
            outbox_sql.act, command_id, "retry", allowed, actor, reason, now
        )

    async def discard_command(
        self, command_id: int, *, now: float, actor: str, reason: str | None = None
    ) -> ActionOutcome:
        return await self.run_write(
            outbox_sql.act, command_id, "discard", DISCARDABLE, actor, reason, now
        )

    async def release_held(self, now: float, hold_key: str | None = None) -> int:
        sql = (
            "UPDATE outbox SET status = 'pending', available_at = ?, hold_key = NULL"
            " WHERE status = 'held'"
        )
        if hold_key is None:
            return await self.execute_write(sql, (now,))
        return await self.execute_write(sql + " AND hold_key = ?", (now, hold_key))


__all__ = ["SQLiteOutbox", "command_of"]
