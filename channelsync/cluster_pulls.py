"""The scheduled pulls in a cluster: each shop's, by the owner of its partition.

A cluster worker (`channelsync.worker_role`) runs the two scheduled pulls
(PLAT-8) that `serve` runs, on the same intervals (``pull_interval``,
``shoplazza_pull_interval``), for the connected shops whose connection entity
(``shop:<store>``) lies in a partition it holds now. Every few seconds it
looks which of its shops are due (never pulled by it, or last pulled an
interval ago) and pulls those. When a partition moves, the new owner finds
the shop due at its next look and takes it up from the cursor the last pass
saved (the cursors are in the shared store); the old owner leaves it from its
next look. A pass the old owner had under way may finish beside the new
owner's first: harmless, since a pulled change carries the id its webhook
would carry, so the second copy is a duplicate (JetStream's duplicate window,
then the partition owner's event log).

A pulled event is not committed through the worker's engine: it mostly
belongs to another partition (an order, a listing), whose fence would refuse
it. It is published to its partition's subject as a receiver publishes a
webhook's (`JetStreamSink`: ``Nats-Msg-Id`` = the event id), and a pull moves
its cursor only once JetStream acknowledged every event of its pass; when the
bus refuses, the pass fails, the cursor stays and the next pass pulls the
same changes again. A pulled record refused for its id (SEC-5) is kept as a
dead letter written straight to the store: it names no entity, so it is in
no partition and the fence lets it through.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters.scheduled_pulls import (
    SHOPLAZZA,
    TIKTOK,
    Pass,
    build_pulls,
    connected_shops,
    pull_loop,
)
from channelsync.bootstrap import ChannelApp
from channelsync.platforms import HttpPlatforms
from channelsync.settings import ChannelSettings
from engine.bus import Receipt
from engine.cluster.jetstream import BusConnection, JetStreamPublisher, connect_bus
from engine.cluster.jetstream_sink import JetStreamSink
from engine.cluster.partitions import partition_of
from engine.logs import get_logger
from engine.runtime import Engine

log = get_logger("channelsync.cluster.pulls")

# Seconds between a worker's looks for due shops: at most this long after a
# partition moved, its new owner starts the shop's pulls.
LOOK_EVERY = 2.0


@dataclass(frozen=True)
class BusAddress:
    """Where the pulled events go: the worker's NATS server, stream and prefix."""

    url: str
    stream: str
    prefix: str


class BusPublisher:
    """A pull's ``publish_many`` onto JetStream, connecting on first use (a
    bus down then fails the pass, not the worker), and its dead letters."""

    def __init__(self, bus: BusAddress, engine: Engine) -> None:
        self.bus = bus
        self.engine = engine
        self.store = engine.store  # the raw store: dead letters are written past the engine
        self._connection: BusConnection | None = None
        self._sink: JetStreamSink | None = None
        self._lock = asyncio.Lock()

    async def sink(self) -> JetStreamSink:
        async with self._lock:
            if self._sink is None:
                self._connection = await connect_bus(self.bus.url)
                publisher = JetStreamPublisher(
                    self._connection.js, stream=self.bus.stream, prefix=self.bus.prefix
                )
                self._sink = JetStreamSink(
                    publisher, self.engine.charts, self.engine.clock, self.store
                )
            return self._sink

    async def publish_many(self, events: Sequence[dict[str, Any]]) -> list[Receipt]:
        """Each event on its partition's subject, in order; a receipt once
        JetStream acknowledged it (``duplicate`` when it already held the id)."""
        sink = await self.sink()
        receipts = []
        for event in events:
            ack = await sink.publish(event)
            if ack is None:  # unusable: the sink kept it as a dead letter
                outcome = "dead_letter"
            else:
                outcome = "duplicate" if ack.duplicate else "published"
            receipts.append(Receipt(event.get("event_id"), outcome, event.get("entity")))
        return receipts

    async def dead_letter(self, raw: bytes, source: str, error: str) -> None:
        await (await self.sink()).record_dead_letter(raw, source, error)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()


