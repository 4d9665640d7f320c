"""Where the inspector reads, and how its actions reach the engine.

Two ways to run it:

- `Attached` (``serve --inspector``): the running engine's own store, charts
  and clock. A retried dead letter is published through that engine
  (`Engine.publish_raw`), a discarded one resolved through it
  (`Engine.discard_dead_letter`: who, why and when, kept on the letter), a
  command retried or discarded through its `OutboxCommands`: recorded like
  any other event or operator's action.
- `Detached` (``channelsync inspect --db``): the database read-only (SEC-4).
  An action opens an engine on the database for as long as it takes (taking
  its lock, ENG-10), so it is refused, naming the holder, while another
  process (a running serve) writes to it; that process's own inspector can
  act. Commands are acted on through a writable store and `OutboxCommands`,
  as `channelsync commands` does (safe beside a running engine: claims).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from engine.chartset import ChartSet
from engine.clock import Clock, SystemClock
from engine.dead_letters import DeadLetterDiscarded, DeadLetterNotFound, discarded_text
from engine.inspector.present import Presenter
from engine.outbox_admin import CommandView, OutboxCommands
from engine.settings import EngineSettings
from engine.store.errors import DatabaseInUse
from engine.store.lock import current_holder
from engine.store.protocol import Store
from engine.store.rows import DeadLetterRow

if TYPE_CHECKING:
    from engine.runtime import Engine


class ActionRefused(Exception):
    """An action that cannot be done; its text says why, for the page."""


@dataclass(frozen=True, slots=True)
class Retried:
    """What a dead letter's retry came to: an event logged, or refused again."""

    outcome: str
    entity: str | None
    seq: int | None
    reason: str | None

    def describe(self) -> str:
        if self.outcome == "dead_letter":
            return f"refused again: {self.reason}"
        change = f", {self.reason}" if self.reason else ""
        return f"logged as seq {self.seq} on {self.entity}: {self.outcome}{change}"


def retryable_event(letter: DeadLetterRow) -> str:
    """The dead letter's raw input, if it can be offered to the engine again:
    all of it was kept and it is an event (a JSON object naming its type and
    entity). A platform's webhook body is not: its adapter translates it.
    Raises `ActionRefused` saying why not."""
    kept = len(letter.raw.encode("utf-8", errors="surrogatepass"))
    if letter.size > kept:
        raise ActionRefused(
            f"only the first {kept} of its {letter.size} bytes were kept: it cannot be sent again"
        )
    try:
        parsed = json.loads(letter.raw)
    except ValueError:
        raise ActionRefused("its input is not JSON: there is no event to send again") from None
    if not isinstance(parsed, dict) or not {"type", "entity"} <= parsed.keys():
        raise ActionRefused(
            "its input is not an event (a platform's body is retried by the platform,"
            " or by `channelsync serve`'s pulls)"
        )
    return letter.raw


async def find_dead_letter(store: Store, letter_id: int) -> DeadLetterRow:
    """An open dead letter; `ActionRefused` if there is none, or it was discarded."""
    letter = await store.dead_letter(letter_id)
    if letter is None:
        raise ActionRefused(f"no dead letter with id {letter_id}")
    if not letter.open:
        raise ActionRefused(f"it was {discarded_text(letter)}; a discarded letter is not retried")
    return letter


async def _discard(engine: Engine, letter_id: int, actor: str, reason: str | None) -> DeadLetterRow:
    try:
        return await engine.discard_dead_letter(letter_id, actor=actor, reason=reason)
    except (DeadLetterNotFound, DeadLetterDiscarded) as refused:
        raise ActionRefused(str(refused)) from None


class Backend(Protocol):
    """What every page reads through, and the actions (see the module's docstring)."""

    store: Store
    charts: ChartSet
    clock: Clock
    presenter: Presenter
    path: str

    def held_by(self) -> str | None:
        """Who else writes to the database (None: nobody, or this process)."""
        ...

    async def retry_dead_letter(self, letter_id: int) -> Retried:
        """Offer the dead letter's input to the engine again (`retryable_event`)."""
        ...

    async def discard_dead_letter(
        self, letter_id: int, actor: str, reason: str | None
    ) -> DeadLetterRow:
        """Resolve the letter as needing nothing more (`Engine.discard_dead_letter`)."""
        ...

    async def command_action(
        self, command_id: int, action: str, actor: str, reason: str | None
    ) -> CommandView:
        """``retry`` or ``discard`` a command through `OutboxCommands`."""
        ...


