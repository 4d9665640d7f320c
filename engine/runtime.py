"""`Engine`: what a host service embeds.

    engine = await Engine.open("sync.db", packages=[my_charts])
    receipt = await engine.publish({...})       # returns once durable
    entity = await engine.entity("order:123")
    await engine.stop()

The engine owns a store, a bus, a timer loop and an outbox dispatcher, all on
the caller's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from engine import dead_letters
from engine.bus import EventBus, Receipt
from engine.chartset import ChartPackage, ChartSet
from engine.clock import Clock, SystemClock
from engine.erasure import ERASE_COMMAND, erase_command, erase_personal_data
from engine.events import Event, EventRejected
from engine.logs import error_fields, get_logger
from engine.outbox import CommandHandler, OutboxCommand, OutboxDispatcher, release_held
from engine.outbox_admin import OutboxCommands
from engine.rules import RELEASE_HELD, SEND_EVENT
from engine.step import EntityState
from engine.store.lock import DatabaseLock
from engine.store.sqlite import DeadLetterRow, SQLiteStore
from engine.vault import Vault, redact_raw

log = get_logger("channelsync.engine")


class Engine:
    def __init__(
        self,
        store: SQLiteStore,
        charts: ChartSet,
        *,
        clock: Clock | None = None,
        handlers: Mapping[str, CommandHandler] | None = None,
        partitions: int = 4,
        queue_size: int = 10_000,
        max_batch: int = 1_000,
        cache_size: int = 200_000,
        pending_batches: int = 64,
        timer_interval: float = 0.25,
        outbox_interval: float = 0.1,
        outbox_lease: float = 60.0,
        dead_letter_retention: float = dead_letters.RETENTION,
        purge_interval: float = 3600.0,
        vault: Vault | None = None,
    ) -> None:
        if dead_letter_retention <= 0 or purge_interval <= 0:
            raise ValueError("dead_letter_retention and purge_interval must be positive")
        self.store = store
        # Per-entity keys of buyers' personal data (SEC-3); Engine.open keeps
        # them beside the database, an engine built by hand keeps them in memory.
        self.vault = vault or Vault(":memory:")
        self.charts = charts
        self.clock = clock or SystemClock()
        self.bus = EventBus(
            store,
            charts,
            partitions=partitions,
            queue_size=queue_size,
            max_batch=max_batch,
            cache_size=cache_size,
            pending_batches=pending_batches,
        )
        builtin: dict[str, CommandHandler] = {
            SEND_EVENT: self._send_event,
            RELEASE_HELD: self._release_held,
            ERASE_COMMAND: self._erase_command,
        }
        self.outbox = OutboxDispatcher(
            store, {**builtin, **(handlers or {})}, self.publish, self.clock, lease=outbox_lease
        )
        # The operator's side of the outbox: list, retry and discard by id.
        self.commands = OutboxCommands(store, self.clock)
        self.timer_interval = timer_interval
        self.outbox_interval = outbox_interval
        self.dead_letter_retention = dead_letter_retention
        self.purge_interval = purge_interval
        self._background: list[asyncio.Task[None]] = []
        self._lock: DatabaseLock | None = None
        self._stopped = False

    @classmethod
    async def open(
        cls,
        path: str | Path,
        packages: Iterable[ChartPackage] | None = None,
        *,
        charts: ChartSet | None = None,
        settings: dict[str, Any] | None = None,
        run_timers: bool = True,
        run_outbox: bool = True,
        synchronous: str = "FULL",
        writer: str = "thread",
        inert_commands: str | None = None,
        lock: bool = True,
        lock_wait: float = 0.0,
        **options: Any,
    ) -> Engine:
        """Open (or create) the database at ``path`` and start processing.

        ``run_timers``/``run_outbox`` start the background loops; tests that drive
        time with a `FakeClock` turn them off and call `fire_due_timers` and
        ``outbox.run_once`` themselves; the timer loop's side also purges dead
        letters last seen more than ``dead_letter_retention`` seconds ago, every
        ``purge_interval`` seconds (`purge_dead_letters`). ``writer="process"`` runs SQLite's
        writes in a child process (engine.store.process_writer): faster under
        load on more than one core, at ~0.2 s of start-up and one process more.
        ``inert_commands`` (a reason) records every command the charts ask for
        as ``inert``, never carried out: for a database that only re-applies
        another one's log (`channelsync ingest`).

        One process writes to a database at a time (ENG-10): the engine takes
        the lock beside the file (`engine.store.lock`), waiting up to
        ``lock_wait`` seconds, and raises `DatabaseInUse` naming the holder.
        ``lock=False`` is for tests that need two engines on one file.
        """
        if charts is None:
            if packages is None:
                raise ValueError("give the chart packages (or a ChartSet) the engine runs")
            charts = ChartSet.load(packages, settings)
        held: DatabaseLock | None = None
        if lock and str(path) != ":memory:":
            held = (
                await asyncio.to_thread(DatabaseLock.acquire, path, wait=lock_wait)
                if lock_wait > 0
                else DatabaseLock.acquire(path)
            )
        try:
            store = await SQLiteStore.open(path, synchronous=synchronous, writer=writer)
            try:
                store.inert_commands = inert_commands
                engine = cls(store, charts, vault=Vault.beside(path), **options)
                if held is not None:
                    voided = await store.void_claims()
                    if voided:
                        log.warning("claims of a stopped process voided", commands=voided)
            except BaseException:
                await store.close()
                raise
        except BaseException:
            if held is not None:
                held.release()
            raise
        engine._lock = held
        engine.bus.start()
        if run_timers:
            engine._background.append(
                asyncio.create_task(engine._timer_loop(), name="channelsync-timers")
            )
            engine._background.append(
                asyncio.create_task(engine._purge_loop(), name="channelsync-purge")
            )
        if run_outbox:
            engine._background.append(
                asyncio.create_task(engine._outbox_loop(), name="channelsync-outbox")
            )
        log.info("engine started", db=str(path), charts=sorted(charts.by_name))
        return engine

    async def stop(self) -> None:
        """Stop taking work, finish what was accepted, close the database and
        let go of its lock; calling it again does nothing."""
        if self._stopped:
            return
        self._stopped = True
        for task in self._background:
            task.cancel()
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._background.clear()
        await self.bus.stop()
        try:
            await self.store.close()
            self.vault.close()
        finally:
            # Only once the store is closed: a next writer must not start
            # while this one still has a transaction to finish.
            if self._lock is not None:
                self._lock.release()
        log.info("engine stopped")

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------ publishing

    def make_event(
        self,
        event_type: str,
        entity: str,
        payload: Mapping[str, Any] | None = None,
        *,
        event_id: str,
        source: str = "api",
        occurred_at: float | None = None,
    ) -> Event:
        return self.charts.event_types.make(
            event_type,
            entity,
            payload,
            event_id=event_id,
            source=source,
            occurred_at=occurred_at,
            received_at=self.clock.now(),
        )

    async def submit(self, event: Event | Mapping[str, Any]) -> asyncio.Future[Receipt]:
        """Queue an event; the returned future resolves once it is durable.

        Waits only while the bus is full (backpressure)."""
        try:
            typed = self._accept(event)
        except EventRejected as rejected:
            return await self._reject(event, rejected)
        return self.bus.submit_nowait(typed) or await self.bus.submit(typed)

    async def publish(self, event: Event | Mapping[str, Any]) -> Receipt:
        """Record and apply one event; returns once it is durably committed."""
        return await (await self.submit(event))

    async def publish_many(self, events: Iterable[Event | Mapping[str, Any]]) -> list[Receipt]:
        """Record and apply many events; returns their receipts, in order, once
        all are durable. Each entity's events apply in the order given. Cheaper
        per event than `publish`: events travel and are acknowledged in groups."""
        slots: list[Receipt | None] = []
        accepted: list[Event] = []
        positions: dict[tuple[str, str], list[int]] = {}
        rejected: list[tuple[int, asyncio.Future[Receipt]]] = []
        for event in events:
            try:
                typed = self._accept(event)
            except EventRejected as why:
                rejected.append((len(slots), await self._reject(event, why)))
                slots.append(None)
                continue
            positions.setdefault((typed.event_id, typed.entity), []).append(len(slots))
            accepted.append(typed)
            slots.append(None)
        groups = await self.bus.submit_many(accepted)
        for receipts in await asyncio.gather(*groups):
            for receipt in receipts:
                key = (receipt.event_id or "", receipt.entity or "")
                slots[positions[key].pop(0)] = receipt
        for index, future in rejected:
            slots[index] = await future
        return [receipt for receipt in slots if receipt is not None]

    async def publish_raw(self, raw: str | bytes, source: str) -> Receipt:
        """Validate raw JSON as an event; bad input becomes a dead letter (ENG-3)."""
        try:
            event = self.charts.event_types.parse_json(raw)
            typed = self._accept(event)
        except EventRejected as rejected:
            return await (await self._dead_letter(raw, source, rejected))
        return await (await self.bus.submit(typed))

    async def record_dead_letter(
        self,
        raw: str | bytes,
        source: str,
        error: str,
        entity: str | None = None,
        *,
        size: int | None = None,
    ) -> Receipt:
        """Keep input an adapter could not use (a body that is not JSON...).

        Kept once per source, digest and reason of ``raw`` (a repeat adds to its count);
        ``size``: the whole input's size when ``raw`` is only what was read of it."""
        rejected = EventRejected(error, entity)
        return await (await self._dead_letter(raw, source, rejected, size))

    def _accept(self, event: Event | Mapping[str, Any]) -> Event:
        typed = self.charts.event_types.parse(event)
        chart = self.charts.by_kind.get(typed.entity.partition(":")[0])
        if chart is None:
            raise EventRejected(f"no chart serves entity kind {typed.entity_kind!r}", typed.entity)
        if typed.type not in chart.accepted_events:
            raise EventRejected(
                f"chart {chart.name} does not accept events of type {typed.type!r}", typed.entity
            )
        if typed.received_at is None:
            typed = typed.model_copy(update={"received_at": self.clock.now()})
        # Sealed before anything is written (SEC-3): the log never holds them in clear.
        return self.vault.seal_event(typed, self.clock.now())

    async def _reject(
        self, event: Event | Mapping[str, Any], rejected: EventRejected
    ) -> asyncio.Future[Receipt]:
        """Keep an event that failed `_accept` as a dead letter."""
        raw = event.model_dump_json() if isinstance(event, Event) else _raw_text(event)
        source = event.get("source") if isinstance(event, Mapping) else None
        return await self._dead_letter(raw, str(source or "api"), rejected)

    async def _dead_letter(
        self, raw: str | bytes, source: str, rejected: EventRejected, size: int | None = None
    ) -> asyncio.Future[Receipt]:
        if size is None:
            # A whole body keeps no buyer's data (SEC-3); anything else is kept
            # byte for byte, so its digest and size are those of what came.
            text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
            redacted = redact_raw(text)
            if redacted != text:
                raw = redacted
        row = dead_letters.dead_letter_row(raw, source, rejected, self.clock.now(), size)
        return await self.bus.submit_dead_letter(row)

    async def purge_dead_letters(self, now: float | None = None) -> int:
        """Delete the dead letters last seen more than the retention ago; how many."""
        now = self.clock.now() if now is None else now
        purged = await self.store.purge_dead_letters(now - self.dead_letter_retention)
        if purged:
            log.info("dead letters purged", purged=purged, retention=self.dead_letter_retention)
        return purged

    # ------------------------------------------------------------ timers

    async def fire_due_timers(self, now: float | None = None) -> int:
        """Fire every timer due by ``now`` (default: the clock) as ordinary events."""
        now = self.clock.now() if now is None else now
        due = await self.store.due_timers(now)
        futures = []
        for entity, name, due_at, event_type, event_id in due:
            event = self.charts.event_types.make(
                event_type,
                entity,
                {"timer": name, "due_at": due_at},
                event_id=event_id,
                source="timer",
                occurred_at=due_at,
                received_at=max(now, due_at),
            )
            futures.append(await self.bus.submit(event))
        await asyncio.gather(*futures)
        return len(due)

    async def _timer_loop(self) -> None:
        while True:
            try:
                await self.fire_due_timers()
            except Exception as err:
                log.error("timer round failed", **error_fields(err))
            await asyncio.sleep(self.timer_interval)

    async def _purge_loop(self) -> None:
        while True:
            try:
                await self.purge_dead_letters()
            except Exception as err:  # the next round tries again
                log.error("dead letter purge failed", error=str(err))
            await asyncio.sleep(self.purge_interval)

    async def _outbox_loop(self) -> None:
        while True:
            try:
                await self.outbox.run_once()
            except Exception as err:
                log.error("outbox round failed", **error_fields(err))
            await asyncio.sleep(self.outbox_interval)

    async def _send_event(self, command: OutboxCommand) -> list[dict[str, Any]]:
        """Built-in: an event one entity sent another (`StepContext.send`)."""
        return [{**command.payload, "source": "engine"}]

    async def _release_held(self, command: OutboxCommand) -> None:
        """Built-in: release the commands held under a key (a re-authorization)."""
        await release_held(self.store, self.clock.now(), command.payload["hold_key"])

    async def _erase_command(self, command: OutboxCommand) -> list[dict[str, Any]]:
        return await erase_command(self, command)

    async def erase_personal_data(self, entity: str, *, reason: str, requested_by: str) -> Receipt:
        """Destroy ``entity``'s personal-data key for good and log the erasure (SEC-3)."""
        return await erase_personal_data(self, entity, reason=reason, requested_by=requested_by)

    async def release_held_commands(self, hold_key: str | None = None) -> int:
        return await release_held(self.store, self.clock.now(), hold_key)

    # ------------------------------------------------------------ reading

    async def entity(self, key: str) -> EntityState | None:
        return await self.store.entity(key)

    async def entities(
        self, *, chart: str | None = None, state: str | None = None
    ) -> list[EntityState]:
        return await self.store.entities(chart=chart, state=state)

    async def history(self, key: str) -> list[dict[str, Any]]:
        return await self.store.history(key)

    async def dead_letters(self, entity: str | None = None) -> Sequence[DeadLetterRow]:
        return await self.store.dead_letters(entity)


def _raw_text(value: Mapping[str, Any]) -> str:
    from engine.store.sqlite import dumps

    try:
        return dumps(dict(value))
    except Exception:
        return repr(value)
