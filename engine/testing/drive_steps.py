"""The steps `drive_transitions` takes: an event type, a payload, and when."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

# When the first step of a path is received; later steps come a drawn gap after.
START = 1_700_000_000.0
# The gaps between two steps a search draws: a second, or past a window a guard
# counts in days (TikTok takes tracking corrections for 72 hours after a push).
GAPS: st.SearchStrategy[float] = st.sampled_from([1.0, 4 * 86_400.0])


class Step(tuple[str, dict[str, Any]]):
    """One step taken: ``(event type, payload)``, and ``at``, when it was received."""

    at: float

    def __new__(cls, kind: str, payload: dict[str, Any], at: float) -> Step:
        made = super().__new__(cls, (kind, payload))
        made.at = at
        return made


# The steps that took an edge, in order.
Taken = list[Step]


def clock_of(taken: Taken) -> float:
    """When the last step was received (before the first: `START`)."""
    return taken[-1].at if taken else START


def echoing(payload: dict[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    """``payload`` with each field the entity's data also holds set to the
    data's value: a guard that compares an update with what is recorded
    (nothing changed) wants exactly that, which random payloads almost never
    give."""
    return {name: data.get(name, value) for name, value in payload.items()}