def _command_call(
    commands: OutboxCommands, command_id: int, action: str, actor: str, reason: str | None
) -> Awaitable[CommandView]:
    if action == "retry":
        return commands.retry(command_id, actor=actor, reason=reason)
    if action == "discard":
        return commands.discard(command_id, reason, actor=actor)
    raise ActionRefused(f"unknown action {action!r}")


class Attached:
    """The inspector of a running engine (``serve --inspector``)."""

    def __init__(self, engine: Engine, presenter: Presenter) -> None:
        self.engine = engine
        self.store = engine.store
        self.charts = engine.charts
        self.clock = engine.clock
        self.presenter = presenter
        self.path = engine.store.path

    def held_by(self) -> str | None:
        return None  # the engine holding the database is this process's own

    async def retry_dead_letter(self, letter_id: int) -> Retried:
        letter = await find_dead_letter(self.store, letter_id)
        # Under its own source: refused again, it is the same dead letter, counted once more.
        receipt = await self.engine.publish_raw(retryable_event(letter), letter.source)
        return Retried(receipt.outcome, receipt.entity, receipt.seq, receipt.reason)

    async def discard_dead_letter(
        self, letter_id: int, actor: str, reason: str | None
    ) -> DeadLetterRow:
        return await _discard(self.engine, letter_id, actor, reason)

    async def command_action(
        self, command_id: int, action: str, actor: str, reason: str | None
    ) -> CommandView:
        return await _command_call(self.engine.commands, command_id, action, actor, reason)


class Detached:
    """The inspector of a database no engine of this process has open."""

    def __init__(
        self,
        store: Store,
        charts: ChartSet,
        presenter: Presenter,
        *,
        open_writable: Callable[[], Awaitable[Store]],
        clock: Clock | None = None,
        target: str | Path | None = None,
    ) -> None:
        self.store = store
        self.charts = charts
        self.clock = clock or SystemClock()
        self.presenter = presenter
        self.path = store.path  # what a page shows: no password
        # What an engine opens for an action: the file, or the URL with its password.
        self.target = str(target if target is not None else store.path)
        self._open_writable = open_writable

    def held_by(self) -> str | None:
        if "://" in self.target:
            return None  # a PostgreSQL database: its lock is not a file to look at
        holder = current_holder(Path(self.target))
        return holder.describe() if holder is not None else None

    @asynccontextmanager
    async def _engine(self) -> AsyncIterator[Engine]:
        """An engine on the database for one action; refused while another
        process holds it (its own inspector can act)."""
        from engine.runtime import Engine

        settings = EngineSettings(run_timers=False, run_outbox=False)
        try:
            engine = await Engine.open(
                self.target, charts=self.charts, clock=self.clock, settings=settings
            )
        except DatabaseInUse as busy:
            raise ActionRefused(
                f"{busy}; act on it from that process's inspector (serve --inspector)"
            ) from None
        try:
            yield engine
        finally:
            await engine.stop()

    async def retry_dead_letter(self, letter_id: int) -> Retried:
        letter = await find_dead_letter(self.store, letter_id)
        raw = retryable_event(letter)
        async with self._engine() as engine:
            receipt = await engine.publish_raw(raw, letter.source)
        return Retried(receipt.outcome, receipt.entity, receipt.seq, receipt.reason)

    async def discard_dead_letter(
        self, letter_id: int, actor: str, reason: str | None
    ) -> DeadLetterRow:
        async with self._engine() as engine:
            return await _discard(engine, letter_id, actor, reason)

    async def command_action(
        self, command_id: int, action: str, actor: str, reason: str | None
    ) -> CommandView:
        store = await self._open_writable()
        try:
            commands = OutboxCommands(store, self.clock)
            return await _command_call(commands, command_id, action, actor, reason)
        finally:
            await store.close()


__all__ = [
    "ActionRefused",
    "Attached",
    "Backend",
    "Detached",
    "Retried",
    "find_dead_letter",
    "retryable_event",
]
