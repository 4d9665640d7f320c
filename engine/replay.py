"""Replay: rebuild every entity from the event log with the live step (ENG-5).

Replay streams the log in sequence order through the same pure `step` the
live engine uses, with no outbox, no timers and no network. `check` also
compares each recomputed outcome with the recorded one and the rebuilt
entities with the stored ones, and reports the first event where they differ.
`what_if` replays a log under other charts and says where each entity would
part from its recorded story. Reading rows back into events is
`engine.log_reader`'s.

Each event is replayed with the version of its chart that applied it, as its
row records (rows from before versions were recorded: version 1), and a
``chart.upgraded`` event moves the entity to a newer version as it did live
(ENG-9). `what_if` instead applies the charts it is given to every event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from engine.chartset import ChartSet
from engine.log_reader import (
    ChartNotInstalled,
    ChartVersionNotInstalled,
    LoggedEvent,
    ReplayError,
    UnreadableEvent,
    logged_events,
)
from engine.replay_stepper import End, LogStepper, differs
from engine.step import EntityState, Outcome, StepResult
from engine.store.protocol import Store

__all__ = [
    "ChartNotInstalled",
    "ChartVersionNotInstalled",
    "Divergence",
    "EntityDifference",
    "LoggedEvent",
    "ReplayError",
    "ReplayResult",
    "ReplayedStep",
    "UnreadableEvent",
    "check",
    "compared_fields",
    "divergence_of",
    "entity_difference",
    "logged_events",
    "outcome_differs",
    "replay",
    "replay_log",
    "replay_steps",
    "what_if",
]


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


@dataclass(frozen=True, slots=True)
class ReplayedStep:
    """One event as the replay saw it: what was recorded, what the step says now."""

    logged: LoggedEvent
    state_before: str
    result: StepResult

    @property
    def recorded(self) -> dict[str, Any]:
        return {
            "outcome": self.logged.outcome,
            "from_state": self.logged.from_state,
            "to_state": self.logged.to_state,
            "reason": self.logged.reason,
        }

    @property
    def recomputed(self) -> dict[str, Any]:
        return _outcome_of(self.result)

    @property
    def differs(self) -> bool:
        return self.recorded != self.recomputed


async def replay_steps(
    events: AsyncIterator[LoggedEvent],
    charts: ChartSet,
    states: dict[str, EntityState],
    *,
    entity: str | None = None,
    until_seq: int | None = None,
    until_time: float | None = None,
    isolate: bool = False,
    recorded_versions: bool = True,
) -> AsyncIterator[ReplayedStep]:
    """Step every logged event (no side effects), updating ``states`` as it goes.

    Entity data is copied only where an action may fail (an event recorded as
    an error, or always with ``isolate``, for charts that were not recorded).
    ``recorded_versions``: each event with the chart version its row records;
    False applies the newest of ``charts`` to every event (what-if)."""
    stepper = LogStepper(charts, states, entity, until_seq, until_time, isolate, recorded_versions)
    async for logged in events:
        try:
            stepped = stepper(logged)
        except End:
            return
        if stepped is not None:
            yield ReplayedStep(logged, stepped[0], stepped[1])


async def replay(
    store: Store,
    charts: ChartSet,
    *,
    entity: str | None = None,
    until_seq: int | None = None,
    until_time: float | None = None,
    compare: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Rebuild entities from the log; with ``compare``, stop at the first
    event whose recomputed outcome differs from the recorded one. ``progress``
    is told how many rows each batch read (for a progress bar).

    Reads the log in batches and steps each batch in a plain loop: the same
    step as `replay_steps`, without an async hop and a record per event."""
    result = ReplayResult()
    stepper = LogStepper(charts, result.entities, entity, until_seq, until_time, False)
    try:
        async for rows in store.iter_event_batches(entity=entity):
            if progress is not None:
                progress(len(rows))
            diverged = stepper.run(rows, compare)
            if diverged is not None:
                result.divergence = divergence_of(ReplayedStep(*diverged))
                break
    except End:
        pass  # the first row past ``until``: it was not read
    result.events = stepper.events
    return result