@dataclass
class PullingChannel:
    """A worker's channel with its scheduled pulls running (a `RunningEngine`).
    ``passes``: one pass of each platform's pull over the shops due now, as
    its loop runs it (the loops run only those whose interval is not 0)."""

    app: ChannelApp
    publisher: BusPublisher
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    passes: dict[str, Pass] = field(default_factory=dict)

    @property
    def engine(self) -> Engine:
        return self.app.engine

    async def stop(self) -> None:
        """Stop the pulls (a pass cut short saved no cursor), then the channel."""
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            await self.publisher.close()
        finally:
            await self.app.stop()


class ClusterPulls:
    """One worker's scheduled pulls, kept across its engine's restarts.

    ``owns`` says whether the worker holds a partition now. ``pulled`` counts,
    by shop, the passes this worker made over it (both platforms')."""

    def __init__(
        self,
        settings: ChannelSettings,
        bus: BusAddress,
        owns: Callable[[int], bool],
        *,
        look_every: float = LOOK_EVERY,
        worker: str | None = None,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.owns = owns
        self.look_every = look_every
        self.worker = worker
        self.pulled: Counter[str] = Counter()
        self._last: dict[tuple[str, str], float] = {}

    def intervals(self) -> dict[str, float]:
        return {
            TIKTOK: self.settings.pull_interval,
            SHOPLAZZA: self.settings.shoplazza_pull_interval,
        }

    def start(self, app: ChannelApp, platforms: HttpPlatforms) -> PullingChannel:
        """Run the pulls whose interval is not 0 beside ``app``, until the
        returned channel is stopped."""
        engine = app.engine
        publisher = BusPublisher(self.bus, engine)
        chosen: dict[str, list[str]] = {}

        async def shops(platform: str) -> list[str]:
            return chosen.get(platform, [])

        tiktok, shoplazza = platforms.clients()
        puller, reconciler = build_pulls(
            tiktok,
            shoplazza,
            engine.store,
            engine.clock,
            publisher.publish_many,
            shops,
            publisher.dead_letter,
        )
        running = PullingChannel(app, publisher)
        for platform, pass_once in ((TIKTOK, puller.pull_once), (SHOPLAZZA, reconciler.pull_once)):
            look = self._look(engine, platform, pass_once, chosen)
            running.passes[platform] = look
            if self.intervals()[platform] > 0:
                interval = self.intervals()[platform]
                loop = pull_loop(
                    platform, interval, look, every=self.look_every, worker=self.worker
                )
                running.tasks.append(asyncio.create_task(loop, name=f"pull-{platform}"))
        return running

    async def due(self, engine: Engine, platform: str) -> list[str]:
        """The connected shops of the partitions held now whose ``platform``
        pass is due (never pulled since this worker took the partition, or an
        interval ago), each marked as pulled from this moment."""
        now = engine.clock.now()
        interval = self.intervals()[platform]
        found = []
        for shop in await connected_shops(engine.store):
            key = (platform, shop)
            if not self.owns(partition_of(shop)):
                # Pulled elsewhere meanwhile: taken back, it is due at once.
                if self._last.pop(key, None) is not None:
                    log.info("shop pulls left", entity=shop, platform=platform, worker=self.worker)
            elif key not in self._last or now - self._last[key] >= interval:
                if key not in self._last:
                    log.info(
                        "shop pulls taken up", entity=shop, platform=platform, worker=self.worker
                    )
                self._last[key] = now
                found.append(shop)
        self.pulled.update(found)
        return found

    def _look(
        self,
        engine: Engine,
        platform: str,
        pass_once: Callable[[], Awaitable[int]],
        chosen: dict[str, list[str]],
    ) -> Pass:
        """A pass over the due shops, if any is due (None, and no log line, if not)."""

        async def look() -> int | None:
            chosen[platform] = await self.due(engine, platform)
            if not chosen[platform]:
                return None
            return await pass_once()

        return look


__all__ = ["LOOK_EVERY", "BusAddress", "BusPublisher", "ClusterPulls", "PullingChannel"]
