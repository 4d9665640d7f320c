"""The JetStream stream that carries events between receivers and workers.

One stream (default ``CHANNELSYNC_EVENTS``) holds every event, on one subject
per partition: ``{prefix}.{partition}``. A receiver publishes an event with the
``Nats-Msg-Id`` header set to the event id; inside the stream's duplicate
window JetStream keeps only the first message with an id, so a webhook the
platform redelivers (or a receiver retries after a lost ack) is stored once.
What the stream does and why is in docs/scaling.md, "The bus".
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from engine.cluster.partitions import PARTITIONS
from engine.logs import get_logger

log = get_logger("channelsync.bus")

DEFAULT_STREAM = "CHANNELSYNC_EVENTS"
DEFAULT_PREFIX = "channelsync.events"
# How long JetStream remembers a Nats-Msg-Id: a platform's redelivery of a
# webhook arrives within seconds to minutes; two minutes is JetStream's default.
DEFAULT_DUPLICATE_WINDOW = 120.0
MSG_ID_HEADER = "Nats-Msg-Id"
# Errors of the nats client that mean "the server cannot be reached or did not
# answer", as opposed to a refusal the caller must look at.
UNREACHABLE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    asyncio.TimeoutError,
    nats.errors.TimeoutError,
    nats.errors.NoServersError,
    nats.errors.ConnectionClosedError,
    nats.errors.StaleConnectionError,
    nats.errors.NoRespondersError,
    nats.js.errors.NoStreamResponseError,
)


class BusUnavailable(RuntimeError):
    """NATS JetStream could not be reached, or did not acknowledge in time.

    Nothing was acknowledged: a receiver answers the platform with a retryable
    error, so the webhook comes again; a worker tries again later.
    """


@dataclass(frozen=True, slots=True)
class BusConnection:
    """An open NATS connection and its JetStream context."""

    nc: NATS
    js: JetStreamContext

    async def close(self) -> None:
        if not self.nc.is_closed:
            await self.nc.drain()


def subject_of(prefix: str, partition: int) -> str:
    """The subject that carries the events of ``partition``."""
    if not 0 <= partition < PARTITIONS:
        raise ValueError(f"partition must be in 0..{PARTITIONS - 1}, not {partition}")
    return f"{prefix}.{partition}"


async def connect_bus(url: str, *, connect_timeout: float = 2.0) -> BusConnection:
    """Connect to NATS at ``url``; `BusUnavailable` with the address when nothing answers.

    Once connected, the client reconnects on its own for as long as the process
    runs: a NATS restart makes publishes fail (and be retried by the platform)
    for its duration, not forever.
    """

    async def _closed_quietly(error: Exception) -> None:
        log.warning("bus_error", url=url, error=str(error) or type(error).__name__)

    try:
        nc = await nats.connect(
            url,
            connect_timeout=connect_timeout,
            # Two tries at start-up, so a wrong address is an error, not a hang...
            max_reconnect_attempts=1,
            reconnect_time_wait=0.5,
            error_cb=_closed_quietly,
        )
    except UNREACHABLE_ERRORS as error:
        raise BusUnavailable(f"cannot reach NATS at {url}: {_reason(error)}") from error
    # ...and, once connected, reconnect for as long as the process runs.
    nc.options["max_reconnect_attempts"] = -1
    return BusConnection(nc=nc, js=nc.jetstream())


async def ensure_stream(
    js: JetStreamContext,
    *,
    stream: str = DEFAULT_STREAM,
    prefix: str = DEFAULT_PREFIX,
    duplicate_window: float = DEFAULT_DUPLICATE_WINDOW,
    max_age: float | None = None,
) -> None:
    """Create the events stream, or bring an existing one's subjects and window in line.

    Safe to call from every receiver and worker at start-up, concurrently:
    creating an identical stream twice is not an error in JetStream. Messages
    are kept by limits, not removed on ack: a partition's new owner reads from
    the sequence stored with the state, which may be older than the last ack.
    ``max_age`` (seconds) bounds how long they are kept; ``None`` keeps them
    until removed by an operator.
    """
    config = StreamConfig(
        name=stream,
        subjects=[f"{prefix}.*"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        duplicate_window=duplicate_window,
        max_age=max_age,
    )
    try:
        try:
            info = await js.stream_info(stream)
        except nats.js.errors.NotFoundError:
            await js.add_stream(config)
            log.info("bus_stream_created", stream=stream, prefix=prefix)
            return
        current = info.config
        if (
            current.subjects != config.subjects
            or current.duplicate_window != duplicate_window
            or (current.max_age or None) != max_age
        ):
            await js.update_stream(config)
            log.info("bus_stream_updated", stream=stream, prefix=prefix)
    except UNREACHABLE_ERRORS as error:
        raise wrap_unreachable(error, f"setting up stream {stream}") from error


def _reason(error: BaseException) -> str:
    return str(error) or type(error).__name__


def wrap_unreachable(error: BaseException, doing: str) -> BusUnavailable:
    """`BusUnavailable` for ``error``, saying what was being done."""
    return BusUnavailable(f"{doing}: JetStream unreachable ({_reason(error)})")


def header_value(headers: dict[str, Any] | None, name: str) -> str | None:
    """A header of a received message (None when absent)."""
    if not headers:
        return None
    value = headers.get(name)
    return None if value is None else str(value)


__all__ = [
    "DEFAULT_DUPLICATE_WINDOW",
    "DEFAULT_PREFIX",
    "DEFAULT_STREAM",
    "MSG_ID_HEADER",
    "UNREACHABLE_ERRORS",
    "BusConnection",
    "BusUnavailable",
    "connect_bus",
    "ensure_stream",
    "header_value",
    "subject_of",
    "wrap_unreachable",
]
