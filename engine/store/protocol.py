"""`Store`: what the engine needs of its storage, and nothing about how it is kept.

The engine (bus, outbox dispatcher, operators' commands, replay, export) types
against this protocol; only the code that constructs a store names an
implementation (`engine.store.sqlite.SQLiteStore` is the first). A store keeps:

- the event log: every event once, in sequence order, with its outcome;
- entities: each one's latest state, written in the same transaction as the
  events that produced it;
- the outbox: commands recorded with the state change that asked for them,
  claimed by one dispatcher at a time under a lease (ENG-6, ENG-10);
- timers, duplicates, dead letters and named cursors;
- read models and adapters' records (`engine.store.read_models`).

`engine.testing.store_conformance` is the set of tests any implementation
must pass.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from typing import Any, Protocol

from engine.step import EntityState
from engine.store.commands import (
    RETRYABLE,
    ActionOutcome,
    CallResult,
    Claimed,
    CommandView,
    FinishOutcome,
    OutboxCommand,
)
from engine.store.read_models import ReadModels
from engine.store.rows import Batch, DeadLetterRow, LetterDiscard, LogRow, TimerRow


class LogStore(Protocol):
    """The log, entities, timers, duplicates, dead letters and cursors."""

    path: str
    # A reason when the store only records (a scratch database re-applying
    # another one's log): its commands are kept as ``inert`` and never run.
    inert_commands: str | None

    @property
    def read_only(self) -> bool:
        """Whether every write raises (`engine.store.readonly.WriteRefused`)."""
        ...

    async def close(self) -> None: ...

    async def commit(self, batch: Batch, timers_fired: Sequence[str] = ()) -> None:
        """Append the batch's events (numbered in order, after the last one), and
        write their entities' last states, their commands, timer changes,
        duplicates and dead letters, all of it or none. ``timers_fired``: the
        event ids of the timers this batch fired (they are removed)."""
        ...

    async def known_event_ids(self, event_ids: Sequence[str]) -> set[str]:
        """Those of ``event_ids`` already in the log."""
        ...

    async def load_entities(self, keys: Sequence[str]) -> dict[str, EntityState]:
        """The stored entities among ``keys``, each with its chart version and history."""
        ...

    async def entity(self, key: str) -> EntityState | None: ...

    async def entities(
        self, *, chart: str | None = None, state: str | None = None, kind: str | None = None
    ) -> list[EntityState]:
        """Entities by key, filtered by chart, an active state (atomic, or an
        ancestor of the active atomic states) and kind (the key's prefix)."""
        ...

    async def history(self, entity: str) -> list[dict[str, Any]]:
        """The entity's logged events in sequence order (seq, event_id, type,
        source, received_at, outcome, from_state, to_state, reason, payload,
        chart_version: the version that applied it, 1 for rows logged without one)."""
        ...

    def iter_events(
        self, since_seq: int = 0, batch: int = 10_000, entity: str | None = None
    ) -> AsyncIterator[LogRow]:
        """The log (or one entity's part) after ``since_seq``, in sequence order:
        rows of `EVENT_COLUMNS` (the last, ``chart_version``, None in rows logged
        before versions were recorded)."""
        ...

    def iter_event_batches(
        self, since_seq: int = 0, batch: int = 10_000, entity: str | None = None
    ) -> AsyncIterator[list[LogRow]]:
        """The same, ``batch`` rows at a time (bounded memory)."""
        ...

    async def entities_logged_after(self, seq: int) -> set[str]:
        """The entities that have events after ``seq``."""
        ...

    async def due_timers(self, now: float, limit: int = 1000) -> list[TimerRow]:
        """Timers due by ``now``, earliest first (equal times in arming order)."""
        ...

    async def timers(self, entity: str | None = None) -> list[TimerRow]: ...

    async def dead_letters(
        self, entity: str | None = None, *, include_discarded: bool = False
    ) -> list[DeadLetterRow]:
        """Dead letters in the order first seen: the open ones
        (`DeadLetterRow.open`), or every one kept."""
        ...

    async def dead_letter(self, letter_id: int) -> DeadLetterRow | None:
        """One dead letter by id, open or discarded."""
        ...

    async def discard_dead_letter(
        self, letter_id: int, *, now: float, actor: str, reason: str | None = None
    ) -> LetterDiscard:
        """Mark an open dead letter discarded by ``actor`` at ``now`` for
        ``reason``, atomically; the row stays, with its discard. A letter
        discarded already (and not seen since) is refused."""
        ...

    async def purge_dead_letters(self, before: float) -> int:
        """Delete the dead letters last seen before ``before``; how many went."""
        ...

    async def duplicate_count(self, event_id: str | None = None) -> int: ...

    async def count(self, table: str) -> int:
        """Rows of one of `engine.store.rows.COUNTED`; ValueError for another name."""
        ...

    async def save_cursor(self, name: str, value: str, at: float) -> None:
        """Remember how far the pull called ``name`` has come."""
        ...

    async def cursor(self, name: str) -> str | None: ...


class OutboxStore(Protocol):
    """The outbox, as dispatchers (claims) and operators (actions) use it."""

    async def due_commands(
        self, now: float, handled: Collection[str], limit: int = 500
    ) -> list[OutboxCommand]:
        """Pending commands due by ``now``, not under a live claim, of a type in
        ``handled``, with no earlier pending command of ``handled`` types of
        their entity ahead of them (a claimed one blocks like any pending one);
        by id. Held commands do not block: what is held under one key is
        released together, in order. Nor do types outside ``handled``: one
        missing handler must not stall every later command of an entity."""
        ...

    async def claim_commands(
        self, token: str, now: float, lease: float, handled: Collection[str], limit: int = 500
    ) -> list[Claimed]:
        """Claim what `due_commands` lists for ``token`` until ``now + lease``,
        in one atomic step: no two claimants ever hold one command."""
        ...

    async def renew_claims(
        self, token: str, ids: Sequence[int], now: float, lease: float
    ) -> list[int]:
        """Extend ``token``'s claims among ``ids``; the ids it no longer holds."""
        ...

    async def finish_command(
        self, command_id: int, token: str, result: CallResult
    ) -> FinishOutcome:
        """Record a claimant's result and drop its claim, if the claim is still its own."""
        ...

    async def release_claim(self, command_id: int, token: str) -> bool:
        """Drop ``token``'s claim without an outcome; whether it held one."""
        ...

    async def void_claims(self) -> int:
        """Drop every claim (their claimants are known to be gone); how many."""
        ...

    async def list_commands(
        self, *, status: str | None = None, entity: str | None = None
    ) -> list[OutboxCommand]:
        """Commands by id, of one stored status and one entity if given."""
        ...

    async def command_views(
        self, status_filter: str, now: float, *, entity: str | None = None
    ) -> list[CommandView]:
        """Commands by id as an operator sees them, with their actions;
        ``status_filter`` is one of `engine.store.commands.FILTERS`."""
        ...

    async def command_view(self, command_id: int, now: float) -> CommandView | None: ...

    async def retry_command(
        self,
        command_id: int,
        *,
        now: float,
        actor: str,
        reason: str | None = None,
        allowed: tuple[str, ...] = RETRYABLE,
    ) -> ActionOutcome:
        """Make a command of an ``allowed`` status due now (a parked one with a
        fresh budget of attempts), recording who and why, atomically."""
        ...

    async def discard_command(
        self, command_id: int, *, now: float, actor: str, reason: str | None = None
    ) -> ActionOutcome:
        """Make sure an open command never runs, recording who and why."""
        ...

    async def release_held(self, now: float, hold_key: str | None = None) -> int:
        """Held commands (all, or those under ``hold_key``) back in the queue."""
        ...


class Store(LogStore, OutboxStore, ReadModels, Protocol):
    """Everything the engine keeps (see the module's docstring), and the read
    models the channel's views, lookups and adapters query (`ReadModels`)."""


__all__ = ["LogStore", "OutboxStore", "Store"]
