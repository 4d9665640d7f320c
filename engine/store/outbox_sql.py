"""The outbox's writes in SQL: claims (ENG-10) and operators' actions.

A dispatcher claims what it is about to run in one write transaction: it
writes its token into ``claimed_by`` and ``now + lease`` into ``claim_until``.
SQLite lets one write transaction run at a time across every process on the
file, so two dispatchers never claim the same command. A claimed command keeps
its status ``pending``: it still blocks the later commands of its entity, so
per-entity order holds across dispatchers. The outcome is written only if the
claim is still the claimant's own.

These are plain functions of a `sqlite3.Connection`: `SQLiteStore` runs them
on its writer (a thread or a child process, which receives them pickled), each
as one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, TypeVar

from engine.store.commands import (
    FILTERS,
    OPEN,
    ActionOutcome,
    CallResult,
    Done,
    FinishOutcome,
    Held,
)
from engine.store.transaction import in_transaction

T = TypeVar("T")

# The columns of an `OutboxCommand`, in its fields' order.
COMMAND_COLUMNS = (
    "id, entity, command, payload, idempotency_key, attempts, status, last_error, event_seq"
)

# What is due: pending, its time has come, not under a live claim, a command
# the dispatcher has a handler for, and no earlier pending command of its
# entity (claimed or not) ahead of it. ?1 now, ?2 the handled types (JSON).
# Held commands do not block: what is held under one key is released together,
# in order; nor do commands no handler here can carry out, so one missing
# handler does not stall every later command of an entity.
DUE_WHERE = (
    "o.status = 'pending' AND o.available_at <= ?1"
    " AND (o.claim_until IS NULL OR o.claim_until <= ?1)"
    " AND o.command IN (SELECT value FROM json_each(?2))"
    " AND NOT EXISTS (SELECT 1 FROM outbox AS e WHERE e.entity = o.entity AND e.id < o.id"
    " AND e.status = 'pending' AND e.command IN (SELECT value FROM json_each(?2)))"
)
DUE_SQL = f"SELECT {COMMAND_COLUMNS} FROM outbox AS o WHERE {DUE_WHERE} ORDER BY o.id LIMIT ?3"
_CLAIM_SQL = (
    f"SELECT {COMMAND_COLUMNS}, o.claimed_by FROM outbox AS o WHERE {DUE_WHERE}"
    " ORDER BY o.id LIMIT ?3"
)

# The columns of a `CommandView` (before its actions).
VIEW_COLUMNS = (
    "id, command, entity, status, attempts, last_error, idempotency_key, created_at,"
    " available_at, done_at, hold_key, event_seq, payload, claimed_by, claim_until"
)

# A pending command under a live claim (?: now) is running. A command never
# claimed has no claim_until: coalesce, or NOT of the NULL comparison would
# hide it from the "pending" listing too.
_RUNNING = "(status = 'pending' AND coalesce(claim_until, 0) > ?)"


def status_clause(wanted: str, now: float) -> tuple[str, list[Any]]:
    """The WHERE clause for a status filter, one of `FILTERS` in lower case.
    ``pending`` and ``running`` part at the claims' leases at ``now``."""
    if wanted not in FILTERS:
        raise ValueError(f"unknown status filter {wanted!r}")
    if wanted == "all":
        return "", []
    if wanted == "open":
        return f"status IN ({','.join('?' * len(OPEN))})", list(OPEN)
    if wanted == "failed":
        return (
            "(status = 'parked' OR (status = 'pending' AND attempts > 0"
            " AND last_error IS NOT NULL))",
            [],
        )
    if wanted == "running":
        return _RUNNING, [now]
    if wanted == "pending":
        return f"status = 'pending' AND NOT {_RUNNING}", [now]
    return "status = ?", [wanted]


def claim(
    db: sqlite3.Connection, token: str, now: float, lease: float, handled: str, limit: int
) -> list[tuple[Any, ...]]:
    """Claim up to ``limit`` due commands for ``token`` until ``now + lease``.

    Returns their rows (`COMMAND_COLUMNS`, then the previous claimant when the
    claim is taken over from one whose lease ran out)."""

    def work() -> list[tuple[Any, ...]]:
        rows = [tuple(r) for r in db.execute(_CLAIM_SQL, (now, handled, limit)).fetchall()]
        db.executemany(
            "UPDATE outbox SET claimed_by = ?, claim_until = ? WHERE id = ?",
            [(token, now + lease, row[0]) for row in rows],
        )
        return rows

    return in_transaction(db, work)


def renew(
    db: sqlite3.Connection, token: str, ids: Sequence[int], now: float, lease: float
) -> list[int]:
    """Extend the lease of the commands ``token`` still holds among ``ids``;
    returns the ids whose claim it no longer holds (taken over)."""

    def work() -> list[int]:
        lost = []
        for command_id in ids:
            changed = db.execute(
                "UPDATE outbox SET claim_until = ? WHERE id = ? AND claimed_by = ?",
                (now + lease, command_id, token),
            ).rowcount
            if not changed:
                lost.append(command_id)
        return lost

    return in_transaction(db, work)


