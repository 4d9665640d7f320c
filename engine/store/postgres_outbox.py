"""`PostgresStore`'s outbox: claims under leases (ENG-10) and operators' actions.

The rules are SQLite's (`engine.store.outbox_sql`): a claimed command stays
``pending`` and blocks its entity's later commands; an outcome is written only
if the claim is still the claimant's own. What SQLite gets from allowing one
write transaction at a time, PostgreSQL gets from a transaction-scoped
advisory lock taken by every claim: two dispatchers, in this process or any
other, never read the same due command as free. An operator's action locks
the command's row (``FOR UPDATE``) while it decides.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from engine.store.commands import (
    ActionOutcome,
    CallResult,
    Claimed,
    CommandAction,
    FinishOutcome,
    OutboxCommand,
)
from engine.store.outbox_sql import (
    ACTION_COLUMNS,
    ACTION_READ,
    COMMAND_COLUMNS,
    _outcome_statement,
    action_insert,
    action_refused,
    action_writes,
)
from engine.store.postgres_base import PostgresBase, qmarks
from engine.store.sql_reads import SharedOutboxReads, command_of

_RECORD = action_insert("%s")
# Any constant both sides agree on: the key of the claims' advisory lock.
CLAIM_LOCK = 0x6368_616E_636C_6D  # "chanclm"

_DUE_WHERE = (
    "o.status = 'pending' AND o.available_at <= %(now)s"
    " AND (o.claim_until IS NULL OR o.claim_until <= %(now)s)"
    " AND o.command = ANY(%(handled)s::text[])"
    " AND NOT EXISTS (SELECT 1 FROM outbox AS e WHERE e.entity = o.entity AND e.id < o.id"
    " AND e.status = 'pending' AND e.command = ANY(%(handled)s::text[]))"
)
_DUE = f"SELECT {COMMAND_COLUMNS} FROM outbox AS o WHERE {_DUE_WHERE} ORDER BY o.id LIMIT %(limit)s"
_RETURNED = ", ".join(f"outbox.{name.strip()}" for name in COMMAND_COLUMNS.split(","))
_CLAIM = (
    "UPDATE outbox SET claimed_by = %(token)s, claim_until = %(until)s FROM"
    f" (SELECT o.id, o.claimed_by AS previous FROM outbox AS o WHERE {_DUE_WHERE}"
    " ORDER BY o.id LIMIT %(limit)s) AS due"
    f" WHERE outbox.id = due.id RETURNING {_RETURNED}, due.previous"
)
_DROP = "claimed_by = NULL, claim_until = NULL"
_UPDATES = {
    "retry": (
        "UPDATE outbox SET status = 'pending', available_at = LEAST(available_at, %s),"
        " attempts = CASE WHEN status = 'parked' THEN 0 ELSE attempts END, hold_key = NULL"
        " WHERE id = %s"
    ),
    "discard": "UPDATE outbox SET status = 'discarded', hold_key = NULL WHERE id = %s",
}


class PostgresOutbox(PostgresBase, SharedOutboxReads):
    async def due_commands(
        self, now: float, handled: Collection[str], limit: int = 500
    ) -> list[OutboxCommand]:
        params = {"now": now, "handled": sorted(handled), "limit": limit}
        return [command_of(r) for r in await self.fetchall(_DUE, params)]  # type: ignore[arg-type]

    async def claim_commands(
        self, token: str, now: float, lease: float, handled: Collection[str], limit: int = 500
    ) -> list[Claimed]:
        # A cheap read first: an idle outbox costs no write transaction.
        if not await self.due_commands(now, handled, 1):
            return []
        params = {
            "token": token,
            "until": now + lease,
            "now": now,
            "handled": sorted(handled),
            "limit": limit,
        }
        async with self.writing() as db, db.cursor() as cursor:
            await cursor.execute("SELECT pg_advisory_xact_lock(%s)", (CLAIM_LOCK,))
            await cursor.execute(_CLAIM, params)
            rows = sorted(await cursor.fetchall(), key=lambda row: row[0])
        return [Claimed(command_of(row), row[-1]) for row in rows]

    async def renew_claims(
        self, token: str, ids: Sequence[int], now: float, lease: float
    ) -> list[int]:
        async with self.writing() as db, db.cursor() as cursor:
            await cursor.execute(
                "UPDATE outbox SET claim_until = %s WHERE id = ANY(%s::bigint[])"
                " AND claimed_by = %s RETURNING id",
                (now + lease, list(ids), token),
            )
            kept = {row[0] for row in await cursor.fetchall()}
        return [command_id for command_id in ids if command_id not in kept]

    async def finish_command(
        self, command_id: int, token: str, result: CallResult
    ) -> FinishOutcome:
        sql, params = _outcome_statement(result)
        async with self.writing() as db, db.cursor() as cursor:
            await cursor.execute(qmarks(sql), (*params, command_id, token))
            if cursor.rowcount:
                return "recorded"
            await cursor.execute(
                f"UPDATE outbox SET {_DROP} WHERE id = %s AND claimed_by = %s", (command_id, token)
            )
            return "overruled" if cursor.rowcount else "lost"

    async def release_claim(self, command_id: int, token: str) -> bool:
        changed = await self.execute_write(
            f"UPDATE outbox SET {_DROP} WHERE id = %s AND claimed_by = %s", (command_id, token)
        )
        return changed > 0

    async def void_claims(self) -> int:
        return await self.execute_write(f"UPDATE outbox SET {_DROP} WHERE claimed_by IS NOT NULL")

    async def _actions(self, ids: list[int]) -> dict[int, tuple[CommandAction, ...]]:
        if not ids:
            return {}
        rows = await self.fetchall(
            f"SELECT {ACTION_COLUMNS} FROM outbox_actions WHERE command_id = ANY(%s::bigint[])"
            " ORDER BY id",
            (ids,),
        )
        found: dict[int, list[CommandAction]] = {}
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
        """Read the status, refuse or change it, record the action: one transaction."""
        async with self.writing() as db, db.cursor() as cursor:
            await cursor.execute(f"{ACTION_READ} WHERE id = %s FOR UPDATE", (command_id,))
            row = await cursor.fetchone()
            refused = action_refused(row, action, allowed, now)
            if refused is not None:
                return refused
            assert row is not None
            change, record = action_writes(row, command_id, action, actor, reason, now)
            await cursor.execute(_UPDATES[action], change)
            await cursor.execute(_RECORD, record)
        status, _attempts, _error, entity, _claim_until = row
        return ActionOutcome("ok", status, entity)


__all__ = ["CLAIM_LOCK", "PostgresOutbox"]
