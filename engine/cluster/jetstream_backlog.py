"""How far behind each partition is: what `channelsync workers` shows.

For a partition and the stream sequence stored with it, the backlog is the
number of its messages after that sequence and the age of the oldest of them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import nats.js.errors
from nats.js import JetStreamContext

from engine.cluster.jetstream_feed import consumer_config
from engine.cluster.jetstream_stream import UNREACHABLE_ERRORS, subject_of, wrap_unreachable


@dataclass(frozen=True, slots=True)
class Backlog:
    """What a partition still has to consume: a count and the oldest one's age (seconds)."""

    pending: int
    oldest_age: float | None


async def partition_backlog(
    js: JetStreamContext,
    *,
    stream: str,
    prefix: str,
    offsets: Mapping[int, int],
) -> dict[int, Backlog]:
    """For each partition in ``offsets`` (partition -> stored sequence), what is still unread.

    Partitions whose subject has nothing after their offset cost nothing; the
    others cost two JetStream requests (a consumer's pending count, the first
    pending message's time).
    """
    try:
        info = await js.stream_info(stream, subjects_filter=f"{prefix}.*")
    except UNREACHABLE_ERRORS as error:
        raise wrap_unreachable(error, f"reading the backlog of {stream}") from error
    counts = info.state.subjects or {}
    last_seq = info.state.last_seq
    result: dict[int, Backlog] = {}
    lagging: list[int] = []
    for partition, offset in offsets.items():
        if counts.get(subject_of(prefix, partition), 0) == 0 or offset >= last_seq:
            result[partition] = Backlog(0, None)
        else:
            lagging.append(partition)
    gate = asyncio.Semaphore(16)

    async def one(partition: int) -> None:
        async with gate:
            subject = subject_of(prefix, partition)
            result[partition] = await _lag(js, stream, subject, offsets[partition])

    try:
        await asyncio.gather(*(one(p) for p in lagging))
    except UNREACHABLE_ERRORS as error:
        raise wrap_unreachable(error, f"reading the backlog of {stream}") from error
    return dict(sorted(result.items()))


async def _lag(js: JetStreamContext, stream: str, subject: str, offset: int) -> Backlog:
    try:
        first = await js.get_msg(stream, seq=offset + 1, subject=subject, next=True)
    except nats.js.errors.NotFoundError:
        return Backlog(0, None)
    consumer = await js.add_consumer(
        stream, consumer_config(subject, offset, name=f"backlog_{uuid.uuid4().hex[:12]}")
    )
    try:
        pending = consumer.num_pending or 0
    finally:
        await js.delete_consumer(stream, consumer.name)
    age = None if first.time is None else max(0.0, time.time() - first.time.timestamp())
    return Backlog(pending=pending, oldest_age=age)


__all__ = ["Backlog", "partition_backlog"]
