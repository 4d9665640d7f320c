"""Outbox claims (ENG-10): a command is claimed, with a lease, before it runs.

A dispatcher claims what it is about to run in one write transaction: it
writes its token into ``claimed_by`` and ``now + lease`` into ``claim_until``.
SQLite lets one write transaction run at a time across every process on the
file, so two dispatchers never claim the same command. A claimed command keeps
its status ``pending``: it still blocks the later commands of its entity, so
per-entity order holds across dispatchers. The claimant renews the lease while
the call is under way and drops the claim when it records the outcome; the
outcome is written only if the claim is still its own. A claim whose lease ran
out (its process died) is taken over by the next dispatcher that looks; and
a process that takes the database's lock (`engine.store.lock`) voids every
claim at once, since only a process that is gone can have made them.

These are plain functions of a `sqlite3.Connection`: the store runs them on
its writer (a thread or a child process, which receives them pickled).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Literal

# The columns of an `OutboxCommand`, then who held the claim before (if anyone).
COMMAND_COLUMNS = (
    "id, entity, command, payload, idempotency_key, attempts, status, last_error, event_seq"
)

# What is due: pending, its time has come, not under a live claim, a command
# this dispatcher has a handler for, and no earlier pending command of its
# entity (claimed or not) ahead of it. ?1 now, ?2 the handled types (JSON).
DUE_WHERE = (
    "o.status = 'pending' AND o.available_at <= ?1"
    " AND (o.claim_until IS NULL OR o.claim_until <= ?1)"
    " AND o.command IN (SELECT value FROM json_each(?2))"
    " AND NOT EXISTS (SELECT 1 FROM outbox AS e WHERE e.entity = o.entity AND e.id < o.id"
    " AND e.status = 'pending' AND e.command IN (SELECT value FROM json_each(?2)))"
)
DUE_SQL = (
    f"SELECT {COMMAND_COLUMNS}, o.claimed_by FROM outbox AS o WHERE {DUE_WHERE}"
    " ORDER BY o.id LIMIT ?3"
)

Outcome = Literal["recorded", "overruled", "lost"]


def new_token() -> str:
    """A dispatcher's claim token: host and pid for the operator, then a random
    part, so two dispatchers of one process never share a claim."""
    return f"{socket.gethostname()}/pid {os.getpid()}/{secrets.token_hex(4)}"


def _in_transaction(db: sqlite3.Connection, work: Callable[[], Any]) -> Any:
    db.execute("BEGIN IMMEDIATE")
    try:
        result = work()
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
    return result


def claim(
    db: sqlite3.Connection, token: str, now: float, lease: float, handled: str, limit: int
) -> list[tuple[Any, ...]]:
    """Claim up to ``limit`` due commands for ``token`` until ``now + lease``.

    Returns their rows (`COMMAND_COLUMNS`, then the previous claimant when the
    claim is taken over from one whose lease ran out)."""

    def work() -> list[tuple[Any, ...]]:
        rows = [tuple(r) for r in db.execute(DUE_SQL, (now, handled, limit)).fetchall()]
        db.executemany(
            "UPDATE outbox SET claimed_by = ?, claim_until = ? WHERE id = ?",
            [(token, now + lease, row[0]) for row in rows],
        )
        return rows

    return _in_transaction(db, work)  # type: ignore[no-any-return]


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

    return _in_transaction(db, work)  # type: ignore[no-any-return]


_DROP = "claimed_by = NULL, claim_until = NULL"
_OUTCOMES = {
    # Done applies whatever the status: a call that succeeded after an
    # operator discarded the command did happen, and shows so.
    "done": (
        f"UPDATE outbox SET status = 'done', attempts = ?, last_error = NULL, done_at = ?, {_DROP}"
        " WHERE id = ? AND claimed_by = ?"
    ),
    # The others only move a command that is still pending: one an operator
    # discarded while its call was under way stays discarded.
    "held": (
        f"UPDATE outbox SET status = 'held', attempts = ?, last_error = ?, hold_key = ?, {_DROP}"
        " WHERE id = ? AND claimed_by = ? AND status = 'pending'"
    ),
    "retry": (
        "UPDATE outbox SET status = ?, attempts = ?, last_error = ?, available_at = ?,"
        f" {_DROP} WHERE id = ? AND claimed_by = ? AND status = 'pending'"
    ),
}


def finish(
    db: sqlite3.Connection, kind: str, params: Sequence[Any], command_id: int, token: str
) -> Outcome:
    """Record a claimant's outcome (``kind``: done, held or retry, with its
    ``params`` before the id) and drop its claim. ``recorded``: written;
    ``overruled``: the claim was ours but an operator had discarded the command
    meanwhile (only the claim is dropped); ``lost``: the claim is no longer
    ours (it ran out and another dispatcher took the command over)."""

    def work() -> Outcome:
        if db.execute(_OUTCOMES[kind], (*params, command_id, token)).rowcount:
            return "recorded"
        dropped = db.execute(
            f"UPDATE outbox SET {_DROP} WHERE id = ? AND claimed_by = ?", (command_id, token)
        ).rowcount
        return "overruled" if dropped else "lost"

    return _in_transaction(db, work)  # type: ignore[no-any-return]


def void_all(db: sqlite3.Connection) -> int:
    """Drop every claim: for a process that has just taken the database's lock.

    Whoever made those claims held the lock before it and is gone (a crash,
    SIGKILL): nothing of theirs is running, so their commands need not wait
    out the lease."""
    return db.execute(f"UPDATE outbox SET {_DROP} WHERE claimed_by IS NOT NULL").rowcount


def release(db: sqlite3.Connection, command_id: int, token: str) -> int:
    """Give a claim up without an outcome (the dispatcher is stopping)."""
    return db.execute(
        f"UPDATE outbox SET {_DROP} WHERE id = ? AND claimed_by = ?", (command_id, token)
    ).rowcount
