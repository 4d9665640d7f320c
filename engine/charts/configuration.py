"""An entity's state as stored: its configuration, the active atomic states.

A flat chart's entity is in one state, stored as its name (``shipped``). In a
chart with compound or parallel states it is in several at once: the stored
``state`` lists the active atomic states' ids (dotted paths from the chart's
top) in document order, joined by commas (``lifecycle.awaiting_shipment,
sync.synced,fulfillment.idle``). Their ancestors are active too, so
``lifecycle`` and ``sync`` are active states of that order; `is_active` and
`active_states` answer for any of them. Nothing here knows a chart: these are
the functions a read model, the CLI or a rule needs to read a stored state.
"""

from __future__ import annotations

SEPARATOR = ","


def atomic_states(state: str) -> tuple[str, ...]:
    """The active atomic states of a stored configuration, in document order."""
    return tuple(state.split(SEPARATOR)) if state else ()


def join_states(atomic: tuple[str, ...] | list[str]) -> str:
    """A configuration as stored, from its atomic states in document order."""
    return SEPARATOR.join(atomic)


def active_states(state: str) -> frozenset[str]:
    """Every active state of a configuration: its atomic states and their ancestors."""
    active: set[str] = set()
    for leaf in atomic_states(state):
        parts = leaf.split(".")
        for depth in range(1, len(parts) + 1):
            active.add(".".join(parts[:depth]))
    return frozenset(active)


def is_active(state: str, name: str) -> bool:
    """True when ``name`` (an atomic or a compound state's id) is active in ``state``."""
    prefix = name + "."
    return any(leaf == name or leaf.startswith(prefix) for leaf in atomic_states(state))


def region_state(state: str, region: str) -> str | None:
    """The active atomic state under ``region`` (``sync`` -> ``sync.failed``), or None."""
    prefix = region + "."
    for leaf in atomic_states(state):
        if leaf.startswith(prefix):
            return leaf
    return None
