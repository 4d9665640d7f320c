"""A chart's timers, compiled: when each is due and which a step arms or cancels.

A timer belongs to one or more states (atomic, compound or parallel) and is
active while any of them is. A step cancels the timers that stop being
active, arms those that become active, re-arms those one of whose states it
left and entered again (a transition into a child of its own source), and
re-reads every active ``at:`` timer (a refreshed token's expiry moves it).
A timer that stays active through the step keeps its deadline, also when the
step only moves between two states that both carry it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.charts.schema import TimerSpec, parse_duration
from engine.rules import TimerRequest

# The timers to cancel (their cancellations, made once: a `TimerRequest` is
# frozen, so every step that cancels a timer shares one) and those to arm or
# re-read (their deadline computed by the step).
TimerPlan = tuple[tuple[TimerRequest, ...], tuple["CompiledTimer", ...]]


@dataclass(frozen=True, slots=True)
class CompiledTimer:
    name: str
    states: tuple[str, ...]
    event: str
    after: float | None
    setting: str | None
    at_path: tuple[str, ...] | None
    lead: float

    @property
    def cancellation(self) -> TimerRequest:
        return TimerRequest(self.name, None)

    @classmethod
    def from_spec(cls, spec: TimerSpec) -> CompiledTimer:
        at_path = tuple(spec.at.removeprefix("data.").split(".")) if spec.at else None
        return cls(
            spec.name,
            tuple(spec.state),
            spec.event,
            parse_duration(spec.after) if spec.after is not None else None,
            spec.setting,
            at_path,
            parse_duration(spec.lead),
        )

    def due_at(self, now: float, data: dict[str, Any], settings: Mapping[str, Any]) -> float | None:
        if self.at_path is not None:
            value: Any = data
            for part in self.at_path:
                value = value.get(part) if isinstance(value, dict) else None
            if value is None:
                return None
            lead = self.lead
            if self.setting and self.setting in settings:
                lead = parse_duration(settings[self.setting])
            return float(value) - lead
        after = self.after or 0.0
        if self.setting and self.setting in settings:
            after = parse_duration(settings[self.setting])
        return now + after

    def active_in(self, active: Iterable[str] | frozenset[str]) -> bool:
        return any(state in active for state in self.states)


def configuration_timer_plan(
    timers: Iterable[CompiledTimer],
    before: frozenset[str],
    after: frozenset[str],
    reentered: frozenset[str],
) -> TimerPlan:
    """For a step from the active states ``before`` to ``after``, having left
    and entered again the states ``reentered``: what to cancel and to arm."""
    cancel: list[TimerRequest] = []
    arm: list[CompiledTimer] = []
    for timer in timers:
        was, now = timer.active_in(before), timer.active_in(after)
        if was and not now:
            cancel.append(timer.cancellation)
        elif now and (not was or timer.at_path is not None or timer.active_in(reentered)):
            arm.append(timer)
    return tuple(cancel), tuple(arm)
