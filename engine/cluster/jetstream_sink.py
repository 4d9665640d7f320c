"""A receiver's events go to JetStream instead of a local engine.

`JetStreamSink` is what a stateless receiver hands a verified webhook's events
to (it satisfies the receiver's ``EventSink``, as `engine.runtime.Engine`
does). Each event is parsed as the engine parses it, stamped with the time it
arrived, and published as its JSON (``Event.model_dump_json()``) to its
partition's subject with ``Nats-Msg-Id`` = its event id; `publish` returns
only once JetStream acknowledged, so the platform is answered 200 after that.
The partition's owner applies it (`Engine.publish_raw` on the body).

What cannot be used is kept as a dead letter in the shared store, as the
engine keeps it: a dead letter belongs to no partition, so no owner is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.admission import parse_stamped
from engine.chartset import ChartSet
from engine.clock import Clock
from engine.cluster.jetstream import JetStreamPublisher, PublishAck
from engine.events import Event, EventRejected
from engine.lifecycle import dead_letter_of, refused_input
from engine.logs import get_logger
from engine.store.protocol import Store
from engine.store.rows import Batch

log = get_logger("channelsync.receiver")


class JetStreamSink:
    """Publishes events to the bus; records dead letters in ``store``."""

    def __init__(
        self, publisher: JetStreamPublisher, charts: ChartSet, clock: Clock, store: Store
    ) -> None:
        self.publisher = publisher
        self.charts = charts
        self.clock = clock
        self.store = store

    async def publish(self, event: Event | Mapping[str, Any]) -> PublishAck | None:
        """Publish ``event`` once JetStream stores it; None if it became a dead letter."""
        try:
            typed = self._check(event)
        except EventRejected as rejected:
            raw, source = refused_input(event)
            await self._dead_letter(raw, source, rejected)
            return None
        body = typed.model_dump_json().encode()
        ack = await self.publisher.publish(typed.event_id, typed.entity, body)
        log.debug(
            "event published",
            event_id=typed.event_id,
            entity=typed.entity,
            seq=ack.seq,
            duplicate=ack.duplicate,
        )
        return ack

    async def record_dead_letter(
        self,
        raw: str | bytes,
        source: str,
        error: str,
        entity: str | None = None,
        *,
        size: int | None = None,
    ) -> None:
        """Keep input an adapter could not use, as `Engine.record_dead_letter` does."""
        await self._dead_letter(raw, source, EventRejected(error, entity), size)

    def _check(self, event: Event | Mapping[str, Any]) -> Event:
        """The event as the engine parses it, stamped with its arrival. Whether a
        chart takes it, and sealing its personal fields, are left to the
        partition's owner: its engine checks and seals before writing."""
        return parse_stamped(self.charts, event, self.clock.now())

    async def _dead_letter(
        self,
        raw: str | bytes | Mapping[str, Any],
        source: str,
        rejected: EventRejected,
        size: int | None = None,
    ) -> None:
        row = dead_letter_of(raw, source, rejected, self.clock.now(), size)
        await self.store.commit(Batch(dead_letters=[row]))
        log.info("dead letter kept", source=source, reason=rejected.reason[:200])


__all__ = ["JetStreamSink"]
