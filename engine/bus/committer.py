"""The committer: one writer of everything the bus's workers stepped."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from engine.bus.cache import EntityCache
from engine.bus.commit_log import log, log_commit
from engine.bus.duplicates import DuplicateGuard
from engine.bus.receipts import Row, Sink, refuse, resolve
from engine.store.errors import StoreError, WriteNotAcknowledged
from engine.store.sqlite import Batch

# Told of each successful commit: what it wrote and how many seconds it took.
CommitObserver = Callable[[Batch, float], None]


class CommitStore(Protocol):
    async def commit(self, batch: Batch, timers_fired: Sequence[str] = ()) -> None: ...


@dataclass(slots=True)
class Pending:
    """A stepped batch waiting for its commit, and whom to tell."""

    batch: Batch
    sinks: list[tuple[Sink, Row]]
    keys: list[str]  # the entity of each transition: pinned in the cache until committed
    epoch: int  # the cache's epoch the batch was stepped in
    timers_fired: list[str] = field(default_factory=list)


class Committer:
    """Writes everything pending from all workers in one transaction (group
    commit) and only then resolves the publishers' futures, so an
    acknowledgement always means "durable".

    A worker reserves one of ``slots`` before stepping a batch and the commit
    frees it (backpressure). When the disk is slow, batches queue up and the
    next commit takes all of them, sharing its cost among more events; so
    there are many slots, not one per worker."""

    def __init__(
        self, store: CommitStore, cache: EntityCache, guard: DuplicateGuard, slots: int
    ) -> None:
        self._store = store
        self._cache = cache
        self._guard = guard
        self._pending: list[Pending] = []
        self._signal = asyncio.Event()
        self._slots = asyncio.Semaphore(slots)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.observer: CommitObserver | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="channelsync-committer")

    async def stop(self) -> None:
        """Commit what was handed over, then end (workers stopped first)."""
        if self._task is None:
            return
        self._stopping = True
        self._signal.set()
        await self._task
        self._task = None
        self._stopping = False

    async def reserve(self) -> None:
        """Wait for a slot: one per batch handed over and not yet committed."""
        await self._slots.acquire()

    def unreserve(self) -> None:
        """Give back a slot whose batch will not be handed over."""
        self._slots.release()

    def hand_over(self, pending: Pending) -> None:
        """Commit ``pending`` (its slot reserved) with the next transaction."""
        self._pending.append(pending)
        self._signal.set()

    def resync(self) -> None:
        """Forget every cached state and refuse the batches stepped on them."""
        self._cache.forget()
        self._signal.set()

    async def _loop(self) -> None:
        while True:
            await self._signal.wait()
            self._signal.clear()
            if not self._pending:
                if self._stopping:
                    return
                continue
            taken, self._pending = self._pending, []
            epoch = self._cache.epoch
            current = [p for p in taken if p.epoch == epoch]
            stale = [p for p in taken if p.epoch != epoch]
            if stale:
                self._fail(
                    stale, WriteNotAcknowledged("an earlier batch failed to commit; publish again")
                )
            if current:
                await self._commit(current)
            if self._stopping and not self._pending:
                return
            if self._pending:
                self._signal.set()

    async def _commit(self, pendings: list[Pending]) -> None:
        merged = Batch()
        fired: list[str] = []
        for pending in pendings:
            merged.events.extend(pending.batch.events)
            merged.duplicates.extend(pending.batch.duplicates)
            merged.dead_letters.extend(pending.batch.dead_letters)
            fired.extend(pending.timers_fired)
        started = time.perf_counter()
        try:
            await self._store.commit(merged, fired)
        except Exception as err:
            # Nothing of this transaction is durable: forget cached states built
            # on it and refuse every publish that was waiting for it.
            self._cache.forget()
            log.error("commit failed", error=str(err), events=len(merged.events))
            self._fail(pendings, as_store_error(err))
            return
        self._guard.committed([row.event_id for row in merged.events])
        for pending in pendings:
            self._cache.committed(pending.keys)
            for sink, row in pending.sinks:
                resolve(sink, row)
            self._slots.release()
        if self.observer is not None:
            self.observer(merged, time.perf_counter() - started)
        log_commit(merged)
        self._cache.evict()

    def _fail(self, pendings: list[Pending], err: BaseException) -> None:
        for pending in pendings:
            self._guard.release([row.event_id for row in pending.batch.events])
            for sink, _row in pending.sinks:
                refuse(sink, err)
            self._slots.release()


def as_store_error(err: Exception) -> Exception:
    """A database's failure (sqlite3's, or the OS's) as a `StoreError`, which
    callers treat as "not recorded, try again later" (a receiver's 503);
    anything else (a bug) is left as it is."""
    if isinstance(err, StoreError) or not isinstance(err, sqlite3.Error | OSError):
        return err
    wrapped = WriteNotAcknowledged(f"{type(err).__name__}: {err}")
    wrapped.__cause__ = err
    return wrapped
