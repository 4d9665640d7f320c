"""The data diff each logged event caused, rebuilt by replaying its entity.

The log keeps each event's payload and outcome, not the entity's data before
and after: the inspector replays the entity's events up to the one asked for,
with the very step the live engine ran (`engine.replay.replay_steps`, each
event under the chart version that applied it), and compares the data just
before that event with the data just after. It is computed when a person
opens a row, not for the whole timeline: an entity with 10,000 events opens
without replaying anything.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.chartset import ChartSet
from engine.log_reader import logged_events
from engine.replay import replay_steps
from engine.step import EntityState
from engine.store.protocol import Store

_MISSING = object()


@dataclass(frozen=True, slots=True)
class Change:
    """One field that an event added, removed or changed (``path``: dotted keys)."""

    path: str
    kind: str  # "added", "removed" or "changed"
    before: Any
    after: Any


def diff(before: Any, after: Any, path: str = "") -> list[Change]:
    """Every leaf that differs between two JSON values, objects compared key by key."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        changes: list[Change] = []
        for key in [*before, *(k for k in after if k not in before)]:
            inner = f"{path}.{key}" if path else str(key)
            old, new = before.get(key, _MISSING), after.get(key, _MISSING)
            if old is _MISSING:
                changes.append(Change(inner, "added", None, new))
            elif new is _MISSING:
                changes.append(Change(inner, "removed", old, None))
            else:
                changes += diff(old, new, inner)
        return changes
    if before == after and type(before) is type(after):
        return []
    return [Change(path or "(data)", "changed", before, after)]


@dataclass(frozen=True, slots=True)
class EventDiff:
    seq: int
    found: bool
    changes: list[Change]


async def event_diff(store: Store, charts: ChartSet, entity: str, seq: int) -> EventDiff:
    """What event ``seq`` of ``entity`` changed in the entity's data; ``found``
    is False when no such event of that entity is in the log."""
    states: dict[str, EntityState] = {}
    before: dict[str, Any] = {}
    events = logged_events(store, charts, entity=entity)
    async for replayed in replay_steps(events, charts, states, entity=entity, until_seq=seq):
        current = states.get(entity)
        data = current.data if current is not None else {}
        if replayed.logged.seq == seq:
            return EventDiff(seq, True, diff(before, data))
        # The step may change the data in place next time: keep a copy.
        before = copy.deepcopy(data)
    return EventDiff(seq, False, [])


__all__ = ["Change", "EventDiff", "diff", "event_diff"]
