"""The bus between machines: events on NATS JetStream, one subject per partition.

Receivers publish with `JetStreamPublisher` (``Nats-Msg-Id`` = the event id,
returning only once JetStream stored the message); a partition's owner reads
with `PartitionFeed` from the stream sequence stored with its state;
`partition_backlog` says how far behind each partition is. The stream itself
is made by `ensure_stream` (engine.cluster.jetstream_stream). docs/scaling.md,
"The bus", says what each part promises.
"""

from __future__ import annotations

from dataclasses import dataclass

import nats.js.errors
from nats.js import JetStreamContext

from engine.cluster.jetstream_backlog import Backlog, partition_backlog
from engine.cluster.jetstream_feed import FeedMessage, PartitionFeed
from engine.cluster.jetstream_stream import (
    DEFAULT_DUPLICATE_WINDOW,
    DEFAULT_PREFIX,
    DEFAULT_STREAM,
    MSG_ID_HEADER,
    UNREACHABLE_ERRORS,
    BusConnection,
    BusUnavailable,
    connect_bus,
    ensure_stream,
    log,
    subject_of,
    wrap_unreachable,
)
from engine.cluster.partitions import partition_of

# How long a publish waits for JetStream's acknowledgement before the caller
# is told the bus is unavailable (the platform then retries the webhook).
PUBLISH_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class PublishAck:
    """JetStream's answer to a publish: the stream sequence, and whether it was a duplicate.

    A duplicate (same ``Nats-Msg-Id`` inside the duplicate window) was not
    stored again; ``seq`` is then the sequence of the first copy.
    """

    seq: int
    duplicate: bool


class JetStreamPublisher:
    """Publishes events to the subject of their entity's partition."""

    def __init__(
        self,
        js: JetStreamContext,
        *,
        stream: str = DEFAULT_STREAM,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = PUBLISH_TIMEOUT,
    ) -> None:
        self._js = js
        self._stream = stream
        self._prefix = prefix
        self._timeout = timeout

    async def publish(self, event_id: str, entity: str, body: bytes) -> PublishAck:
        """Store ``body`` on the partition subject of ``entity``; returns once JetStream acked.

        Raises `BusUnavailable` when JetStream does not acknowledge within the
        timeout: the event may or may not be stored, and publishing it again
        (same ``event_id``) is always safe inside the duplicate window.
        """
        if not event_id:
            raise ValueError("an event published to JetStream needs an event id")
        subject = subject_of(self._prefix, partition_of(entity))
        try:
            ack = await self._js.publish(
                subject,
                body,
                timeout=self._timeout,
                # Expected-Stream: a subject bound to another stream by mistake
                # is refused rather than silently stored elsewhere.
                stream=self._stream,
                headers={MSG_ID_HEADER: event_id},
            )
        except UNREACHABLE_ERRORS as error:
            log.warning("bus_publish_failed", event_id=event_id, entity=entity, subject=subject)
            raise wrap_unreachable(error, f"publishing event {event_id}") from error
        except nats.js.errors.APIError as error:
            raise BusUnavailable(f"JetStream refused event {event_id}: {error}") from error
        return PublishAck(seq=ack.seq, duplicate=bool(ack.duplicate))


__all__ = [
    "DEFAULT_DUPLICATE_WINDOW",
    "DEFAULT_PREFIX",
    "DEFAULT_STREAM",
    "MSG_ID_HEADER",
    "PUBLISH_TIMEOUT",
    "Backlog",
    "BusConnection",
    "BusUnavailable",
    "FeedMessage",
    "JetStreamPublisher",
    "PartitionFeed",
    "PublishAck",
    "connect_bus",
    "ensure_stream",
    "partition_backlog",
    "subject_of",
]
