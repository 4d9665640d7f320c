"""The event bus: partition queues and their workers, in front of the committer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol, cast

from engine.bus.cache import EntityCache
from engine.bus.commit_log import log
from engine.bus.committer import (
    CommitObserver,
    CommitStore,
    Committer,
    Pending,
    as_store_error,
)
from engine.bus.duplicates import DuplicateGuard
from engine.bus.receipts import Group, Receipt, Sink, refuse
from engine.bus.routing import PartitionRouter
from engine.bus.stepper import BatchStepper
from engine.chartset import ChartSet
from engine.events import Event
from engine.step import EntityState, new_entity
from engine.store.sqlite import Batch, DeadLetterRow


class BusStore(CommitStore, Protocol):
    """What the bus needs of a store."""

    async def known_event_ids(self, event_ids: Sequence[str]) -> set[str]: ...

    async def load_entities(self, keys: Sequence[str]) -> dict[str, EntityState]: ...


# A queue item: one event and its future, or a group's events and the group.
_Item = tuple[Event, asyncio.Future[Receipt]] | tuple[list[Event], Group]
_STOP = None


class EventBus:
    """``submit`` routes an event by its entity key to one of ``partitions``
    bounded queues (waiting when it is full: backpressure). Each partition's
    worker takes what is queued (up to ``max_batch``), reads which ids are
    duplicates and loads missing entities (one read each), steps the batch
    (`BatchStepper`) and hands it to the `Committer`."""

    def __init__(
        self,
        store: BusStore,
        charts: ChartSet,
        *,
        partitions: int = 4,
        queue_size: int = 10_000,
        max_batch: int = 1_000,
        cache_size: int = 200_000,
        pending_batches: int = 64,
    ) -> None:
        self._store = store
        self._charts = charts
        self._max_batch = max_batch
        self._router = PartitionRouter(partitions)
        self._queues: list[asyncio.Queue[_Item | None]] = [
            asyncio.Queue(maxsize=queue_size) for _ in range(self._router.partitions)
        ]
        self._cache = EntityCache(cache_size)
        self._duplicates = DuplicateGuard()
        self._stepper = BatchStepper(charts, self._cache, self._duplicates)
        slots = max(self._router.partitions, pending_batches)
        self._committer = Committer(store, self._cache, self._duplicates, slots)
        self._workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if self._workers:
            return
        self._workers = [
            asyncio.create_task(self._worker(q), name=f"channelsync-partition-{i}")
            for i, q in enumerate(self._queues)
        ]
        self._committer.start()

    async def stop(self) -> None:
        """Drain: everything already accepted is processed and committed."""
        if not self._workers:
            return
        for queue in self._queues:
            await queue.put(_STOP)
        await asyncio.gather(*self._workers)
        await self._committer.stop()
        self._workers = []

    def resync(self) -> None:
        """Forget every cached state and refuse the batches stepped on them:
        after the writer was restarted, a commit cut off by its death may or
        may not have landed, so entities are read again from the store
        (ENG-12). The refused publishers retry; event ids make that safe."""
        self._committer.resync()

    def observe_commits(self, observer: CommitObserver | None) -> None:
        """Tell ``observer`` of every commit (engine.metrics counts them); None: nobody."""
        self._committer.observer = observer

    def queue_depths(self) -> list[int]:
        """What waits in each partition's queue, by partition: an item is one
        event, or a group `submit_many` queued together."""
        return [queue.qsize() for queue in self._queues]

    async def submit(self, event: Event) -> asyncio.Future[Receipt]:
        """Queue a validated event; the future resolves once it is committed."""
        future = self.submit_nowait(event)
        if future is None:  # the partition is full: wait for room (backpressure)
            future = asyncio.get_running_loop().create_future()
            await self._queues[self._router.partition_of(event.entity)].put((event, future))
        return future

    def submit_nowait(self, event: Event) -> asyncio.Future[Receipt] | None:
        """`submit` without waiting: the future, or None if the partition is full."""
        future: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        try:  # put_nowait checks for room itself: checking first would do it twice
            self._queues[self._router.partition_of(event.entity)].put_nowait((event, future))
        except asyncio.QueueFull:
            return None
        return future

    async def submit_many(self, events: list[Event]) -> list[asyncio.Future[list[Receipt]]]:
        """Queue validated events as groups, one per partition and up to a batch
        each; each group's future resolves (to its receipts, in order) once all
        of them are committed. Much cheaper per event than `submit`."""
        loop = asyncio.get_running_loop()
        futures = []
        for index, chunk_events in enumerate(self._router.split(events)):
            for start in range(0, len(chunk_events), self._max_batch):
                chunk = chunk_events[start : start + self._max_batch]
                group = Group(loop.create_future(), len(chunk))
                futures.append(group.future)
                await self._queues[index].put((chunk, group))
        return futures

    async def submit_dead_letter(self, row: DeadLetterRow) -> asyncio.Future[Receipt]:
        future: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        await self._committer.reserve()
        self._committer.hand_over(
            Pending(Batch(dead_letters=[row]), [(future, row)], [], self._cache.epoch)
        )
        return future

    async def _worker(self, queue: asyncio.Queue[_Item | None]) -> None:
        stop = False
        while not stop:
            item = await queue.get()
            if item is _STOP:
                break
            items: list[tuple[Event, Sink]] = []
            _take(items, item)
            while len(items) < self._max_batch and not queue.empty():
                nxt = queue.get_nowait()
                if nxt is _STOP:
                    stop = True
                    break
                _take(items, nxt)
            await self._committer.reserve()
            try:
                known = await self._read(items)
                pending = self._stepper.step(items, known)
            except Exception as err:  # a store read failed: refuse the batch, keep running
                self._committer.unreserve()
                log.error("batch refused", error=str(err), events=len(items))
                err = as_store_error(err)
                for _event, sink in items:
                    refuse(sink, err)
                continue
            self._committer.hand_over(pending)

    async def _read(self, items: list[tuple[Event, Sink]]) -> set[str]:
        """The ids of ``items`` that are duplicates so far, every entity of
        them cached. Nothing may be awaited between this and stepping: the
        ids are complete only until the next commit."""
        ticket = self._duplicates.start_read()
        try:
            known = await self._store.known_event_ids([e.event_id for e, _ in items])
            # Loading can span a commit that evicts what an earlier load cached.
            while missing := self._cache.missing(e.entity for e, _ in items):
                loaded = await self._store.load_entities(missing)
                for key in missing:
                    state = loaded.get(key)
                    if state is None:
                        state = new_entity(self._charts.by_kind[key.split(":", 1)[0]], key)
                    self._cache.load(key, state)
        finally:
            missed = self._duplicates.finish_read(ticket)
        return known | missed


def _take(items: list[tuple[Event, Sink]], item: _Item) -> None:
    """Append a queue item: one (event, future) or a `Group`'s events."""
    payload, sink = item
    if isinstance(sink, Group):
        items.extend([(event, sink) for event in cast(list[Event], payload)])
    else:
        items.append(cast(tuple[Event, Sink], item))
