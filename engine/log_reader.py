"""The event log as replay reads it: each row parsed back into its event
under the installed charts, with the outcome recorded for it.

A log that cannot be read under these charts (a chart not installed, an event
that no longer validates) raises a `ReplayError` that says what to install or
why, rather than a validation traceback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from engine.chartset import ChartSet, VersionNotInstalled
from engine.events import Event, EventRejected
from engine.log_decode import parse_logged_row
from engine.store.protocol import Store


class ReplayError(Exception):
    """The log cannot be replayed under these charts (said as a sentence)."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as its sentence and attributes: a parallel replay's worker
        # process sends it to the parent (engine.replay_parallel), and the
        # subclasses' constructors take other arguments than the sentence.
        return (_rebuilt, (type(self), str(self), dict(self.__dict__)))


def _rebuilt(cls: type[ReplayError], message: str, attributes: dict[str, Any]) -> ReplayError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(attributes)
    return error


class ChartNotInstalled(ReplayError):
    """The log has events of a chart that no installed chart package provides."""

    def __init__(self, chart: str, entity_kind: str, seq: int, installed: Sequence[str]) -> None:
        super().__init__(
            f"the log has events of chart {chart!r} (entity kind {entity_kind!r}, first at"
            f" seq {seq}), which is not installed here (installed: "
            f"{', '.join(sorted(installed)) or 'none'}). Install the Python package that"
            " provides it (its 'channelsync.charts' entry point), then run this again;"
            " `replay --charts DIR` can add or replace chart files, but the event types,"
            " guards and actions they name still come from an installed package"
        )
        self.chart = chart
        self.entity_kind = entity_kind
        self.seq = seq


class ChartVersionNotInstalled(ReplayError):
    """The log has events applied by a version of a chart that is not installed."""

    def __init__(self, missing: VersionNotInstalled, seq: int) -> None:
        super().__init__(f"event seq {seq}: {missing}")
        self.chart = missing.chart
        self.version = missing.version
        self.seq = seq


class UnreadableEvent(ReplayError):
    """A logged event does not validate under the installed charts' event types."""

    def __init__(self, seq: int, event_type: str, entity: str, reason: str) -> None:
        super().__init__(
            f"event seq {seq} ({event_type} on {entity}) does not validate under the installed"
            f" charts: {reason}. The charts' package may be older or newer than the one that"
            " logged it"
        )
        self.seq = seq


@dataclass(slots=True)
class LoggedEvent:
    """One row of the event log: the event and the outcome recorded for it."""

    seq: int
    event: Event
    outcome: str
    from_state: str | None
    to_state: str | None
    reason: str | None
    chart: str | None = None  # the chart that applied it, as logged
    # The version of that chart that applied it (rows logged before versions
    # were recorded: 1).
    chart_version: int = 1

    @classmethod
    def from_row(cls, row: Sequence[Any], charts: ChartSet) -> LoggedEvent:
        """A row of the log (`engine.store.rows.EVENT_COLUMNS`), read under ``charts``."""
        return cls.of(row, decode_row(row, charts))

    @classmethod
    def of(cls, row: Sequence[Any], event: Event) -> LoggedEvent:
        """A row of the log and the event `decode_row` read from it."""
        seq, _id, _type, _source, _entity, chart, _occurred, _received, _payload = row[:9]
        outcome, from_state, to_state, reason, chart_version = row[9:]
        # Rows from before versions were recorded: version 1 applied them.
        version = 1 if chart_version is None else chart_version
        return cls(seq, event, outcome, from_state, to_state, reason, chart, version)


def decode_row(row: Sequence[Any], charts: ChartSet) -> Event:
    """The event a row of the log holds, validated under ``charts`` as
    `engine.log_decode.parse_logged_row` does; a `ReplayError` if it cannot be."""
    try:
        return parse_logged_row(
            charts.event_types, row[2], row[1], row[3], row[4], row[6], row[7], row[8]
        )
    except EventRejected as rejected:
        raise unreadable(row, charts, rejected) from None


def unreadable(row: Sequence[Any], charts: ChartSet, rejected: EventRejected) -> ReplayError:
    """Why a row the event types refused cannot be replayed under ``charts``."""
    seq, type_, entity, chart_name = row[0], row[2], row[4], row[5]
    kind = str(entity).partition(":")[0]
    if kind not in charts.by_kind:
        return ChartNotInstalled(chart_name, kind, seq, list(charts.by_name))
    return UnreadableEvent(seq, type_, entity, rejected.reason)


async def logged_events(
    store: Store, charts: ChartSet, since_seq: int = 0, entity: str | None = None
) -> AsyncIterator[LoggedEvent]:
    """The log of a database, in sequence order, streamed."""
    async for rows in store.iter_event_batches(since_seq, entity=entity):
        for row in rows:
            yield LoggedEvent.from_row(row, charts)
