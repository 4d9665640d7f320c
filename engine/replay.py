"""Replay: rebuild every entity from the event log with the live step (ENG-5).

Replay streams the log in sequence order through the same pure `step` the
live engine uses, with no outbox, no timers and no network. `check` also
compares each recomputed outcome with the recorded one and the rebuilt
entities with the stored ones, and reports the first event where they differ.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.chartset import ChartSet
from engine.events import Event
from engine.step import EntityState, Outcome, StepResult, new_entity, step
from engine.store.sqlite import SQLiteStore, loads


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One row of the event log: the event and the outcome recorded for it."""

    seq: int
    event: Event
    outcome: str
    from_state: str | None
    to_state: str | None
    reason: str | None

    @classmethod
    def from_row(cls, row: Sequence[Any], charts: ChartSet) -> LoggedEvent:
        (
            seq,
            event_id,
            type_,
            source,
            entity,
            _chart,
            occurred_at,
            received_at,
            payload,
            outcome,
            from_state,
            to_state,
            reason,
        ) = row
        event = charts.event_types.parse(
            {
                "event_id": event_id,
                "type": type_,
                "source": source,
                "entity": entity,
                "occurred_at": occurred_at,
                "received_at": received_at,
                "payload": loads(payload),
            }
        )
        return cls(seq, event, outcome, from_state, to_state, reason)


@dataclass(frozen=True, slots=True)
class Divergence:
    """The first place where a replay disagrees with what was recorded."""

    seq: int | None
    event_id: str | None
    entity: str
    state_before: str | None
    recorded: dict[str, Any]
    recomputed: dict[str, Any]

    def describe(self) -> str:
        where = f"event seq {self.seq} ({self.event_id})" if self.seq else "stored entity"
        return (
            f"{where} on {self.entity}, state before {self.state_before}: "
            f"recorded {self.recorded}, recomputed {self.recomputed}"
        )


@dataclass(slots=True)
class ReplayResult:
    entities: dict[str, EntityState] = field(default_factory=dict)
    events: int = 0
    divergence: Divergence | None = None


def _outcome_of(result: StepResult) -> dict[str, Any]:
    return {
        "outcome": result.outcome.value,
        "from_state": result.from_state,
        "to_state": result.to_state,
        "reason": result.reason,
    }


async def logged_events(
    store: SQLiteStore, charts: ChartSet, since_seq: int = 0
) -> AsyncIterator[LoggedEvent]:
    async for row in store.iter_events(since_seq):
        yield LoggedEvent.from_row(row, charts)


async def replay(
    store: SQLiteStore,
    charts: ChartSet,
    *,
    entity: str | None = None,
    until_seq: int | None = None,
    compare: bool = False,
) -> ReplayResult:
    """Rebuild entities from the log; with ``compare``, stop at the first
    event whose recomputed outcome differs from the recorded one."""
    result = ReplayResult()
    states = result.entities
    settings = charts.settings
    async for logged in logged_events(store, charts):
        if until_seq is not None and logged.seq > until_seq:
            break
        event = logged.event
        if entity is not None and event.entity != entity:
            continue
        result.events += 1
        chart = charts.by_kind.get(event.entity_kind)
        if chart is None:
            raise LookupError(
                f"the log names entity kind {event.entity_kind!r}, which no chart serves"
            )
        before = states.get(event.entity) or new_entity(chart, event.entity)
        outcome = step(chart, before, event, settings)
        if compare:
            recorded = {
                "outcome": logged.outcome,
                "from_state": logged.from_state,
                "to_state": logged.to_state,
                "reason": logged.reason,
            }
            recomputed = _outcome_of(outcome)
            if recorded != recomputed:
                result.divergence = Divergence(
                    logged.seq, event.event_id, event.entity, before.state, recorded, recomputed
                )
                return result
        if outcome.outcome is Outcome.TRANSITIONED:
            states[event.entity] = outcome.entity
    return result


async def check(store: SQLiteStore, charts: ChartSet) -> ReplayResult:
    """Replay everything and compare outcomes, then stored entities (ENG-5)."""
    result = await replay(store, charts, compare=True)
    if result.divergence is not None:
        return result
    stored = {e.key: e for e in await store.entities()}
    for key in sorted(set(stored) | set(result.entities)):
        mine, theirs = result.entities.get(key), stored.get(key)
        mine_dict = mine.as_dict() if mine else None
        theirs_dict = theirs.as_dict() if theirs else None
        if mine_dict != theirs_dict:
            result.divergence = Divergence(
                None, None, key, None, {"stored": theirs_dict}, {"replayed": mine_dict}
            )
            return result
    return result