async def replay_log(
    events: AsyncIterator[LoggedEvent],
    charts: ChartSet,
    *,
    entity: str | None = None,
    until_seq: int | None = None,
    until_time: float | None = None,
    compare: bool = False,
) -> ReplayResult:
    """`replay` over any stream of logged events (a JSONL file...)."""
    result = ReplayResult()
    async for replayed in replay_steps(
        events, charts, result.entities, entity=entity, until_seq=until_seq, until_time=until_time
    ):
        result.events += 1
        if compare and replayed.differs:
            result.divergence = divergence_of(replayed)
            return result
    return result


def outcome_differs(logged: LoggedEvent, result: StepResult) -> bool:
    return differs(result, logged.outcome, logged.from_state, logged.to_state, logged.reason)


def divergence_of(replayed: ReplayedStep) -> Divergence:
    logged = replayed.logged
    return Divergence(
        logged.seq,
        logged.event.event_id,
        logged.event.entity,
        replayed.state_before,
        replayed.recorded,
        replayed.recomputed,
    )


async def check(
    store: Store, charts: ChartSet, progress: Callable[[int], None] | None = None
) -> ReplayResult:
    """Replay everything and compare outcomes, then stored entities (ENG-5)."""
    result = await replay(store, charts, compare=True, progress=progress)
    if result.divergence is not None:
        return result
    stored = {e.key: e for e in await store.entities()}
    result.divergence = entity_difference(result.entities, stored)
    return result


def entity_difference(
    replayed: dict[str, EntityState], stored: dict[str, EntityState]
) -> Divergence | None:
    """The first entity, by key, that the replay rebuilt otherwise than stored."""
    for key in sorted(set(stored) | set(replayed)):
        mine, theirs = replayed.get(key), stored.get(key)
        mine_dict = compared_fields(mine) if mine else None
        theirs_dict = compared_fields(theirs) if theirs else None
        if mine_dict != theirs_dict:
            return Divergence(
                None, None, key, None, {"stored": theirs_dict}, {"replayed": mine_dict}
            )
    return None


def compared_fields(entity: EntityState) -> dict[str, Any]:
    """What `check` compares of an entity: all it stores, its version and history too."""
    return {
        **entity.as_dict(),
        "chart_version": entity.chart_version,
        "history": entity.history or None,
    }


@dataclass(slots=True)
class EntityDifference:
    """How one entity would fare under other charts."""

    entity: str
    first_seq: int
    first_event_id: str
    state_before: str
    recorded: dict[str, Any]
    recomputed: dict[str, Any]
    final_recorded: str | None
    final_what_if: str | None
    differing_events: int = 1


async def what_if(
    events: AsyncIterator[LoggedEvent],
    charts: ChartSet,
    *,
    entity: str | None = None,
    base: dict[str, EntityState] | None = None,
) -> tuple[int, list[EntityDifference]]:
    """Replay a recorded log under ``charts`` (other versions of the charts) and
    report, per entity, where the outcome would differ and how it would end.
    ``base``: the states a log that starts mid-way starts from.

    The recorded side is rebuilt from the recorded outcomes themselves, so the
    comparison needs nothing but the log."""
    states: dict[str, EntityState] = dict(base or {})
    recorded_final: dict[str, str | None] = {}
    differences: dict[str, EntityDifference] = {}
    count = 0
    steps = replay_steps(
        events, charts, states, entity=entity, isolate=True, recorded_versions=False
    )
    async for replayed in steps:
        count += 1
        logged = replayed.logged
        key = logged.event.entity
        if logged.outcome == Outcome.TRANSITIONED.value:
            recorded_final[key] = logged.to_state
        else:
            recorded_final.setdefault(key, None)
        if not replayed.differs:
            continue
        if key in differences:
            differences[key].differing_events += 1
        else:
            differences[key] = EntityDifference(
                key,
                logged.seq,
                logged.event.event_id,
                replayed.state_before,
                replayed.recorded,
                replayed.recomputed,
                None,
                None,
            )
    for key, difference in differences.items():
        difference.final_recorded = recorded_final.get(key)
        difference.final_what_if = states[key].state if key in states else None
    return count, sorted(differences.values(), key=lambda d: d.first_seq)
