"""What an operator sees of the outbox and does about stuck work.

`OutboxCommands` (``engine.commands``) lists commands with their status and
the reason they wait, and acts on one command by id: ``retry`` puts it back
in the queue, due now, with the same idempotency key (a repeat the platform
can recognise); ``discard`` makes sure it never runs. Each action is recorded
in ``outbox_actions`` (who, why, when, and the status, attempts and error the
command had), in the same transaction as the change it describes.

Statuses, as stored in ``outbox.status``:

- ``pending``: waits for its turn (``available_at``); after a transient error
  it carries the error and how many attempts were made;
- ``held``: waits until something else changes (a shop's authorization); it
  is released on its own when that happens;
- ``parked``: gave up (a permanent refusal, or every attempt failed); only an
  operator's retry or discard moves it;
- ``done``: carried out;
- ``discarded``: an operator decided it must never run;
- ``inert``: recorded by `ingest` from another database's log; it was that
  database's work, never this one's.

``failed`` is a filter, not a stored status: the commands whose last attempt
failed and that have not succeeded since (parked, or pending a retry).
``running`` is shown, not stored: a pending command that a dispatcher has
claimed and whose lease has not run out (ENG-10). Its call is under way: a
retry is refused (it would change nothing but the record); a discard is
recorded at once and the call in flight finishes (done if it succeeded).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine.clock import Clock
from engine.logs import get_logger
from engine.store.sqlite import SQLiteStore, loads

log = get_logger("channelsync.outbox")

STATUSES = ("pending", "held", "parked", "done", "discarded", "inert")
# Filters beyond the stored statuses: what failed, what waits on nobody but
# an operator or the clock, and everything.
FILTERS = (*STATUSES, "running", "failed", "open", "all")
OPEN = ("pending", "held", "parked")

RETRYABLE = ("pending", "held", "parked")
DISCARDABLE = ("pending", "held", "parked")


# Command ids are SQLite integers: nothing outside this range can name one.
_ID_RANGE = range(-(2**63), 2**63)


def _checked(command_id: int) -> int:
    if command_id not in _ID_RANGE:
        raise CommandNotFound(command_id)
    return command_id


class CommandNotFound(LookupError):
    """No command has this id."""

    def __init__(self, command_id: int) -> None:
        super().__init__(f"no outbox command with id {command_id}")
        self.command_id = command_id


class CommandActionRefused(ValueError):
    """The command's status does not allow the action (a done command is not run twice)."""

    def __init__(self, command_id: int, action: str, status: str) -> None:
        why = {
            "done": "it was carried out already; running it again would repeat it",
            "discarded": "it was discarded, and a discarded command never runs",
            "inert": (
                "it was ingested from another database's log; that database carried it out"
                " (or not), so this one never does"
            ),
            "running": (
                "it is running now; wait for its call to finish (or, if its process died,"
                " for its claim to expire)"
            ),
        }.get(status, f"it is {status}")
        super().__init__(f"cannot {action} command {command_id}: {why}")
        self.command_id = command_id
        self.action = action
        self.status = status


class UnknownStatusFilter(ValueError):
    def __init__(self, value: str) -> None:
        super().__init__(f"unknown status {value!r}: use one of {', '.join(FILTERS)}")
        self.value = value


@dataclass(frozen=True, slots=True)
class CommandAction:
    """One operator action on a command."""

    action: str
    actor: str
    reason: str | None
    at: float
    status_before: str
    attempts_before: int
    error_before: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "actor": self.actor,
            "reason": self.reason,
            "at": self.at,
            "status_before": self.status_before,
            "attempts_before": self.attempts_before,
            "error_before": self.error_before,
        }


@dataclass(frozen=True, slots=True)
class CommandView:
    """A command as an operator sees it."""

    id: int
    type: str
    entity: str
    status: str
    attempts: int
    last_error: str | None
    idempotency_key: str
    created_at: float
    available_at: float
    done_at: float | None
    hold_key: str | None
    event_seq: int
    payload: dict[str, Any]
    actions: tuple[CommandAction, ...] = field(default_factory=tuple)
    # Who runs it and until when their lease lasts, while it is running.
    claimed_by: str | None = None
    claim_until: float | None = None

    @property
    def next_attempt_at(self) -> float | None:
        """When the dispatcher will next try it: only a pending command has a time."""
        return self.available_at if self.status == "pending" else None

    @property
    def reason(self) -> str | None:
        """Why it is where it is: the claimant, the discard's reason, the inert
        note, the hold or the error."""
        if self.status == "running":
            return f"claimed by {self.claimed_by} until {_iso(self.claim_until)}"
        if self.status == "discarded":
            last = self.actions[-1] if self.actions else None
            by = f"discarded by {last.actor}" if last else "discarded"
            return f"{by}: {last.reason}" if last and last.reason else by
        return self.last_error

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "entity": self.entity,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at,
            "reason": self.reason,
            "last_error": self.last_error,
            "hold_key": self.hold_key,
            "idempotency_key": self.idempotency_key,
            "created_at": self.created_at,
            "done_at": self.done_at,
            "event_seq": self.event_seq,
            "payload": self.payload,
            "actions": [a.as_dict() for a in self.actions],
            "claimed_by": self.claimed_by,
            "claim_until": self.claim_until,
        }


_VIEW_COLUMNS = (
    "id, command, entity, status, attempts, last_error, idempotency_key, created_at,"
    " available_at, done_at, hold_key, event_seq, payload, claimed_by, claim_until"
)

