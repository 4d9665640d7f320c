"""An in-memory harness: the live step, a log, timers and a fake clock, no SQLite.

Properties run thousands of examples a second on it; the same properties can
run against the real store (`engine.Engine` on a temporary file) at a lower
example count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.chartset import ChartSet
from engine.clock import FakeClock
from engine.events import Event
from engine.rules import Command
from engine.step import EntityState, Outcome, StepResult, new_entity, step


@dataclass(slots=True)
class LogEntry:
    """One applied event: the entity before it, and what the step made of it."""

    event: Event
    before: EntityState
    result: StepResult

    @property
    def transitioned(self) -> bool:
        return self.result.outcome is Outcome.TRANSITIONED


@dataclass
class ChartHarness:
    """Apply events as the engine does (dedup, step, timers), all in memory."""

    charts: ChartSet
    clock: FakeClock = field(default_factory=FakeClock)
    settings: Mapping[str, Any] | None = None
    entities: dict[str, EntityState] = field(default_factory=dict)
    log: list[LogEntry] = field(default_factory=list)
    duplicates: list[Event] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    timers: dict[tuple[str, str], tuple[float, str]] = field(default_factory=dict)
    _seen: set[str] = field(default_factory=set)
    _counter: int = 0

    def make(
        self,
        event_type: str,
        entity: str,
        payload: Mapping[str, Any] | None = None,
        *,
        event_id: str | None = None,
        source: str = "test",
    ) -> Event:
        self._counter += 1
        return self.charts.event_types.make(
            event_type,
            entity,
            payload or {},
            event_id=event_id or f"h{self._counter}",
            source=source,
            received_at=self.clock.now(),
        )

    def apply(self, event: Event) -> StepResult | None:
        """Apply one event; None if its id was seen before (a duplicate)."""
        if event.event_id in self._seen:
            self.duplicates.append(event)
            return None
        self._seen.add(event.event_id)
        chart = self.charts.by_kind[event.entity_kind]
        before = self.entities.get(event.entity) or new_entity(chart, event.entity)
        settings = {**self.charts.settings, **(self.settings or {})}
        result = step(chart, before, event, settings)
        if result.outcome is Outcome.TRANSITIONED:
            self.entities[event.entity] = result.entity
            self.commands.extend(result.commands)
            for timer in result.timers:
                key = (event.entity, timer.name)
                if timer.due_at is None:
                    self.timers.pop(key, None)
                else:
                    self.timers[key] = (timer.due_at, timer.event_type)
        if event.source == "timer":
            self.timers = {
                k: v
                for k, v in self.timers.items()
                if f"timer:{k[0]}:{k[1]}" != event.event_id.rsplit(":", 1)[0]
            }
        self.log.append(LogEntry(event, before, result))
        return result

    def send(
        self, event_type: str, entity: str, payload: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> StepResult | None:
        return self.apply(self.make(event_type, entity, payload, **kwargs))

    def fire_due_timers(self) -> int:
        """Fire every timer due by the clock, as the engine does."""
        due = sorted(
            (due_at, entity, name, event_type)
            for (entity, name), (due_at, event_type) in self.timers.items()
            if due_at <= self.clock.now()
        )
        for due_at, entity, name, event_type in due:
            self.timers.pop((entity, name), None)
            self.apply(
                self.charts.event_types.make(
                    event_type,
                    entity,
                    {"timer": name, "due_at": due_at},
                    event_id=f"timer:{entity}:{name}:{len(self.log)}",
                    source="timer",
                    received_at=max(self.clock.now(), due_at),
                )
            )
        return len(due)

    def replay(self) -> dict[str, EntityState]:
        """Rebuild every entity from the log alone, as `channelsync replay` does."""
        states: dict[str, EntityState] = {}
        settings = {**self.charts.settings, **(self.settings or {})}
        for entry in self.log:
            event = entry.event
            chart = self.charts.by_kind[event.entity_kind]
            before = states.get(event.entity) or new_entity(chart, event.entity)
            result = step(chart, before, event, settings)
            if result.outcome is Outcome.TRANSITIONED:
                states[event.entity] = result.entity
        return states

    def state(self, entity: str) -> str | None:
        found = self.entities.get(entity)
        return found.state if found else None
