"""`Engine`: what a host service embeds.

    engine = await Engine.open("sync.db", packages=[my_charts])
    receipt = await engine.publish({...})       # returns once durable
    entity = await engine.entity("order:123")
    await engine.stop()

It owns a store, a bus, a timer loop, an outbox dispatcher and metrics, on the caller's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.admission import Admission
from engine.bus import EventBus, Receipt
from engine.chartset import ChartPackage, ChartSet
from engine.clock import Clock, SystemClock
from engine.dead_letters import discard_dead_letter as discard_letter
from engine.erasure import erase_personal_data
from engine.events import Event, EventRejected
from engine.lifecycle import (
    EngineParts,
    HandlerFactory,
    Opened,
    builtin_handlers,
    dead_letter_of,
    open_database,
    refused_input,
    run_every,
)
from engine.logs import get_logger
from engine.metrics import EngineMetrics
from engine.outbox import CommandHandler, OutboxDispatcher, release_held
from engine.outbox_admin import OutboxCommands
from engine.settings import EngineSettings
from engine.step import EntityState
from engine.store.protocol import Store
from engine.store.rows import DeadLetterRow
from engine.vault import Vault

log = get_logger("channelsync.engine")
DEFAULT_SETTINGS = EngineSettings()


class Engine:
    """The bus, the outbox, the timers and the store of one database. Built with
    everything it runs (handlers included) and started by `start`; `Engine.open` does both."""

    def __init__(
        self,
        store: Store,
        charts: ChartSet,
        settings: EngineSettings = DEFAULT_SETTINGS,
        *,
        clock: Clock | None = None,
        handlers: Mapping[str, CommandHandler] | None = None,
        vault: Vault | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        # Per-entity keys of buyers' personal data (SEC-3); Engine.open keeps
        # them beside the database, an engine built by hand keeps them in memory.
        self.vault = vault or Vault(":memory:")
        self.charts = charts
        self.clock = clock or SystemClock()
        self.bus = EventBus(
            store,
            charts,
            partitions=settings.partitions,
            queue_size=settings.queue_size,
            max_batch=settings.max_batch,
            cache_size=settings.cache_size,
            pending_batches=settings.pending_batches,
        )
        self.metrics = EngineMetrics(charts)  # /metrics (engine.metrics)
        self.bus.observe_commits(self.metrics.committed)
        self.outbox = OutboxDispatcher(
            store,
            {**builtin_handlers(self), **(handlers or {})},
            self.publish,
            self.clock,
            lease=settings.outbox_lease,
        )
        self._admission = Admission(charts, self.vault, self.clock)
        # The operator's side of the outbox: list, retry and discard by id.
        self.commands = OutboxCommands(store, self.clock)
        self._background: list[asyncio.Task[None]] = []
        self._opened: Opened | None = None
        self._stopped = False

    @property
    def dead_letter_retention(self) -> float:
        return self.settings.dead_letter_retention

    @classmethod
    async def open(
        cls,
        path: str | Path,
        packages: Iterable[ChartPackage] | None = None,
        *,
        charts: ChartSet | None = None,
        chart_settings: Mapping[str, Any] | None = None,
        clock: Clock | None = None,
        handlers: Mapping[str, CommandHandler] | HandlerFactory | None = None,
        settings: EngineSettings = DEFAULT_SETTINGS,
    ) -> Engine:
        """Open (or create) the database at ``path`` and start processing.

        ``chart_settings`` tune the charts' own values (`ChartSet.load`).
        ``handlers`` carry out the charts' commands: a mapping, or a
        `HandlerFactory` called with the opened store and vault, for handlers
        built over them. One process writes to a database at a time (ENG-10):
        the engine takes the lock beside the file (`engine.store.lock`) and
        raises `DatabaseInUse` naming the holder.
        """
        if charts is None:
            if packages is None:
                raise ValueError("give the chart packages (or a ChartSet) the engine runs")
            charts = ChartSet.load(packages, dict(chart_settings or {}))
        clock = clock or SystemClock()
        opened = await open_database(path, settings, charts.migrations)
        try:
            if callable(handlers):
                handlers = await handlers(EngineParts(opened.store, opened.vault, clock, charts))
            engine = cls(
                opened.store, charts, settings, clock=clock, handlers=handlers, vault=opened.vault
            )
        except BaseException:
            await opened.close()
            raise
        engine._opened = opened
        engine.start()
        log.info("engine started", db=opened.name, charts=sorted(charts.by_name))
        return engine

    def start(self) -> None:
        """Start the bus, and the background loops the settings ask for: the
        timers (whose side also purges old dead letters) and the outbox."""
        self.bus.start()
        loops: list[tuple[str, Callable[[], Awaitable[Any]], float]] = []
        if self.settings.run_timers:
            loops.append(("timers", self.fire_due_timers, self.settings.timer_interval))
            loops.append(("purge", self.purge_dead_letters, self.settings.purge_interval))
        if self.settings.run_outbox:
            loops.append(("outbox", self.outbox.run_once, self.settings.outbox_interval))
        for name, work, interval in loops:
            self._background.append(
                asyncio.create_task(run_every(name, work, interval), name=f"channelsync-{name}")
            )

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
        if self._opened is not None:
            await self._opened.close()
        else:
            await self.store.close()
            self.vault.close()
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
            typed = self._admission.accept(event)
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
                typed = self._admission.accept(event)
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
        """Validate raw JSON as an event; bad input becomes a dead letter (ENG-3).

        The host's path for events from the wire: the text is validated once,
        straight into the envelope (stamped with ``received_at`` as it is
        built), and queued without a coroutine of its own when its partition
        has room."""
        try:
            typed = self._admission.accept_json(raw)
        except EventRejected as rejected:
            return await (await self._dead_letter(raw, source, rejected))
        return await (self.bus.submit_nowait(typed) or await self.bus.submit(typed))

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

    async def _reject(
        self, event: Event | Mapping[str, Any], rejected: EventRejected
    ) -> asyncio.Future[Receipt]:
        """Keep an event that `Admission.accept` refused as a dead letter."""
        raw, source = refused_input(event)
        return await self._dead_letter(raw, source, rejected)

    async def _dead_letter(
        self,
        raw: str | bytes | Mapping[str, Any],
        source: str,
        rejected: EventRejected,
        size: int | None = None,
    ) -> asyncio.Future[Receipt]:
        row = dead_letter_of(raw, source, rejected, self.clock.now(), size)
        return await self.bus.submit_dead_letter(row)

    async def purge_dead_letters(self, now: float | None = None) -> int:
        """Delete the dead letters last seen more than the retention ago; how many."""
        now = self.clock.now() if now is None else now
        purged = await self.store.purge_dead_letters(now - self.settings.dead_letter_retention)
        if purged:
            log.info(
                "dead letters purged", purged=purged, retention=self.settings.dead_letter_retention
            )
        return purged

    async def discard_dead_letter(
        self, letter_id: int, *, actor: str = "api", reason: str | None = None
    ) -> DeadLetterRow:
        """Resolve a dead letter as needing nothing more (`engine.dead_letters`)."""
        now = self.clock.now()
        return await discard_letter(self.store, letter_id, now=now, actor=actor, reason=reason)

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