# A pending command under a live claim (?: now) is running.
_RUNNING = "(status = 'pending' AND claim_until > ?)"


def status_clause(status: str | None, now: float) -> tuple[str, list[Any]]:
    """The WHERE clause for a status filter (case-insensitive); None means every
    open command. ``pending`` and ``running`` part at the claims' leases at ``now``."""
    wanted = (status or "open").strip().lower()
    if wanted not in FILTERS:
        raise UnknownStatusFilter(status or "")
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


class OutboxCommands:
    """The operator's handle on the outbox (``engine.commands``)."""

    def __init__(self, store: SQLiteStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def list(
        self, status: str | None = None, *, entity: str | None = None
    ) -> list[CommandView]:
        """Commands by id; ``status`` is one of `FILTERS` (default: the open ones,
        pending, held and parked)."""
        now = self.clock.now()
        clause, params = status_clause(status, now)
        clauses = [clause] if clause else []
        if entity is not None:
            clauses.append("entity = ?")
            params.append(entity)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self.store.fetchall(
            f"SELECT {_VIEW_COLUMNS} FROM outbox{where} ORDER BY id", params
        )
        actions = await self._actions([r[0] for r in rows])
        return [_view(r, actions.get(r[0], ()), now) for r in rows]

    async def get(self, command_id: int) -> CommandView:
        rows = await self.store.fetchall(
            f"SELECT {_VIEW_COLUMNS} FROM outbox WHERE id = ?", (_checked(command_id),)
        )
        if not rows:
            raise CommandNotFound(command_id)
        actions = await self._actions([command_id])
        return _view(rows[0], actions.get(command_id, ()), self.clock.now())

    async def retry(
        self, command_id: int, *, actor: str = "api", reason: str | None = None
    ) -> CommandView:
        """Run the command again, now, with its own idempotency key. A parked
        command gets a fresh budget of attempts; a held one is released (and is
        held again if what it waits for has not changed); a pending one stops
        waiting out its backoff. Done, discarded and inert commands are refused."""
        before = await self.store.run_write(
            act, _checked(command_id), "retry", RETRYABLE, actor, reason, self.clock.now()
        )
        self._logged(command_id, "retry", before, actor)
        return await self.get(command_id)

    async def discard(
        self, command_id: int, reason: str | None = None, *, actor: str = "api"
    ) -> CommandView:
        """Make sure the command never runs. A call already under way when it is
        discarded finishes, and shows done if it succeeded."""
        before = await self.store.run_write(
            act, _checked(command_id), "discard", DISCARDABLE, actor, reason, self.clock.now()
        )
        self._logged(command_id, "discard", before, actor)
        return await self.get(command_id)

    def _logged(self, command_id: int, action: str, before: tuple[Any, ...], actor: str) -> None:
        outcome, status, entity = before
        if outcome == "missing":
            raise CommandNotFound(command_id)
        if outcome == "refused":
            raise CommandActionRefused(command_id, action, status)
        # The operator's reason is free text: it stays in the database, not the log.
        log.info(f"command {action}", command_id=command_id, entity=entity, actor=actor, was=status)

    async def _actions(self, ids: list[int]) -> dict[int, tuple[CommandAction, ...]]:
        if not ids:
            return {}
        found: dict[int, list[CommandAction]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = await self.store.fetchall(
                "SELECT command_id, action, actor, reason, at, status_before, attempts_before,"
                f" error_before FROM outbox_actions WHERE command_id IN ({marks}) ORDER BY id",
                chunk,
            )
            for row in rows:
                found.setdefault(row[0], []).append(CommandAction(*row[1:]))
        return {key: tuple(value) for key, value in found.items()}


def _view(row: Any, actions: tuple[CommandAction, ...], now: float) -> CommandView:
    claimed_by, claim_until = row[13], row[14]
    status = row[3]
    if status == "pending" and claim_until is not None and claim_until > now:
        status = "running"
    else:  # a claim that ran out is nobody's: the command is plainly pending
        claimed_by = claim_until = None
    return CommandView(
        *row[:3], status, *row[4:12], loads(row[12]), actions, claimed_by, claim_until
    )


def _iso(timestamp: float | None) -> str:
    if timestamp is None:
        return "an unknown time"
    moment = datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
    return moment.replace("+00:00", "Z")


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


def act(
    db: sqlite3.Connection,
    command_id: int,
    action: str,
    allowed: tuple[str, ...],
    actor: str,
    reason: str | None,
    now: float,
) -> tuple[str, str | None, str | None]:
    """One operator action as one transaction: read the status, refuse or
    change it, record the action. Returns (outcome, status before, entity)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        row = db.execute(
            "SELECT status, attempts, last_error, entity, claim_until FROM outbox WHERE id = ?",
            (command_id,),
        ).fetchone()
        if row is None:
            db.execute("ROLLBACK")
            return "missing", None, None
        status, attempts, error, entity, claim_until = row
        running = status == "pending" and claim_until is not None and claim_until > now
        if action == "retry" and running:
            db.execute("ROLLBACK")
            return "refused", "running", entity
        if status not in allowed:
            db.execute("ROLLBACK")
            return "refused", status, entity
        params = (now, command_id) if action == "retry" else (command_id,)
        db.execute(_UPDATES[action], params)
        db.execute(
            "INSERT INTO outbox_actions (command_id, action, actor, reason, at, status_before,"
            " attempts_before, error_before) VALUES (?,?,?,?,?,?,?,?)",
            (command_id, action, actor, reason, now, status, attempts, error),
        )
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return "ok", status, entity
