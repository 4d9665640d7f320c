"""A cluster worker: an engine on PostgreSQL fed by the partitions it leases.

    worker = Worker(WorkerSettings(store="postgresql://...", bus="nats://..."), open_engine)
    await worker.run(stop)        # until ``stop`` is set

The worker keeps its leases (`engine.cluster.leases`) in a loop of rounds,
and for each partition it holds reads the partition's JetStream subject from
the stored offset (`PartitionFeed`), hands the events to its engine in stream
order and acknowledges them once their commit resolved. The engine runs on
the PostgreSQL store without the single-writer lock (``lock=False``): the
fence (`engine.cluster.fence`) in every commit is what keeps a worker that
lost a partition from writing to it. Timers and commands run only for owned
partitions (`engine.cluster.owned`); a command's result events go back
through JetStream to their own partition's owner.

A worker whose lease ran out before renewal, whose commit was refused by the
fence, or that takes back a partition it gave away earlier, steps down: its
engine stops (its cache of entity states goes with it) and it rejoins with a
fresh one, keeping the leases it still holds (docs/scaling.md).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol, cast

from nats.js import JetStreamContext

from engine.cluster.consume import Pacing, consume
from engine.cluster.fence import LeaseLost, OffsetTracker, make_fence, save_offsets
from engine.cluster.jetstream import (
    DEFAULT_PREFIX,
    DEFAULT_STREAM,
    JetStreamPublisher,
    PartitionFeed,
    connect_bus,
    ensure_stream,
)
from engine.cluster.leases import DEFAULT_LEASE_TTL, Leases, ensure_tables, frozen_safe_url
from engine.cluster.owned import OwnedPartitions
from engine.cluster.tasks import every, finish, wait_any
from engine.logs import error_fields, get_logger
from engine.outbox import OutboxDispatcher
from engine.runtime import Engine
from engine.settings import EngineSettings
from engine.store.protocol import Store
from engine.store.rows import dumps

log = get_logger("channelsync.cluster.worker")


@dataclass(frozen=True)
class WorkerSettings:
    """Where a worker's store and bus are, and how it paces itself."""

    store: str
    bus: str
    stream: str = DEFAULT_STREAM
    prefix: str = DEFAULT_PREFIX
    lease_ttl: float = DEFAULT_LEASE_TTL
    # Messages a partition's feed hands over at once, and how long a fetch
    # waits for the first one (also how soon a drained partition lets go).
    fetch_batch: int = 256
    fetch_timeout: float = 0.25
    worker_id: str | None = None

    @property
    def round_interval(self) -> float:
        """Seconds between lease rounds: a third of the lease, at most half a
        second, so a dead worker's partitions move within the lease plus a second."""
        return min(self.lease_ttl / 3, 0.5)


class RunningEngine(Protocol):
    """An opened engine and how to stop it (a `ChannelApp`, or `EngineOnly`)."""

    @property
    def engine(self) -> Engine: ...

    async def stop(self) -> None: ...


@dataclass
class EngineOnly:
    """A bare `Engine` as a `RunningEngine`."""

    engine: Engine

    async def stop(self) -> None:
        await self.engine.stop()


# Opens the engine on the store URL it is given (the worker's, with session
# options added) with the settings it is given.
OpenEngine = Callable[[str, EngineSettings], Awaitable[RunningEngine]]


# Seconds a stopping membership waits for its loops and feeds to end.
STOP_TIMEOUT = 5.0


class EngineWedged(RuntimeError):
    """A worker's engine did not stop: the process should end and be restarted."""


class Rejoin(Exception):
    """The worker must start its engine afresh (see the module's docstring)."""


