"""The outbox: commands recorded with the state change that asked for them (ENG-6).

Transitions only *record* commands, in the same transaction as the state
change. After commit, the `OutboxDispatcher` hands each command to the handler
registered for its type. A handler's result events are published (durably)
before the command is marked done, so a crash in between repeats the command,
never loses it; handlers make the repeat harmless with the command's
idempotency key. Commands of one entity run in order.

Before a command runs it is claimed, with a lease (`engine.outbox_claims`,
ENG-10): several dispatchers, in one process or several, may share a
database and none runs a command another one holds. What is claimed and
recorded is kept by the store (`engine.store.protocol.OutboxStore`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from engine import outbox_claims
from engine.clock import Clock
from engine.logs import error_fields, get_logger
from engine.store.commands import CallResult, Done, Held, OutboxCommand, Retry
from engine.store.protocol import Store

log = get_logger("channelsync.outbox")


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


class OutboxDispatcher:
    def __init__(
        self,
        store: Store,
        handlers: Mapping[str, CommandHandler],
        publish: Publisher,
        clock: Clock,
        *,
        max_attempts: int = 8,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        concurrency: int = 16,
        rng: random.Random | None = None,
        lease: float = 60.0,
        token: str | None = None,
        claim_limit: int = 500,
    ) -> None:
        if claim_limit < 1:
            raise ValueError("claim_limit must be at least 1")
        self.store = store
        self.handlers = dict(handlers)
        self.publish = publish
        self.clock = clock
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.concurrency = concurrency
        self._rng = rng or random.Random()
        # The claim lease (seconds of ``clock``): renewed every third of it
        # while a call is under way, so only a dispatcher that stopped
        # renewing (its process died or hung) loses a command to another.
        self.lease = lease
        self.token = token or outbox_claims.new_token()
        self._running: set[int] = set()
        # Commands one round claims at most: dispatchers sharing a database
        # split the due work between them instead of the first taking it all.
        self.claim_limit = claim_limit

    async def claim_due(self, limit: int = 500) -> list[OutboxCommand]:
        """Claim the due commands for this dispatcher, all at once: pending, due,
        not claimed by a live dispatcher, and first of their entity's pending
        commands (`engine.store.protocol.OutboxStore.due_commands`)."""
        claimed = await self.store.claim_commands(
            self.token, self.clock.now(), self.lease, self.handlers, limit
        )
        for command, previous in claimed:
            if previous is not None:
                log.warning(
                    "command taken over from an expired claim",
                    entity=command.entity,
                    command_id=command.id,
                    previous_claimant=previous,
                )
        return [command for command, _previous in claimed]

    async def run_once(self) -> int:
        """Claim (up to ``claim_limit``) and carry out the due commands once;
        returns how many were attempted."""
        commands = await self.claim_due(self.claim_limit)
        if not commands:
            return 0
        semaphore = asyncio.Semaphore(self.concurrency)

        async def guarded(command: OutboxCommand) -> None:
            async with semaphore:
                await self._carry_out(command)

        self._running.update(c.id for c in commands)
        renewer = asyncio.create_task(self._renew_while_running(), name="channelsync-claims")
        try:
            await asyncio.gather(*(guarded(c) for c in commands))
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        return len(commands)

    async def _renew_while_running(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            ids = sorted(self._running)
            if not ids:
                continue
            try:
                lost = await self.store.renew_claims(self.token, ids, self.clock.now(), self.lease)
            except Exception as err:
                log.error("claim renewal failed", error=str(err), commands=len(ids))
                continue
            for command_id in lost:
                if command_id in self._running:
                    log.warning("claim lost while its command ran", command_id=command_id)

    async def run_until_idle(self, max_rounds: int = 1000) -> int:
        total = 0
        for _ in range(max_rounds):
            done = await self.run_once()
            if not done:
                return total
            total += done
        return total

    async def _carry_out(self, command: OutboxCommand) -> None:
        bound = log.bind(
            entity=command.entity,
            command=command.type,
            command_id=command.id,
            idempotency_key=command.idempotency_key,
        )
        try:
            result, message, fields = await self._call(command)
            outcome = await self.store.finish_command(command.id, self.token, result)
        except BaseException:
            # Stopping (or crashing) mid-call: give the claim up so a restart
            # runs the command at once, with the same idempotency key, instead
            # of waiting out the lease. A process that dies outright cannot do
            # this; its lease runs out instead.
            with contextlib.suppress(Exception):
                await self.store.release_claim(command.id, self.token)
            raise
        finally:
            self._running.discard(command.id)
        if outcome == "lost":
            # The lease ran out while the call was under way (this process
            # stalled) and another dispatcher took the command over: its
            # record, not this one, stands.
            bound.warning("claim lost before the outcome was recorded", outcome=message)
            return
        (bound.warning if message == "command parked" else bound.info)(message, **fields)

    async def _call(self, command: OutboxCommand) -> tuple[CallResult, str, dict[str, Any]]:
        """Run the handler and publish its events; what to record of it and what to log."""
        handler = self.handlers[command.type]
        attempts = command.attempts + 1
        try:
            results = await handler(command)
        except CommandHeld as held:
            for event in held.events:
                await self.publish(event)
            why = {"reason": str(held), "hold_key": held.hold_key}
            return Held(attempts, str(held), held.hold_key), "command held", why
        except CommandFailed as failed:
            parked = Retry("parked", attempts, str(failed), self.clock.now())
            return parked, "command parked", error_fields(failed)
        except Exception as err:
            reason = f"{type(err).__name__}: {err}"
            if attempts >= self.max_attempts:
                fields = {"attempts": attempts, **error_fields(err, reason)}
                return Retry("parked", attempts, reason, self.clock.now()), "command parked", fields
            after = (
                err.after
                if isinstance(err, RetryLater) and err.after is not None
                else self._backoff(attempts)
            )
            again = Retry("pending", attempts, reason, self.clock.now() + after)
            fields = {
                "attempts": attempts,
                "retry_in": round(after, 3),
                **error_fields(err, reason),
            }
            return again, "command retry", fields
        for event in results or ():
            await self.publish(event)
        return Done(attempts, self.clock.now()), "command done", {"attempts": attempts}

    def _backoff(self, attempts: int) -> float:
        """Exponential backoff with full jitter."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempts - 1)))
        return self._rng.uniform(ceiling / 2, ceiling)


async def list_commands(
    store: Store, *, status: str | None = None, entity: str | None = None
) -> list[OutboxCommand]:
    """Commands by id, of one stored status and one entity if given."""
    return await store.list_commands(status=status, entity=entity)


async def release_held(store: Store, now: float, hold_key: str | None = None) -> int:
    """Put held commands (all, or those held under ``hold_key``) back in the queue."""
    return await store.release_held(now, hold_key)


async def retry_parked(store: Store, command_id: int, now: float, actor: str = "api") -> bool:
    """An operator's "try again" on a parked command (recorded like
    `engine.outbox_admin.OutboxCommands.retry`); False if it is not parked."""
    found = await store.retry_command(command_id, now=now, actor=actor, allowed=("parked",))
    return found.outcome == "ok"


__all__ = [
    "CommandFailed",
    "CommandHandler",
    "CommandHeld",
    "OutboxCommand",
    "OutboxDispatcher",
    "Publisher",
    "ResultEvents",
    "RetryLater",
    "list_commands",
    "release_held",
    "retry_parked",
]
