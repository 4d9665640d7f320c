"""The outbox: commands recorded with the state change that asked for them (ENG-6).

Transitions only *record* commands, in the same transaction as the state
change. After commit, the `OutboxDispatcher` hands each command to the handler
registered for its type. A handler's result events are published (durably)
before the command is marked done, so a crash in between repeats the command,
never loses it; handlers make the repeat harmless with the command's
idempotency key. Commands of one entity run in order.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.clock import Clock
from engine.logs import error_fields, get_logger
from engine.store.sqlite import SQLiteStore, loads

log = get_logger("channelsync.outbox")


@dataclass(frozen=True, slots=True)
class OutboxCommand:
    id: int
    entity: str
    type: str
    payload: dict[str, Any]
    idempotency_key: str
    attempts: int
    status: str = "pending"
    last_error: str | None = None
    event_seq: int = 0


class RetryLater(Exception):
    """A handler's way to say "not now" (rate limit, 5xx); ``after`` seconds, or backoff."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


class CommandHeld(Exception):
    """The command cannot run until something changes (authorization inactive).

    It is kept with status ``held`` under ``hold_key`` and runs again once that
    key is released (`release_held`); ``events`` are published meanwhile, so an
    entity can show why its work waits."""

    def __init__(
        self, reason: str, hold_key: str = "", events: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        super().__init__(reason)
        self.hold_key = hold_key
        self.events = list(events)


class CommandFailed(Exception):
    """A permanent failure: the command is parked with this reason, retryable by hand."""


ResultEvents = Sequence[Mapping[str, Any]]
CommandHandler = Callable[[OutboxCommand], Awaitable[ResultEvents | None]]
Publisher = Callable[[Mapping[str, Any]], Awaitable[Any]]

_COLUMNS = "id, entity, command, payload, idempotency_key, attempts, status, last_error, event_seq"


def _command(row: Sequence[Any]) -> OutboxCommand:
    return OutboxCommand(
        row[0], row[1], row[2], loads(row[3]), row[4], row[5], row[6], row[7], row[8]
    )


class OutboxDispatcher:
    def __init__(
        self,
        store: SQLiteStore,
        handlers: Mapping[str, CommandHandler],
        publish: Publisher,
        clock: Clock,
        *,
        max_attempts: int = 8,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        concurrency: int = 16,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.handlers = dict(handlers)
        self.publish = publish
        self.clock = clock
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.concurrency = concurrency
        self._rng = rng or random.Random()

    async def due(self, limit: int = 500) -> list[OutboxCommand]:
        """Pending commands that are due and have no earlier pending command of
        their entity ahead of them (per-entity order). Held commands do not
        block: what is held under one key is released together, in order. Nor
        do commands no handler here can carry out: one missing handler must not
        stall every later command of an entity."""
        rows = await self.store.fetchall(
            f"SELECT {_COLUMNS} FROM outbox AS o WHERE o.status = 'pending'"
            " AND o.available_at <= ?1 AND o.command IN (SELECT value FROM json_each(?2))"
            " AND NOT EXISTS (SELECT 1 FROM outbox AS e WHERE e.entity = o.entity AND e.id < o.id"
            " AND e.status = 'pending' AND e.command IN (SELECT value FROM json_each(?2)))"
            " ORDER BY o.id LIMIT ?3",
            (self.clock.now(), _json_list(self.handlers), limit),
        )
        return [_command(r) for r in rows]

    async def run_once(self) -> int:
        """Carry out every due command once; returns how many were attempted."""
        commands = await self.due()
        if not commands:
            return 0
        semaphore = asyncio.Semaphore(self.concurrency)

        async def guarded(command: OutboxCommand) -> None:
            async with semaphore:
                await self._carry_out(command)

        await asyncio.gather(*(guarded(c) for c in commands))
        return len(commands)

    async def run_until_idle(self, max_rounds: int = 1000) -> int:
        total = 0
        for _ in range(max_rounds):
            done = await self.run_once()
            if not done:
                return total
            total += done
        return total

    async def _carry_out(self, command: OutboxCommand) -> None:
        handler = self.handlers[command.type]
        bound = log.bind(
            entity=command.entity,
            command=command.type,
            command_id=command.id,
            idempotency_key=command.idempotency_key,
        )
        attempts = command.attempts + 1
        try:
            results = await handler(command)
        except CommandHeld as held:
            for event in held.events:
                await self.publish(event)
            await self.store.execute_write(
                "UPDATE outbox SET status = 'held', attempts = ?, last_error = ?, hold_key = ?"
                " WHERE id = ? AND status = 'pending'",
                (attempts, str(held), held.hold_key, command.id),
            )
            bound.info("command held", reason=str(held), hold_key=held.hold_key)
            return
        except CommandFailed as failed:
            await self._set(command.id, "parked", attempts, str(failed), self.clock.now())
            bound.warning("command parked", **error_fields(failed))
            return
        except Exception as err:
            reason = f"{type(err).__name__}: {err}"
            if attempts >= self.max_attempts:
                await self._set(command.id, "parked", attempts, reason, self.clock.now())
                bound.warning("command parked", attempts=attempts, **error_fields(err, reason))
                return
            after = (
                err.after
                if isinstance(err, RetryLater) and err.after is not None
                else self._backoff(attempts)
            )
            await self._set(command.id, "pending", attempts, reason, self.clock.now() + after)
            bound.info(
                "command retry",
                attempts=attempts,
                retry_in=round(after, 3),
                **error_fields(err, reason),
            )
            return
        for event in results or ():
            await self.publish(event)
        await self.store.execute_write(
            "UPDATE outbox SET status = 'done', attempts = ?, last_error = NULL, done_at = ?"
            " WHERE id = ?",
            (attempts, self.clock.now(), command.id),
        )
        bound.info("command done", attempts=attempts)

    def _backoff(self, attempts: int) -> float:
        """Exponential backoff with full jitter."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempts - 1)))
        return self._rng.uniform(ceiling / 2, ceiling)

    async def _set(
        self, command_id: int, status: str, attempts: int, error: str, available_at: float
    ) -> None:
        # Only a command still pending is rescheduled or parked: one an operator
        # discarded while its call was under way stays discarded.
        await self.store.execute_write(
            "UPDATE outbox SET status = ?, attempts = ?, last_error = ?, available_at = ?"
            " WHERE id = ? AND status = 'pending'",
            (status, attempts, error, available_at, command_id),
        )


def _json_list(handlers: Mapping[str, Any]) -> str:
    from engine.store.sqlite import dumps

    return dumps(sorted(handlers))


async def list_commands(
    store: SQLiteStore, *, status: str | None = None, entity: str | None = None
) -> list[OutboxCommand]:
    clauses, params = [], []
    if status is not None:
        clauses.append("status = ?")
        params.append(status)
    if entity is not None:
        clauses.append("entity = ?")
        params.append(entity)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = await store.fetchall(f"SELECT {_COLUMNS} FROM outbox{where} ORDER BY id", params)
    return [_command(r) for r in rows]


async def release_held(store: SQLiteStore, now: float, hold_key: str | None = None) -> int:
    """Put held commands (all, or those held under ``hold_key``) back in the queue."""
    if hold_key is None:
        return await store.execute_write(
            "UPDATE outbox SET status = 'pending', available_at = ?, hold_key = NULL"
            " WHERE status = 'held'",
            (now,),
        )
    return await store.execute_write(
        "UPDATE outbox SET status = 'pending', available_at = ?, hold_key = NULL"
        " WHERE status = 'held' AND hold_key = ?",
        (now, hold_key),
    )


async def retry_parked(store: SQLiteStore, command_id: int, now: float, actor: str = "api") -> bool:
    """An operator's "try again" on a parked command (recorded like
    `engine.outbox_admin.OutboxCommands.retry`); False if it is not parked."""
    from engine.outbox_admin import act

    outcome, _status, _entity = await store.run_write(
        act, command_id, "retry", ("parked",), actor, None, now
    )
    return outcome == "ok"
