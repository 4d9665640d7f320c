"""What a store keeps of the log: the rows a batch appends and what reads return.

Plain data, shared by every `engine.store.protocol.Store` implementation and
by the engine that fills them; nothing here knows how rows are stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pydantic_core import from_json, to_json

from engine.step import EntityState

# The event log's columns, in the order rows are written, read and exported.
EVENT_COLUMNS = (
    "seq",
    "event_id",
    "type",
    "source",
    "entity",
    "chart",
    "occurred_at",
    "received_at",
    "payload",
    "outcome",
    "from_state",
    "to_state",
    "reason",
    # The version of the chart that applied the event (ENG-9); None in rows
    # logged before versions were recorded, which version 1 applied.
    "chart_version",
)

# The entities' columns, in the order `entity_of` reads them.
ENTITY_COLUMNS = "key, chart, state, data, version, chart_version, history"

# The tables a store counts (`Store.count`).
COUNTED = (
    "events",
    "entities",
    "outbox",
    "outbox_actions",
    "timers",
    "dead_letters",
    "duplicates",
)


def dumps(value: Any) -> str:
    return to_json(value).decode()


def loads(text: str | bytes) -> Any:
    return from_json(text)


@dataclass(slots=True)
class EventRow:
    """One event as it will be appended to the log, with its outcome."""

    event_id: str
    type: str
    source: str
    entity: str
    chart: str
    occurred_at: float | None
    received_at: float
    payload: str
    outcome: str
    from_state: str | None
    to_state: str | None
    reason: str | None
    entity_after: EntityState | None = None
    commands: list[Any] = field(default_factory=list)
    timers: list[Any] = field(default_factory=list)
    seq: int = 0
    # Whether the step may have changed the entity's state or chart (columns of
    # an index); False lets the entity's row be updated without touching it.
    moved: bool = True
    # The entity's data and the commands' payloads as JSON, taken by the step
    # (`step_in_place`): ``entity_after.data`` may since have moved on
    # with later steps, so these, not the dicts, are what is written.
    data_json: str | None = None
    command_json: list[str] | None = None
    # The version of the chart that applied it (an upgrade: the version it moved to).
    chart_version: int = 1


@dataclass(slots=True)
class DuplicateRow:
    event_id: str
    entity: str
    received_at: float


@dataclass(slots=True)
class DeadLetterRow:
    """Input that could not be used, kept once per (source, digest, reason).

    ``received_at`` is when it was first seen, ``last_seen`` the latest time,
    ``count`` how many times it came; ``raw`` is only a prefix of the input
    (``size`` bytes in all) and ``digest`` the sha256 of what was received."""

    received_at: float
    source: str
    entity: str | None
    raw: str
    error: str
    id: int = 0
    digest: str | None = None
    size: int = 0
    count: int = 1
    last_seen: float | None = None
    # An operator's discard (`Store.discard_dead_letter`): when, who, why.
    discarded_at: float | None = None
    discarded_by: str | None = None
    discard_reason: str | None = None

    @property
    def open(self) -> bool:
        """Not discarded, or seen again since it was: new input is never hidden."""
        if self.discarded_at is None:
            return True
        seen = self.received_at if self.last_seen is None else self.last_seen
        return seen > self.discarded_at


class LetterDiscard(NamedTuple):
    """What `Store.discard_dead_letter` came to: ``discarded`` (``letter`` as it
    is now), ``refused`` (it was discarded already: ``letter`` says by whom)
    or ``missing`` (no such letter; ``letter`` is None)."""

    outcome: str
    letter: DeadLetterRow | None


@dataclass(slots=True)
class Batch:
    events: list[EventRow] = field(default_factory=list)
    duplicates: list[DuplicateRow] = field(default_factory=list)
    dead_letters: list[DeadLetterRow] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.events) + len(self.duplicates) + len(self.dead_letters)


class TimerRow(NamedTuple):
    """An armed timer: it fires ``event_type`` (with id ``event_id``) at ``due_at``."""

    entity: str
    name: str
    due_at: float
    event_type: str
    event_id: str


# One logged event: the values of `EVENT_COLUMNS`, in that order.
LogRow = tuple[Any, ...]


def logged_chart_version(value: int | None) -> int:
    """The chart version a logged row was applied with: rows from before
    versions were recorded carry none, and version 1 applied them."""
    return 1 if value is None else int(value)


def history_json(history: dict[str, list[str]] | None) -> str | None:
    """An entity's history as stored: JSON, or NULL when there is none."""
    return dumps(history) if history else None


def entity_of(row: tuple[Any, ...]) -> EntityState:
    """An entity from its row, read as `ENTITY_COLUMNS` lists them."""
    key, chart, state, data, version, chart_version, history = row
    return EntityState(
        key,
        chart,
        state,
        loads(data),
        version,
        chart_version,
        loads(history) if history else None,
    )


__all__ = [
    "COUNTED",
    "ENTITY_COLUMNS",
    "EVENT_COLUMNS",
    "Batch",
    "DeadLetterRow",
    "DuplicateRow",
    "EventRow",
    "LetterDiscard",
    "LogRow",
    "TimerRow",
    "dumps",
    "entity_of",
    "history_json",
    "loads",
    "logged_chart_version",
]
