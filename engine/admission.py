"""What the engine admits: each input validated once, straight into its
envelope, checked against the charts, stamped and sealed.

`Engine.submit`, `publish`, `publish_many` and `publish_raw` all admit through
here before anything is queued; what is refused raises `EventRejected` and
becomes a dead letter (ENG-3). An input that does not say when it was received
is stamped with the clock while it is validated (the envelope's ``received_at``
validator reads the time from the validation's context): a frozen envelope
copied afterwards to stamp it cost as much again as validating it
(docs/performance.md, "Issue 18: the wire path").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.chartset import ChartSet
from engine.clock import Clock
from engine.events import RECEIVED_AT, Event, EventRejected
from engine.vault import Vault


def parse_stamped(charts: ChartSet, event: Event | Mapping[str, Any], now: float) -> Event:
    """``event`` validated into its envelope, stamped ``now`` if it says
    nothing of when it was received (a mapping while it is validated; an
    Event built without one, which is taken as it is, by a copy)."""
    typed = charts.event_types.parse(event, {RECEIVED_AT: now})
    if typed.received_at is None:
        typed = typed.model_copy(update={"received_at": now})
    return typed


class Admission:
    """Validates, checks, stamps and seals the events of one engine."""

    __slots__ = ("_charts", "_clock", "_vault")

    def __init__(self, charts: ChartSet, vault: Vault, clock: Clock) -> None:
        self._charts = charts
        self._vault = vault
        self._clock = clock

    def accept(self, event: Event | Mapping[str, Any]) -> Event:
        """A mapping (or an Event) as the typed, sealed event to queue."""
        now = self._clock.now()
        return self._admit(parse_stamped(self._charts, event, now), now)

    def accept_json(self, raw: str | bytes) -> Event:
        """A JSON document as the typed, sealed event to queue: one validation."""
        now = self._clock.now()
        return self._admit(self._charts.event_types.parse_json(raw, received_at=now), now)

    def _admit(self, typed: Event, now: float) -> Event:
        """``typed`` if a chart serves its entity and accepts its type, sealed."""
        chart = self._charts.by_kind.get(typed.entity.partition(":")[0])
        if chart is None:
            raise EventRejected(f"no chart serves entity kind {typed.entity_kind!r}", typed.entity)
        if typed.type not in chart.accepted_events:
            raise EventRejected(
                f"chart {chart.name} does not accept events of type {typed.type!r}", typed.entity
            )
        # Sealed before anything is written (SEC-3): the log never holds them in clear.
        return self._vault.seal_event(typed, now)