class Worker:
    def __init__(
        self,
        settings: WorkerSettings,
        open_engine: OpenEngine,
        engine_settings: EngineSettings | None = None,
    ) -> None:
        self.settings = settings
        self.open_engine = open_engine
        self.engine_settings = engine_settings or EngineSettings()
        self.leases: Leases | None = None
        self.stepped_down = 0
        # Why it last stepped down (a LeaseLost from the fence or from a round).
        self.last_step_down: BaseException | None = None
        self._draining: set[int] = set()
        self._publisher: JetStreamPublisher | None = None
        self._pacing = Pacing(
            settings.fetch_batch, settings.fetch_timeout, self._draining.__contains__
        )

    def owns(self, partition: int) -> bool:
        """Whether this worker runs the partition's timers and commands now."""
        return (
            self.leases is not None
            and partition in self.leases.held
            and partition not in self._draining
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then give every lease back."""
        leases = await Leases.connect(
            self.settings.store, self.settings.worker_id, ttl=self.settings.lease_ttl, create=False
        )
        self.leases = leases
        try:
            bus = await connect_bus(self.settings.bus)
        except BaseException:
            await leases.close()
            raise
        try:
            js = bus.js
            await ensure_stream(js, stream=self.settings.stream, prefix=self.settings.prefix)
            self._publisher = JetStreamPublisher(
                js, stream=self.settings.stream, prefix=self.settings.prefix
            )
            log.info("worker started", worker=leases.worker_id)
            while not stop.is_set():
                try:
                    await leases.reconnect_if_broken()
                    await self._membership(js, leases, stop)
                except (LeaseLost, Rejoin) as why:
                    self.stepped_down += 1
                    self.last_step_down = why
                except EngineWedged:
                    raise
                except Exception as err:
                    self.stepped_down += 1
                    self.last_step_down = err
                    log.error(
                        "worker failed; rejoining", worker=leases.worker_id, **error_fields(err)
                    )
                    await asyncio.sleep(self.settings.round_interval)
        finally:
            with contextlib.suppress(Exception):
                await leases.leave()
            await leases.close()
            await bus.close()
            log.info("worker stopped", worker=leases.worker_id)

    async def _membership(self, js: JetStreamContext, leases: Leases, stop: asyncio.Event) -> None:
        """One engine's life: open it fenced, consume and keep leases until
        ``stop`` or a reason to step down, then stop it."""
        settings = replace(self.engine_settings, lock=False, run_timers=False, run_outbox=False)
        half = self.settings.lease_ttl / 2
        running = await self.open_engine(frozen_safe_url(self.settings.store, half), settings)
        engine = running.engine
        try:
            # After the store made its tables: it refuses a database with others'.
            await ensure_tables(leases.conn, leases.partitions)
        except BaseException:
            await running.stop()
            raise
        tracker = OffsetTracker()
        guards = getattr(engine.store, "commit_guards", None)
        if guards is None:
            await running.stop()
            raise TypeError(f"a worker needs a store with commit guards, not {engine.store!r}")
        guards.append(make_fence(leases.worker_id, lambda: leases.held, tracker))
        # Timers are read through engine.store: the view keeps this worker's own.
        owned = cast(Store, OwnedPartitions(engine.store, self.owns))
        engine.store = owned
        dispatcher = OutboxDispatcher(
            owned,
            engine.outbox.handlers,
            self._publish_result,
            engine.clock,
            lease=settings.outbox_lease,
        )
        # Stopped by ``quiet``, not cancelled: a command under way finishes and
        # is recorded, instead of running again under another worker.
        quiet = asyncio.Event()
        rounds = (
            ("timers", engine.fire_due_timers, settings.timer_interval),
            ("outbox", dispatcher.run_once, settings.outbox_interval),
            ("purge", engine.purge_dead_letters, settings.purge_interval),
        )
        loops = [asyncio.create_task(every(quiet, *each), name=each[0]) for each in rounds]
        consumers: dict[int, asyncio.Task[None]] = {}
        self._draining.clear()
        try:
            await self._keep_leases(engine, js, leases, tracker, consumers, stop)
        except (LeaseLost, Rejoin) as why:
            # Said at once: stopping the engine below may take a while.
            log.warning("worker steps down", worker=leases.worker_id, reason=str(why))
            raise
        finally:
            quiet.set()
            await self._stop_membership(running, loops, consumers)

    async def _stop_membership(
        self,
        running: RunningEngine,
        loops: list[asyncio.Task[None]],
        consumers: dict[int, asyncio.Task[None]],
    ) -> None:
        """Stop the loops and feeds, then the engine, each within a bound: an
        engine wedged on a dead connection must not keep the worker from
        rejoining (`EngineWedged` ends the process for its supervisor)."""
        await finish(loops, STOP_TIMEOUT)
        self._draining.update(consumers)
        await finish(list(consumers.values()), self.settings.fetch_timeout * 4 + STOP_TIMEOUT)
        try:
            await asyncio.wait_for(running.stop(), STOP_TIMEOUT * 3)
        except TimeoutError:
            raise EngineWedged(f"the engine did not stop within {STOP_TIMEOUT * 3:.0f} s") from None

    async def _keep_leases(
        self,
        engine: Engine,
        js: JetStreamContext,
        leases: Leases,
        tracker: OffsetTracker,
        consumers: dict[int, asyncio.Task[None]],
        stop: asyncio.Event,
    ) -> None:
        """The round loop: renew, take, give back what was drained, start feeds."""
        ever: set[int] = set()
        draining: dict[int, asyncio.Task[None]] = {}
        while not stop.is_set():
            finished = [p for p, task in draining.items() if task.done()]
            for partition in finished:
                draining.pop(partition).result()
            await leases.release(finished)
            self._draining.difference_update(finished)
            plan = await leases.round(want=not draining)
            for task in consumers.values():
                if task.done():
                    task.result()  # a consumer failed (its commit refused?): step down
            if plan.lost:
                raise LeaseLost({p: "expired before it was renewed" for p in plan.lost})
            if again := set(plan.acquired) & ever:
                raise Rejoin(f"took back partitions {sorted(again)}: cached states may be stale")
            for partition in plan.release:
                if partition in consumers:
                    self._draining.add(partition)
                    draining[partition] = consumers.pop(partition)
            # Every held partition without a feed: taken this round, or held
            # over from a membership that stepped down.
            idle = [p for p in plan.held if p not in consumers and p not in draining]
            if idle:
                offsets = await leases.offsets(idle)
                for partition, after in offsets.items():
                    feed = PartitionFeed(
                        js,
                        stream=self.settings.stream,
                        prefix=self.settings.prefix,
                        partition=partition,
                        start_after=after,
                    )
                    consumers[partition] = asyncio.create_task(
                        consume(engine, feed, tracker, partition, after, self._pacing),
                        name=f"channelsync-partition-{partition}",
                    )
                ever.update(idle)
            await save_offsets(leases.conn, leases.worker_id, leases.held, tracker)
            tasks = [*consumers.values(), *draining.values()]
            await wait_any(stop, tasks, self.settings.round_interval)

    async def _publish_result(self, event: Mapping[str, Any]) -> None:
        """A command's result event, to its entity's partition through the bus:
        durable once JetStream acknowledged it, applied by that partition's owner."""
        assert self._publisher is not None, "the worker publishes only while running"
        event_id, entity = event.get("event_id"), event.get("entity")
        if not isinstance(event_id, str) or not event_id or not isinstance(entity, str):
            # The bus deduplicates and routes by these two: a handler's bug,
            # retried and then parked by the outbox with this reason.
            raise ValueError("a command's result event needs an event_id and an entity")
        await self._publisher.publish(event_id, entity, dumps(dict(event)).encode())


__all__ = [
    "EngineOnly",
    "EngineWedged",
    "OpenEngine",
    "Rejoin",
    "RunningEngine",
    "Worker",
    "WorkerSettings",
]
