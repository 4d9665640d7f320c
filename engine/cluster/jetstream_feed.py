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
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
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
# Messages JetStream pushes to a feed beyond its last ack: enough to keep a
# worker's commits full (it takes a few hundred a fetch), small enough that 256
# partitions' worth waiting in a worker stays a few tens of megabytes.
MAX_ACK_PENDING = 1024
# Seconds of idleness after which a feed asks whether its consumer still exists.
IDLE_CHECK = 30.0
# Seconds without a delivery, everything acked and the server having said more
# was waiting, after which the feed takes it that the client dropped deliveries.
# Well above how long a loaded server takes to push again after an ack: a
# restart costs four requests, and needless ones feed on each other under load.
STALL_AFTER = 5.0
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
    """The events of one partition after ``start_after``, strictly in stream order.

    JetStream pushes the partition's messages to this feed as they are stored
    (a push consumer: an idle partition costs nothing, where polling 256 of
    them would cost every worker a steady stream of requests); `fetch` hands
    out what has arrived. The server pushes at most `MAX_ACK_PENDING`
    messages beyond the last ack, so what waits here stays bounded. Every
    delivery carries the consumer's own count of deliveries; a gap in it means
    the client dropped one (a slow consumer), and the feed then makes its
    consumer again from its position, so a dropped message is delivered again
    rather than skipped.
    """

    def __init__(
        self,
        js: JetStreamContext,
        *,
        stream: str,
        prefix: str,
        partition: int,
        start_after: int,
        client_buffer: int = 4 * MAX_ACK_PENDING,
        idle_check: float = IDLE_CHECK,
        stall_after: float = STALL_AFTER,
    ) -> None:
        self._js = js
        self._stream = stream
        self._subject = subject_of(prefix, partition)
        self._partition = partition
        consumer_config(self._subject, start_after)  # reject a bad offset now
        self._position = start_after  # the last sequence handed out
        self._client_buffer = client_buffer
        self._idle_check = idle_check
        self._stall_after = stall_after
        self._checked = self._progressed = time.monotonic()
        self._generation = 0  # which subscription's deliveries are wanted
        self._sub: JetStreamContext.PushSubscription | None = None
        self._arrived: deque[Msg] = deque()
        self._signal = asyncio.Event()
        self._delivered = 0  # the consumer's delivery count last seen
        self._server_pending = 0  # what the server said was left after the last delivery
        self._acked = start_after  # the highest sequence acked
        self.restarts = 0  # consumers made again after a gap or a loss

    @property
    def position(self) -> int:
        """The stream sequence of the last message `fetch` returned (or ``start_after``)."""
        return self._position

    async def fetch(self, max_messages: int, timeout: float) -> list[FeedMessage]:
        """Up to ``max_messages`` next messages; ``[]`` if none came within ``timeout`` s.

        While the client reconnects to NATS, or JetStream is too slow to make
        the consumer, this returns ``[]`` after the timeout; a connection
        closed for good raises `BusUnavailable`.
        """
        try:
            await self._subscription()
        except nats.errors.ConnectionClosedError as error:
            raise wrap_unreachable(error, f"reading partition {self._partition}") from error
        except UNREACHABLE_ERRORS as error:
            # JetStream did not answer in time (a loaded or restarting server):
            # as if nothing came; the next fetch asks again. Failing here would
            # make the worker start over, and ask all its partitions' again.
            log.warning(
                "bus_feed_subscribe_failed",
                partition=self._partition,
                error_type=type(error).__name__,
            )
            await asyncio.sleep(timeout)
            return []
        if not self._arrived:
            self._signal.clear()
            try:
                await asyncio.wait_for(self._signal.wait(), timeout)
            except TimeoutError:
                await self._check_consumer()
                return []
        taken = [self._arrived.popleft() for _ in range(min(max_messages, len(self._arrived)))]
        return await self._in_order(taken)

    async def _check_consumer(self) -> None:
        """After a fetch found nothing. If the server had said more was waiting
        and everything handed out is acked, it would have pushed: the client
        dropped what it pushed, so start again from the position. And now and
        then: is the consumer still there? One the server lost (a restart
        without it, an operator) would never push again."""
        if self._sub is None:
            return
        stalled = time.monotonic() - self._progressed > self._stall_after
        if stalled and self._server_pending > 0 and self._acked >= self._position:
            log.warning("bus_feed_stalled", partition=self._partition, position=self._position)
            await self._drop_subscription()
            self.restarts += 1
            return
        if time.monotonic() - self._checked < self._idle_check:
            return
        self._checked = time.monotonic()
        try:
            await self._sub.consumer_info()
        except nats.js.errors.NotFoundError:
            log.warning(
                "bus_feed_consumer_lost", partition=self._partition, position=self._position
            )
            await self._drop_subscription()
            self.restarts += 1
        except UNREACHABLE_ERRORS:
            pass  # the client is reconnecting: the next idle check asks again

    def _receiver(self, generation: int) -> Callable[[Msg], Awaitable[None]]:
        """The callback of one subscription: once it is dropped, what it still
        delivers (already on its way) is ignored, never mixed with the next one's."""

        async def receive(msg: Msg) -> None:
            if generation == self._generation:
                self._arrived.append(msg)
                self._progressed = time.monotonic()
                self._signal.set()

        return receive

    async def _in_order(self, msgs: Sequence[Msg]) -> list[FeedMessage]:
        out: list[FeedMessage] = []
        for msg in msgs:
            meta = msg.metadata
            if meta.sequence.consumer != self._delivered + 1:
                # A delivery never reached this feed: start again after the
                # last message handed out (what follows here is dropped too).
                log.warning(
                    "bus_feed_gap",
                    partition=self._partition,
                    position=self._position,
                    expected=self._delivered + 1,
                    got=meta.sequence.consumer,
                )
                await self._drop_subscription()
                self.restarts += 1
                break
            self._delivered += 1
            self._server_pending = meta.num_pending
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
        self._acked = max(self._acked, last.seq)
        self._progressed = time.monotonic()

    async def close(self) -> None:
        """Stop reading and remove the consumer (ignored if NATS is gone)."""
        await self._drop_subscription()

    async def _subscription(self) -> JetStreamContext.PushSubscription:
        if self._sub is None:
            self._sub = await self._js.subscribe(
                self._subject,
                stream=self._stream,
                config=consumer_config(self._subject, self._position),
                cb=self._receiver(self._generation),
                manual_ack=True,
                pending_msgs_limit=self._client_buffer,
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
        self._generation += 1
        self._arrived.clear()
        self._delivered = 0
        self._server_pending = 0
        if sub is None:
            return
        name = None
        try:
            name = (await sub.consumer_info()).name
        except _CLOSE_ERRORS as error:
            log.debug("bus_feed_consumer_gone", partition=self._partition, error=str(error))
        try:
            await sub.unsubscribe()
            if name is not None:
                await self._js.delete_consumer(self._stream, name)
        except _CLOSE_ERRORS as error:
            log.debug("bus_feed_close_skipped", partition=self._partition, error=str(error))


__all__ = [
    "ACK_WAIT",
    "FeedMessage",
    "PartitionFeed",
    "consumer_config",
]
