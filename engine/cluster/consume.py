"""One partition's feed into the engine, in stream order (`consume`).

The worker (`engine.cluster.worker`) runs one `consume` a partition it holds.
Each fetch's events are submitted to the engine in stream order (the bus
keeps each entity's order from there), the offset tracker told of each
message before it can commit, and the fetch acknowledged to JetStream only
once every one of its events is committed. A message that is not an event
becomes a dead letter (source ``bus``), committed like any other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.cluster.fence import OffsetTracker
from engine.cluster.jetstream import FeedMessage, PartitionFeed
from engine.runtime import Engine
from engine.store.rows import loads

# The source of a dead letter made of a bus message that is not an event.
BUS_SOURCE = "bus"


@dataclass(frozen=True)
class Pacing:
    """How a feed is read: messages a fetch hands over at most, how long a
    fetch waits for the first, and whether the partition is being let go."""

    batch: int
    timeout: float
    draining: Callable[[int], bool]


async def consume(
    engine: Engine,
    feed: PartitionFeed,
    tracker: OffsetTracker,
    partition: int,
    after: int,
    pacing: Pacing,
) -> None:
    """Apply the partition's messages after ``after`` in order, acking each
    fetch once all of its events are committed, until the partition drains."""
    tracker.start(partition, after)
    try:
        while not pacing.draining(partition):
            messages = await feed.fetch(pacing.batch, pacing.timeout)
            if messages:
                await apply_messages(engine, tracker, partition, messages)
                await feed.ack(messages)
    finally:
        tracker.stop(partition)
        await feed.close()


async def apply_messages(
    engine: Engine, tracker: OffsetTracker, partition: int, messages: list[FeedMessage]
) -> None:
    """Submit ``messages``' events and wait for their commits; the first
    failure (a `LeaseLost` among them) is raised once all have resolved."""
    futures: list[asyncio.Future[Any]] = []
    for message in messages:
        data = event_of(message.body)
        if data is None:
            tracker.handed(partition, message.seq, None)
            dead = engine.record_dead_letter(
                message.body, BUS_SOURCE, "bus message is not a JSON object"
            )
            futures.append(asyncio.ensure_future(dead))
            continue
        event_id = data.get("event_id")
        # Handed before it is submitted: its commit may run at any await.
        tracker.handed(partition, message.seq, event_id if isinstance(event_id, str) else None)
        futures.append(await engine.submit(data))
    results = await asyncio.gather(*futures, return_exceptions=True)
    failure: BaseException | None = None
    for message, result in zip(messages, results, strict=True):
        if isinstance(result, BaseException):
            failure = failure or result
        else:
            tracker.done(partition, message.seq)
    if failure is not None:
        raise failure


def event_of(body: bytes) -> dict[str, Any] | None:
    """The message's event as a mapping, or None when it is not one."""
    try:
        data = loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


__all__ = ["BUS_SOURCE", "Pacing", "apply_messages", "consume", "event_of"]
