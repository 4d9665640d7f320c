"""What surrounds an engine's life: the database it opens, the loops it runs.

`open_database` is split from the engine so that a composition root can build
command handlers over the open store and vault and give them to the engine at
construction (`HandlerFactory`), instead of adding them to a running engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import dead_letters
from engine.chartset import ChartSet
from engine.clock import Clock
from engine.erasure import ERASE_COMMAND, erase_command
from engine.events import Event, EventRejected
from engine.logs import error_fields, get_logger
from engine.outbox import CommandHandler, OutboxCommand, release_held
from engine.rules import RELEASE_HELD, SEND_EVENT
from engine.settings import EngineSettings
from engine.store.lock import DatabaseLock
from engine.store.migrate import Migration
from engine.store.protocol import Store
from engine.store.rows import DeadLetterRow, dumps
from engine.store.urls import is_store_url, lock_store, open_store, shown, vault_path
from engine.vault import Vault, redact_raw

if TYPE_CHECKING:
    from engine.runtime import Engine
    from engine.store.postgres_lock import PostgresLock

log = get_logger("channelsync.engine")


@dataclass(frozen=True)
class EngineParts:
    """An opened database, before its engine exists: what handlers are built over."""

    store: Store
    vault: Vault
    clock: Clock
    charts: ChartSet


# Builds command handlers over the opened parts. Async: a handler's client may
# have to read the store (credentials) or open a connection first.
HandlerFactory = Callable[[EngineParts], Awaitable[Mapping[str, CommandHandler]]]


@dataclass
class Opened:
    """The lock (if taken), the store and the vault of one database."""

    store: Store
    vault: Vault
    lock: DatabaseLock | PostgresLock | None
    # The database as a log line may name it (a URL without its password).
    name: str = ""

    async def close(self) -> None:
        """Undo `open_database`: close the store and the vault, then let go of the lock."""
        try:
            await self.store.close()
            self.vault.close()
        finally:
            # Only once the store is closed: a next writer must not start
            # while this one still has a transaction to finish.
            if self.lock is not None:
                self.lock.release()


async def open_database(
    path: str | Path, settings: EngineSettings, migrations: Sequence[Migration] = ()
) -> Opened:
    """Take the database's lock (ENG-10; raises `DatabaseInUse` naming the holder
    once ``settings.lock_wait`` has passed), open its store (applying the chart
    packages' ``migrations`` not yet applied) and its vault, and void the
    command claims a stopped process left behind. ``path`` is a SQLite file or
    a ``postgresql://`` URL (`engine.store.urls`)."""
    held: DatabaseLock | PostgresLock | None = None
    if settings.lock and str(path) != ":memory:":
        # Off the loop when it may wait, or connects to a server.
        held = (
            await asyncio.to_thread(lock_store, path, wait=settings.lock_wait)
            if settings.lock_wait > 0 or is_store_url(path)
            else lock_store(path)
        )
    try:
        store = await open_store(path, settings=settings, migrations=migrations)
        try:
            store.inert_commands = settings.inert_commands
            if held is not None:
                voided = await store.void_claims()
                if voided:
                    log.warning("claims of a stopped process voided", commands=voided)
            vault = Vault(vault_path(path))
        except BaseException:
            await store.close()
            raise
    except BaseException:
        if held is not None:
            held.release()
        raise
    return Opened(store, vault, held, shown(path))


async def run_every(name: str, work: Callable[[], Awaitable[Any]], interval: float) -> None:
    """Run ``work`` every ``interval`` seconds until cancelled; a failed round is
    logged and the next one tries again."""
    while True:
        try:
            await work()
        except Exception as err:
            log.error(f"{name} round failed", **error_fields(err))
        await asyncio.sleep(interval)


def refused_input(event: Event | Mapping[str, Any]) -> tuple[str | Mapping[str, Any], str]:
    """What a refused event is kept as in its dead letter, and under which
    source: a mapping's own, or "api" (a typed Event came through the API)."""
    if isinstance(event, Event):
        return event.model_dump_json(), "api"
    return event, str(event.get("source") or "api")


def dead_letter_of(
    raw: str | bytes | Mapping[str, Any],
    source: str,
    rejected: EventRejected,
    now: float,
    size: int | None = None,
) -> DeadLetterRow:
    """The dead letter of input the engine could not use. A whole input keeps
    no buyer's data (SEC-3); a part (``size`` given: the whole input's size) is
    kept byte for byte, so its digest and size are those of what came."""
    if isinstance(raw, Mapping):
        try:
            raw = dumps(dict(raw))
        except Exception:
            raw = repr(raw)
    if size is None:
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        redacted = redact_raw(text)
        if redacted != text:
            raw = redacted
    return dead_letters.dead_letter_row(raw, source, rejected, now, size)


def builtin_handlers(engine: Engine) -> dict[str, CommandHandler]:
    """The commands every engine carries out itself: an event one entity sent
    another (`StepContext.send`), the release of the commands held under a key
    (a re-authorization) and the erasure of an entity's personal data."""

    async def send_event(command: OutboxCommand) -> list[dict[str, Any]]:
        return [{**command.payload, "source": "engine"}]

    async def release(command: OutboxCommand) -> None:
        await release_held(engine.store, engine.clock.now(), command.payload["hold_key"])

    async def erase(command: OutboxCommand) -> list[dict[str, Any]]:
        return await erase_command(engine, command)

    return {SEND_EVENT: send_event, RELEASE_HELD: release, ERASE_COMMAND: erase}