_DROP = "claimed_by = NULL, claim_until = NULL"
# Done applies whatever the status: a call that succeeded after an operator
# discarded the command did happen, and shows so.
_DONE = (
    f"UPDATE outbox SET status = 'done', attempts = ?, last_error = NULL, done_at = ?, {_DROP}"
    " WHERE id = ? AND claimed_by = ?"
)
# The others only move a command that is still pending: one an operator
# discarded while its call was under way stays discarded.
_HELD = (
    f"UPDATE outbox SET status = 'held', attempts = ?, last_error = ?, hold_key = ?, {_DROP}"
    " WHERE id = ? AND claimed_by = ? AND status = 'pending'"
)
_RETRY = (
    "UPDATE outbox SET status = ?, attempts = ?, last_error = ?, available_at = ?,"
    f" {_DROP} WHERE id = ? AND claimed_by = ? AND status = 'pending'"
)


def _outcome_statement(result: CallResult) -> tuple[str, tuple[Any, ...]]:
    if isinstance(result, Done):
        return _DONE, (result.attempts, result.at)
    if isinstance(result, Held):
        return _HELD, (result.attempts, result.error, result.hold_key)
    return _RETRY, (result.status, result.attempts, result.error, result.available_at)


def finish(
    db: sqlite3.Connection, result: CallResult, command_id: int, token: str
) -> FinishOutcome:
    """Record a claimant's ``result`` and drop its claim (see `FinishOutcome`)."""
    sql, params = _outcome_statement(result)

    def work() -> FinishOutcome:
        if db.execute(sql, (*params, command_id, token)).rowcount:
            return "recorded"
        dropped = db.execute(
            f"UPDATE outbox SET {_DROP} WHERE id = ? AND claimed_by = ?", (command_id, token)
        ).rowcount
        return "overruled" if dropped else "lost"

    return in_transaction(db, work)


def void_all(db: sqlite3.Connection) -> int:
    """Drop every claim (autocommit): for a process that has just taken the
    database's lock, whose previous holder is gone with its calls."""
    return db.execute(f"UPDATE outbox SET {_DROP} WHERE claimed_by IS NOT NULL").rowcount


def release(db: sqlite3.Connection, command_id: int, token: str) -> int:
    """Give a claim up without an outcome (autocommit; the dispatcher is stopping)."""
    return db.execute(
        f"UPDATE outbox SET {_DROP} WHERE id = ? AND claimed_by = ?", (command_id, token)
    ).rowcount


_UPDATES = {
    # Due now (a time already past stays: the command keeps its place). A
    # parked command starts a fresh budget of attempts; its last error stays
    # visible until it runs again.
    "retry": (
        "UPDATE outbox SET status = 'pending', available_at = MIN(available_at, ?),"
        " attempts = CASE WHEN status = 'parked' THEN 0 ELSE attempts END, hold_key = NULL"
        " WHERE id = ?"
    ),
    "discard": "UPDATE outbox SET status = 'discarded', hold_key = NULL WHERE id = ?",
}


# What an operator's action reads of its command, in both stores.
ACTION_READ = "SELECT status, attempts, last_error, entity, claim_until FROM outbox"
# An action's record in ``outbox_actions``, as both stores write and read it.
ACTION_COLUMNS = (
    "command_id, action, actor, reason, at, status_before, attempts_before, error_before"
)


def action_writes(
    row: Sequence[Any], command_id: int, action: str, actor: str, reason: str | None, now: float
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The parameters of an accepted action's status change (the store's
    ``UPDATE`` of that action) and of its record (`ACTION_COLUMNS`), from the
    command's `ACTION_READ` row."""
    status, attempts, error, _entity, _claim_until = row
    change = (now, command_id) if action == "retry" else (command_id,)
    return change, (command_id, action, actor, reason, now, status, attempts, error)


def action_insert(mark: str) -> str:
    """The ``INSERT`` of an action's record, with the store's placeholder ``mark``."""
    marks = ", ".join([mark] * len(ACTION_COLUMNS.split(",")))
    return f"INSERT INTO outbox_actions ({ACTION_COLUMNS}) VALUES ({marks})"


_ACTION_INSERT = action_insert("?")


def action_refused(
    row: Sequence[Any] | None, action: str, allowed: tuple[str, ...], now: float
) -> ActionOutcome | None:
    """Why an operator's ``action`` is not taken on the command read by
    `ACTION_READ` (None: it is): missing, running (a live claim, for a retry),
    or a status outside ``allowed``. Both stores decide by this one rule."""
    if row is None:
        return ActionOutcome("missing", None, None)
    status, _attempts, _error, entity, claim_until = row
    running = status == "pending" and claim_until is not None and claim_until > now
    if action == "retry" and running:
        return ActionOutcome("refused", "running", entity)
    if status not in allowed:
        return ActionOutcome("refused", status, entity)
    return None


def act(
    db: sqlite3.Connection,
    command_id: int,
    action: str,
    allowed: tuple[str, ...],
    actor: str,
    reason: str | None,
    now: float,
) -> ActionOutcome:
    """One operator action as one transaction: read the status, refuse or
    change it, record the action in ``outbox_actions``."""
    db.execute("BEGIN IMMEDIATE")
    try:
        row = db.execute(f"{ACTION_READ} WHERE id = ?", (command_id,)).fetchone()
        refused = action_refused(row, action, allowed, now)
        if refused is not None:
            db.execute("ROLLBACK")
            return refused
        change, record = action_writes(row, command_id, action, actor, reason, now)
        db.execute(_UPDATES[action], change)
        db.execute(_ACTION_INSERT, record)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    status, _attempts, _error, entity, _claim_until = row
    return ActionOutcome("ok", status, entity)
