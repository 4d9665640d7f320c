"""The states of this package's charts, nested ones included, as the merchant's
views and CLI read them.

A stored state is a configuration: the active atomic states' dotted ids
(``approved.edit_held``, ``authorized.expiring``). A list filtered by a state
wants every entity in it or in any of its substates; a label is looked up by
id at any depth. Everything here reads the chart files this package installs.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

from engine.charts.configuration import atomic_states
from engine.charts.loader import read_chart_file
from engine.charts.schema import ChartSpec, StateSpec


def _walk(states: dict[str, StateSpec], prefix: str = "") -> Iterator[tuple[str, StateSpec]]:
    """Every state's id and spec, parents before their children, in document order."""
    for name, state in states.items():
        state_id = f"{prefix}{name}"
        yield state_id, state
        yield from _walk(state.states, f"{state_id}.")


@functools.cache
def chart_spec(chart: str) -> ChartSpec:
    """The spec of the newest installed version of a chart of this package."""
    from statecharts import chart_package

    specs = [read_chart_file(file).spec for file in chart_package().chart_files]
    named = [spec for spec in specs if spec.name == chart]
    if not named:
        raise LookupError(f"no chart named {chart!r} in this package")
    return max(named, key=lambda spec: spec.version)


def state_labels(spec: ChartSpec) -> dict[str, str]:
    """Every state id of a chart, at any depth -> its label, parents before children."""
    return {state_id: state.label for state_id, state in _walk(spec.states)}


def nested_state_labels(chart: str) -> dict[str, str]:
    """`state_labels` of a chart of this package."""
    return state_labels(chart_spec(chart))


def atomic_under(chart: str, state_id: str) -> tuple[str, ...]:
    """The atomic state ids at or under ``state_id`` (itself, if it is atomic)."""
    prefix = state_id + "."
    return tuple(
        found
        for found, state in _walk(chart_spec(chart).states)
        if not state.states and (found == state_id or found.startswith(prefix))
    )


def top_state(state: str) -> str:
    """The top-level state of a configuration of a chart whose top is compound
    (``approved.edit_held`` -> ``approved``): what a merchant's status names."""
    leaves = atomic_states(state)
    return leaves[0].split(".", 1)[0] if leaves else state
