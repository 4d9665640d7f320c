"""The event bus: partitioned workers in front of one group-committing writer.

``publish`` hashes an event's entity key onto one of N bounded partition
queues. Each partition's worker takes what is queued (up to a batch), finds
duplicates and loads missing entities with one read each, steps every event
against its cache of entity states (in arrival order: ENG-4), and hands the
batch to the committer. The committer writes everything pending from all
workers in one transaction (group commit) and only then resolves the
publishers' futures, so an acknowledgement always means "durable".

Backpressure: partition queues are bounded (``publish`` waits when full) and a
worker waits for a commit slot before handing over another batch. There are
``pending_batches`` slots (64 by default: up to 64,000 stepped, uncommitted
events): when the disk is slow (a large store, random pages), batches queue up
and the next commit takes all of them, so the cost of a commit is shared by
more events. With 8 slots, ingest into a store of 1M entities ran at 0.40 of
the rate into 10k; with 64, at about 0.7.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from engine.chartset import ChartSet
from engine.events import Event, loggable_entity
from engine.logs import get_logger, reason_fields
from engine.step import EntityState, Outcome, new_entity, step_in_place
from engine.store.errors import StoreError, WriteNotAcknowledged
from engine.store.sqlite import Batch, DeadLetterRow, DuplicateRow, EventRow, SQLiteStore

log = get_logger("channelsync.bus")

_STOP = object()


class Receipt(NamedTuple):
    """What ``publish`` returns once the event is durably recorded.

    A named tuple: immutable, and built for every event on the hot path, where
    a frozen dataclass costs several times more to create."""

    event_id: str | None
    outcome: str
    entity: str | None = None
    seq: int | None = None
    from_state: str | None = None
    to_state: str | None = None
    reason: str | None = None
    commands: tuple[str, ...] = ()


@dataclass(slots=True)
class _Group:
    """Many events of one partition acknowledged by one future (`submit_many`):
    the rows arrive in commit order, which is the order submitted."""

    future: asyncio.Future[list[Receipt]]
    expected: int
    rows: list[Any] = field(default_factory=list)

    def done(self) -> bool:
        return self.future.done()

    def add(self, row: Any) -> None:
        self.rows.append(row)
        if len(self.rows) == self.expected and not self.future.done():
            self.future.set_result([_receipt(r) for r in self.rows])

    def set_exception(self, err: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(err)


# Who is told when an event is committed: its own future, or its group.
_Sink = asyncio.Future[Receipt] | _Group


@dataclass(slots=True)
class _Pending:
    batch: Batch
    futures: list[tuple[_Sink, Any]]
    keys: list[str]
    epoch: int
    timers_fired: list[str] = field(default_factory=list)


class EventBus:
    def __init__(
        self,
        store: SQLiteStore,
        charts: ChartSet,
        *,
        partitions: int = 4,
        queue_size: int = 10_000,
        max_batch: int = 1_000,
        cache_size: int = 200_000,
        pending_batches: int = 64,
        on_commit: Callable[[list[EventRow]], None] | None = None,
    ) -> None:
        self.store = store
        self.charts = charts
        self.partitions = max(1, partitions)
        self.max_batch = max_batch
        self.cache_size = cache_size
        self._queues: list[asyncio.Queue[Any]] = [
            asyncio.Queue(maxsize=queue_size) for _ in range(self.partitions)
        ]
        self._cache: OrderedDict[str, EntityState] = OrderedDict()
        self._uncommitted: dict[str, int] = {}
        self._inflight_ids: set[str] = set()
        self._generation = 0
        self._readers: dict[object, int] = {}
        self._recently_committed: list[tuple[int, set[str]]] = []
        self._pending: list[_Pending] = []
        self._commit_signal = asyncio.Event()
        self._commit_slots = asyncio.Semaphore(max(self.partitions, pending_batches))
        self._epoch = 0
        self._workers: list[asyncio.Task[None]] = []
        self._committer: asyncio.Task[None] | None = None
        self._stopping = False
        self._on_commit = on_commit
        self.committed_batches = 0

    # ------------------------------------------------------------- lifecycle

    def start(self) -> None:
        if self._workers:
            return
        self._workers = [
            asyncio.create_task(self._worker(q), name=f"channelsync-partition-{i}")
            for i, q in enumerate(self._queues)
        ]
        self._committer = asyncio.create_task(self._commit_loop(), name="channelsync-committer")

    async def stop(self) -> None:
        """Drain: everything already accepted is processed and committed."""
        if not self._workers:
            return
        for queue in self._queues:
            await queue.put(_STOP)
        await asyncio.gather(*self._workers)
        self._stopping = True
        self._commit_signal.set()
        if self._committer is not None:
            await self._committer
        self._workers = []
        self._committer = None
        self._stopping = False

    # ------------------------------------------------------------- intake

    async def submit(self, event: Event) -> asyncio.Future[Receipt]:
        """Queue a validated event; the future resolves once it is committed."""
        future = self.submit_nowait(event)
        if future is None:  # the partition is full: wait for room (backpressure)
            future = asyncio.get_running_loop().create_future()
            await self._queues[self._partition_of(event.entity)].put((event, future))
        return future

    def submit_nowait(self, event: Event) -> asyncio.Future[Receipt] | None:
        """`submit` without waiting: the future, or None if the partition is full."""
        queue = self._queues[self._partition_of(event.entity)]
        if queue.full():
            return None
        future: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        queue.put_nowait((event, future))
        return future

    def _partition_of(self, entity: str) -> int:
        """The partition (and so the worker) that applies this entity's events:
        a checksum, not ``hash()``, so that every run routes alike (``hash`` is
        salted per process) and a debugging session can repeat one exactly."""
        return zlib.crc32(entity.encode()) % self.partitions

    async def submit_many(self, events: list[Event]) -> list[asyncio.Future[list[Receipt]]]:
        """Queue validated events as groups, one per partition and up to a batch
        each; each group's future resolves (to its receipts, in order) once all
        of them are committed. Much cheaper per event than `submit`."""
        loop = asyncio.get_running_loop()
        by_partition: list[list[Event]] = [[] for _ in range(self.partitions)]
        for event in events:
            by_partition[self._partition_of(event.entity)].append(event)
        futures = []
        for index, chunk_events in enumerate(by_partition):
            for start in range(0, len(chunk_events), self.max_batch):
                chunk = chunk_events[start : start + self.max_batch]
                group = _Group(loop.create_future(), len(chunk))
                futures.append(group.future)
                await self._queues[index].put((chunk, group))
        return futures

    async def submit_dead_letter(self, row: DeadLetterRow) -> asyncio.Future[Receipt]:
        future: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        await self._commit_slots.acquire()
        self._pending.append(_Pending(Batch(dead_letters=[row]), [(future, row)], [], self._epoch))
        self._commit_signal.set()
        return future

    # ------------------------------------------------------------- workers

    async def _worker(self, queue: asyncio.Queue[Any]) -> None:
        stop = False
        while not stop:
            item = await queue.get()
            if item is _STOP:
                break
            items: list[tuple[Event, _Sink]] = []
            _take(items, item)
            while len(items) < self.max_batch and not queue.empty():
                nxt = queue.get_nowait()
                if nxt is _STOP:
                    stop = True
                    break
                _take(items, nxt)
            await self._commit_slots.acquire()
            try:
                pending = await self._step_batch(items)
            except Exception as err:  # a store read failed: refuse the batch, keep running
                self._commit_slots.release()
                log.error("batch refused", error=str(err), events=len(items))
                err = _as_store_error(err)
                for _event, sink in items:
                    if not sink.done():
                        sink.set_exception(err)
                continue
            self._pending.append(pending)
            self._commit_signal.set()

    async def _step_batch(self, items: list[tuple[Event, _Sink]]) -> _Pending:
        # Duplicate detection must be exact across partitions (one event id can
        # be sent for two entities). Ids are claimed in ``_inflight_ids`` at step
        # time, which is synchronous and so atomic between workers; ids committed
        # after our read was issued may be invisible to it, so the commit
        # generations since then are consulted too.
        generation = self._generation
        token = object()
        self._readers[token] = generation
        try:
            known = await self.store.known_event_ids([e.event_id for e, _ in items])
            while True:
                missing = list({e.entity for e, _ in items if e.entity not in self._cache})
                if not missing:
                    break
                loaded = await self.store.load_entities(missing)
                for key in missing:
                    if key not in self._cache:
                        chart = self.charts.by_kind[key.split(":", 1)[0]]
                        self._cache[key] = loaded.get(key) or new_entity(chart, key)
        finally:
            del self._readers[token]
        for committed_generation, ids in self._recently_committed:
            if committed_generation > generation:
                known |= ids
        self._prune_recent()
        claimed: list[str] = []
        try:
            return self._step_items(items, known, claimed)
        except BaseException:
            # A step's own failures are error outcomes, so this is an interrupt
            # or a bug here. Nothing of the batch was acknowledged: release its
            # ids, lest a retry be taken for a duplicate, and forget every
            # uncommitted state, as after a failed commit. (Unlike then, a
            # commit may be in flight: an entity read before it lands is read
            # stale. The cure would be a barrier on every read for a path that
            # only a bug takes; `channelsync check` would report the divergence.)
            self._inflight_ids.difference_update(claimed)
            self._forget_uncommitted()
            raise

    def _step_items(
        self, items: list[tuple[Event, _Sink]], known: set[str], claimed: list[str]
    ) -> _Pending:
        """Step a batch against the cache (synchronous: atomic between workers)."""
        inflight = self._inflight_ids
        batch = Batch()
        futures: list[tuple[_Sink, Any]] = []
        keys: list[str] = []
        timers_fired: list[str] = []
        settings = self.charts.settings
        by_kind = self.charts.by_kind
        cache = self._cache
        for event, future in items:
            event_id = event.event_id
            received_at = event.received_at or 0.0
            if event.source == "timer":
                timers_fired.append(event_id)
            if event_id in known or event_id in inflight:
                row: Any = DuplicateRow(event_id, event.entity, received_at)
                batch.duplicates.append(row)
                futures.append((future, row))
                continue
            inflight.add(event_id)
            claimed.append(event_id)
            key = event.entity
            chart = by_kind[key.partition(":")[0]]
            entity = cache[key]
            result = step_in_place(chart, entity, event, settings)
            transitioned = result.outcome is Outcome.TRANSITIONED
            row = EventRow(
                event_id,
                event.type,
                event.source,
                key,
                chart.name,
                event.occurred_at,
                received_at,
                _payload_json(event.payload),
                result.outcome.value,
                result.from_state,
                result.to_state,
                result.reason,
                result.entity if transitioned else None,
                result.commands,
                result.timers,
                moved=transitioned
                and (result.to_state != entity.state or entity.chart != chart.name),
                data_json=result.data_json,
                command_json=result.command_json,
            )
            if transitioned:
                cache[key] = result.entity
                cache.move_to_end(key)
                self._uncommitted[key] = self._uncommitted.get(key, 0) + 1
                keys.append(key)
            batch.events.append(row)
            futures.append((future, row))
        return _Pending(batch, futures, keys, self._epoch, timers_fired)

    # ------------------------------------------------------------- committer

    async def _commit_loop(self) -> None:
        while True:
            await self._commit_signal.wait()
            self._commit_signal.clear()
            if not self._pending:
                if self._stopping:
                    return
                continue
            taken, self._pending = self._pending, []
            current = [p for p in taken if p.epoch == self._epoch]
            stale = [p for p in taken if p.epoch != self._epoch]
            if stale:
                self._fail(
                    stale, WriteNotAcknowledged("an earlier batch failed to commit; publish again")
                )
            if current:
                await self._commit(current)
            if self._stopping and not self._pending:
                return
            if self._pending:
                self._commit_signal.set()

    async def _commit(self, pendings: list[_Pending]) -> None:
        merged = Batch()
        fired: list[str] = []
        for pending in pendings:
            merged.events.extend(pending.batch.events)
            merged.duplicates.extend(pending.batch.duplicates)
            merged.dead_letters.extend(pending.batch.dead_letters)
            fired.extend(pending.timers_fired)
        try:
            await self.store.commit(merged, fired)
        except Exception as err:
            # Nothing of this transaction is durable: forget cached states built
            # on it and refuse every publish that was waiting for it.
            self._forget_uncommitted()
            log.error("commit failed", error=str(err), events=len(merged.events))
            self._fail(pendings, _as_store_error(err))
            return
        self.committed_batches += 1
        self._generation += 1
        if self._readers:  # only reads already in flight need to hear of these ids
            self._recently_committed.append(
                (self._generation, {row.event_id for row in merged.events})
            )
            self._prune_recent()
        self._inflight_ids.difference_update([row.event_id for row in merged.events])
        for pending in pendings:
            for key in pending.keys:
                left = self._uncommitted.get(key, 0) - 1
                if left <= 0:
                    self._uncommitted.pop(key, None)
                else:
                    self._uncommitted[key] = left
            for sink, row in pending.futures:
                if isinstance(sink, _Group):
                    sink.add(row)
                elif not sink.done():
                    sink.set_result(_receipt(row))
            self._commit_slots.release()
        self._log(merged)
        if self._on_commit is not None:
            self._on_commit(merged.events)
        self._evict()

    def _forget_uncommitted(self) -> None:
        """Drop every cached state (some are not durable) and make the batches
        waiting for a commit stale: they are refused, and entities are read
        again from the store."""
        self._epoch += 1
        self._cache.clear()
        self._uncommitted.clear()

    def resync(self) -> None:
        """Forget every cached state and refuse the batches stepped on them:
        after the writer was restarted, a commit cut off by its death may or
        may not have landed, so entities are read again from the store
        (ENG-12). The refused publishers retry; event ids make that safe."""
        self._forget_uncommitted()
        self._commit_signal.set()

    def _prune_recent(self) -> None:
        """Forget committed ids that every outstanding read can already see."""
        oldest = min(self._readers.values(), default=self._generation)
        while self._recently_committed and self._recently_committed[0][0] <= oldest:
            self._recently_committed.pop(0)

    def _fail(self, pendings: list[_Pending], err: BaseException) -> None:
        for pending in pendings:
            self._inflight_ids.difference_update([row.event_id for row in pending.batch.events])
            for sink, _row in pending.futures:
                if not sink.done():
                    sink.set_exception(err)
            self._commit_slots.release()

    def _evict(self) -> None:
        excess = len(self._cache) - self.cache_size
        if excess <= 0:
            return
        for key in list(self._cache)[: excess * 2]:
            if excess <= 0:
                break
            if key not in self._uncommitted:
                del self._cache[key]
                excess -= 1

    def _log(self, batch: Batch) -> None:
        """One INFO line per commit with its counts; a line per event at DEBUG,
        or at WARNING for an action that raised.

        The event log in SQLite already holds every event with its outcome and
        reason (`channelsync history`); a JSON log line costs about 10 us
        (docs/performance.md), a third of an event's budget, so routine outcomes are
        summarised per commit."""
        debug_enabled = _debug_enabled()
        ignored = errors = 0
        for row in batch.events:
            outcome = row.outcome
            failed = outcome == Outcome.ERROR
            if failed:
                errors += 1
            elif outcome != Outcome.TRANSITIONED:
                ignored += 1
            if not (debug_enabled or failed):
                continue
            bound = log.bind(
                entity=row.entity, event_id=row.event_id, event_type=row.type, seq=row.seq
            )
            if outcome == Outcome.TRANSITIONED:
                bound.debug(
                    "transitioned",
                    from_state=row.from_state,
                    to_state=row.to_state,
                    commands=[c.type for c in row.commands] or None,
                )
            elif failed:
                bound.warning(
                    outcome, state=row.from_state, **reason_fields(row.reason, row.payload)
                )
            else:
                bound.debug(outcome, state=row.from_state, reason=row.reason)
        if debug_enabled:
            for dup in batch.duplicates:
                log.debug("duplicate", entity=dup.entity, event_id=dup.event_id)
        for dead in batch.dead_letters:
            # The entity of a dead letter is read from the refused body: it is
            # named only when it has an entity key's shape (SEC-2).
            log.warning(
                "dead letter",
                entity=loggable_entity(dead.entity),
                source=dead.source,
                error=dead.error,
            )
        if batch.events or batch.duplicates:
            log.info(
                "committed",
                events=len(batch.events),
                transitioned=len(batch.events) - ignored - errors,
                ignored=ignored,
                errors=errors,
                duplicates=len(batch.duplicates),
                first_seq=batch.events[0].seq if batch.events else None,
                last_seq=batch.events[-1].seq if batch.events else None,
            )

    def cached(self, key: str) -> EntityState | None:
        return self._cache.get(key)

    def invalidate(self) -> None:
        self._cache.clear()


def _as_store_error(err: Exception) -> Exception:
    """A database's failure (sqlite3's, or the OS's) as a `StoreError`, which
    callers treat as "not recorded, try again later" (a receiver's 503);
    anything else (a bug) is left as it is."""
    if isinstance(err, StoreError) or not isinstance(err, sqlite3.Error | OSError):
        return err
    wrapped = WriteNotAcknowledged(f"{type(err).__name__}: {err}")
    wrapped.__cause__ = err
    return wrapped


def _take(items: list[tuple[Event, _Sink]], item: tuple[Any, Any]) -> None:
    """Append a queue item: one (event, future) or a `_Group`'s events."""
    payload, sink = item
    if isinstance(sink, _Group):
        items.extend([(event, sink) for event in payload])
    else:
        items.append(item)


def _payload_json(payload: Any) -> str:
    """The payload as JSON: `model_dump_json` without its keyword handling."""
    return payload.__pydantic_serializer__.to_json(payload).decode()  # type: ignore[no-any-return]


def _debug_enabled() -> bool:
    """Whether the configured structlog wrapper lets DEBUG lines through
    (a wrapper that cannot say is assumed to)."""
    bound = log.bind()
    check = getattr(bound, "is_enabled_for", None) or getattr(bound, "isEnabledFor", None)
    return True if check is None else bool(check(logging.DEBUG))


def _receipt(row: Any) -> Receipt:
    if isinstance(row, EventRow):
        return Receipt(
            row.event_id,
            row.outcome,
            row.entity,
            row.seq,
            row.from_state,
            row.to_state,
            row.reason,
            tuple([c.type for c in row.commands]) if row.commands else (),
        )
    if isinstance(row, DuplicateRow):
        return Receipt(row.event_id, Outcome.DUPLICATE.value, row.entity)
    return Receipt(None, "dead_letter", row.entity, reason=row.error)


__all__ = ["EventBus", "Receipt"]
