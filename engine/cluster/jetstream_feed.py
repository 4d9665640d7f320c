"""Reading one partition's events from JetStream, in stream order, from a stored offset.

A worker that owns a partition reads its subject through a `PartitionFeed`
that starts just after the stream sequence stored with the partition's state
(``start_after``). The worker commits state and the last consumed sequence in
one transaction and acks after; so after a crash or a move of the partition,
the next owner's feed starts where the last commit ended: nothing is applied
twice, nothing is skipped (docs/scaling.md, "The bus").

The JetStream consumer behind a feed is ephemeral: the stored offset, not the
consumer, is the record of progress, so a lost consumer is simply made again.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from engine.cluster.jetstream_stream import (
    MSG_ID_HEADER,
    UNREACHABLE_ERRORS,
    header_value,
    log,
    subject_of,
    wrap_unreachable,
)

# A worker acks after its commit; the server redelivers what is not acked
# within this time. Redeliveries are dropped by the feed (they are behind its
# position), so this only needs to exceed a slow commit.
ACK_WAIT = 60.0
# An ephemeral consumer nobody pulls from for this long is removed by the
# server: the consumers of a worker that died do not pile up.
INACTIVE_THRESHOLD = 120.0
MAX_ACK_PENDING = 20_000
# Closing a feed whose consumer or connection is already gone is not an error.
_CLOSE_ERRORS: tuple[type[Exception], ...] = (
    *UNREACHABLE_ERRORS,
    nats.js.errors.NotFoundError,
    ValueError,
)


@dataclass(frozen=True, slots=True)
class FeedMessage:
    """One event read from a partition's subject."""

    seq: int  # the stream sequence: what the worker stores as its offset
    body: bytes
    published_at: float  # when JetStream stored it (Unix seconds)
    event_id: str | None = None  # the Nats-Msg-Id it was published with
    msg: Msg | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Backlog:
    """What a partition still has to consume: a count and the oldest one's age (seconds)."""

    pending: int
    oldest_age: float | None


def consumer_config(subject: str, start_after: int, *, name: str | None = None) -> ConsumerConfig:
    """An ephemeral pull consumer of ``subject`` starting at sequence ``start_after + 1``."""
    if start_after < 0:
        raise ValueError(f"start_after must be >= 0, not {start_after}")
    return ConsumerConfig(
        name=name,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=start_after + 1,
        ack_policy=AckPolicy.ALL,
        ack_wait=ACK_WAIT,
        max_ack_pending=MAX_ACK_PENDING,
        inactive_threshold=INACTIVE_THRESHOLD,
        filter_subject=subject,
    )


class PartitionFeed:
    """The events of one partition after ``start_after``, strictly in stream order."""

    def __init__(
        self,
        js: JetStreamContext,
        *,
        stream: str,
        prefix: str,
        partition: int,
        start_after: int,
    ) -> None:
        self._js = js
        self._stream = stream
        self._subject = subject_of(prefix, partition)
        self._partition = partition
        consumer_config(self._subject, start_after)  # reject a bad offset now
        self._position = start_after  # the last sequence handed out
        self._sub: JetStreamContext.PullSubscription | None = None

    @property
    def position(self) -> int:
        """The stream sequence of the last message `fetch` returned (or ``start_after``)."""
        return self._position

    async def fetch(self, max_messages: int, timeout: float) -> list[FeedMessage]:
        """Up to ``max_messages`` next messages; ``[]`` if none came within ``timeout`` s.

        While the client reconnects to NATS this returns ``[]`` after the
        timeout; once the connection is closed for good it raises
        `BusUnavailable`.
        """
        try:
            sub = await self._subscription()
            try:
                msgs = await sub.fetch(max_messages, timeout=timeout)
            except nats.js.errors.NotFoundError:
                # The server dropped the consumer (inactive, or restarted
                # without it): make it again from where this feed stands.
                await self._drop_subscription()
                msgs = await (await self._subscription()).fetch(max_messages, timeout=timeout)
        except (TimeoutError, nats.errors.TimeoutError):
            return []
        except UNREACHABLE_ERRORS as error:
            raise wrap_unreachable(error, f"reading partition {self._partition}") from error
        return self._in_order(msgs)

    def _in_order(self, msgs: Sequence[Msg]) -> list[FeedMessage]:
        out: list[FeedMessage] = []
        for msg in msgs:
            meta = msg.metadata
            seq = meta.sequence.stream
            if seq <= self._position:
                continue  # a redelivery of something already handed out
            self._position = seq
            out.append(
                FeedMessage(
                    seq=seq,
                    body=msg.data,
                    published_at=meta.timestamp.timestamp(),
                    event_id=header_value(msg.headers, MSG_ID_HEADER),
                    msg=msg,
                )
            )
        return out

    async def ack(self, messages: Sequence[FeedMessage]) -> None:
        """Acknowledge ``messages`` (after their commit); acks every earlier one too."""
        last = max((m for m in messages if m.msg is not None), key=lambda m: m.seq, default=None)
        if last is None or last.msg is None:
            return
        try:
            await last.msg.ack()
        except UNREACHABLE_ERRORS as error:
            raise wrap_unreachable(error, f"acking partition {self._partition}") from error

    async def close(self) -> None:
        """Stop reading and remove the consumer (ignored if NATS is gone)."""
        await self._drop_subscription()

    async def _subscription(self) -> JetStreamContext.PullSubscription:
        if self._sub is None:
            self._sub = await self._js.pull_subscribe(
                self._subject,
                stream=self._stream,
                config=consumer_config(self._subject, self._position),
            )
            log.debug(
                "bus_feed_opened",
                stream=self._stream,
                partition=self._partition,
                start_after=self._position,
            )
        return self._sub

    async def _drop_subscription(self) -> None:
        sub, self._sub = self._sub, None
        if sub is None:
            return
        try:
            name = (await sub.consumer_info()).name
            await sub.unsubscribe()
            await self._js.delete_consumer(self._stream, name)
        except _CLOSE_ERRORS as error:
            log.debug("bus_feed_close_skipped", partition=self._partition, error=str(error))


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


__all__ = [
    "ACK_WAIT",
    "Backlog",
    "FeedMessage",
    "PartitionFeed",
    "consumer_config",
    "partition_backlog",
]
