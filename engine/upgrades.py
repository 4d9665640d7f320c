"""Moving an entity from one version of its chart to a newer one (ENG-9).

An entity is pinned to the version of its chart it started on: its events are
applied by that version even after a newer one is installed. A newer version
says how entities move to it (`UpgradeSpec`: state renames, then a registered
data migration). `channelsync migrate` asks for the move by publishing a
``chart.upgraded`` event for the entity; `upgrade_step` is that event's step,
a pure function like `engine.step.step`, so the move is logged and `check`
applies it again when it meets the event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic_core import PydanticSerializationError

from engine.charts.configuration import atomic_states, join_states
from engine.charts.schema import ChartSpec, StateSpec, UpgradeSpec
from engine.events import Event, Payload
from engine.step import EntityState, Outcome, StepResult, json_copy
from engine.store.rows import dumps

if TYPE_CHECKING:
    from engine.chartset import ChartSet

UPGRADE_EVENT = "chart.upgraded"
UPGRADE_SOURCE = "migrate"


class UpgradePayload(Payload):
    """What a ``chart.upgraded`` event asks: move the entity from one version to another."""

    from_version: int
    to_version: int


def state_ids(spec: ChartSpec) -> dict[str, StateSpec]:
    """Every state of a chart by its id (dotted path from the top), in document order."""
    found: dict[str, StateSpec] = {}

    def walk(states: Mapping[str, StateSpec], prefix: str) -> None:
        for name, state in states.items():
            found[prefix + name] = state
            walk(state.states, f"{prefix}{name}.")

    walk(spec.states, "")
    return found


def renamed(state_id: str, renames: Mapping[str, str]) -> str:
    """``state_id`` under ``renames`` (old id -> new id). A renamed compound
    state takes its descendants along: with ``sync -> shoplazza``,
    ``sync.failed`` becomes ``shoplazza.failed`` (the longest old id wins)."""
    if state_id in renames:
        return renames[state_id]
    parts = state_id.split(".")
    for depth in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:depth])
        if head in renames:
            return renames[head] + "." + ".".join(parts[depth:])
    return state_id


# An entity's history (compound state id -> its atomic states when last left).
History = dict[str, list[str]] | None


class UpgradeRefused(Exception):
    """The upgrade cannot be applied; the entity stays on its version."""


@dataclass(frozen=True, slots=True)
class _Hop:
    """One move along the upgrade chain: to ``version`` by ``upgrade``."""

    version: int
    upgrade: UpgradeSpec


def upgrade_chain(charts: ChartSet, name: str, start: int, target: int) -> list[_Hop]:
    """The upgrades that lead from ``start`` to ``target``. From each version
    the farthest installed version up to ``target`` that upgrades from it is
    taken (a version may skip one that never went live)."""
    hops: list[_Hop] = []
    current = start
    while current < target:
        choices = [
            _Hop(version, upgrade)
            for (chart_name, version), chart in charts.versions.items()
            if chart_name == name and current < version <= target
            for upgrade in chart.spec.upgrades
            if upgrade.from_version == current
        ]
        if not choices:
            raise UpgradeRefused(
                f"no installed version of chart {name} up to {target} declares an upgrade"
                f" from version {current}"
            )
        hop = max(choices, key=lambda choice: choice.version)
        hops.append(hop)
        current = hop.version
    return hops


def _apply_hop(
    charts: ChartSet, name: str, hop: _Hop, state: str, data: dict[str, Any], history: History
) -> tuple[str, dict[str, Any], History]:
    """The state, data and history after one upgrade: renames, then the data
    migration; every state named must be a state of the new version."""
    renames = hop.upgrade.states
    state = join_states([renamed(leaf, renames) for leaf in atomic_states(state)])
    if history:
        history = {
            renamed(compound, renames): [renamed(leaf, renames) for leaf in leaves]
            for compound, leaves in history.items()
        }
    if hop.upgrade.data is not None:
        migrate_data = charts.rules.upgrades.get(hop.upgrade.data)
        if migrate_data is None:
            raise UpgradeRefused(f"upgrade {hop.upgrade.data!r} is not registered")
        try:
            data, state = migrate_data(data, state)
        except Exception as err:
            raise UpgradeRefused(
                f"upgrade {hop.upgrade.data} failed: {type(err).__name__}: {err}"
            ) from err
    return _checked_against(charts, name, hop.version, state, data, history)


def _checked_against(
    charts: ChartSet, name: str, version: int, state: str, data: dict[str, Any], history: History
) -> tuple[str, dict[str, Any], History]:
    """``state`` in the new version's document order, refused if it names a
    state that version does not have; history kept for its compound states."""
    known = state_ids(charts.versions[(name, version)].spec)
    order = {state_id: position for position, state_id in enumerate(known)}
    leaves = atomic_states(state)
    for leaf in [*leaves, *(leaf for kept in (history or {}).values() for leaf in kept)]:
        if leaf not in known or known[leaf].states:
            raise UpgradeRefused(
                f"state {leaf!r} is not an atomic state of chart {name} version {version}"
            )
    if not leaves:
        raise UpgradeRefused(f"the upgrade to version {version} left no state")
    ordered = sorted(set(leaves), key=order.__getitem__)
    # History of a compound state the new version no longer has can never be entered.
    kept = {key: value for key, value in (history or {}).items() if key in known}
    return join_states(ordered), data, kept or None


def upgrade_step(charts: ChartSet, entity: EntityState, event: Event) -> StepResult:
    """Apply a ``chart.upgraded`` event to ``entity`` (which is left as it was).

    TRANSITIONED with the configurations before and after, the entity on the
    new version; IGNORED when the entity is not on the version the event moves
    from (already moved, or new); ERROR, nothing kept, when the upgrade cannot
    be applied (no chain, a migration that raises, a state the new version
    lacks)."""
    payload = event.payload
    assert isinstance(payload, UpgradePayload)
    state, start, target = entity.state, entity.chart_version, payload.to_version
    if entity.version == 0:
        return StepResult(Outcome.IGNORED, state, None, f"{entity.key} does not exist yet", entity)
    if start != payload.from_version or target <= start:
        reason = (
            f"{entity.key} is on version {start} of chart {entity.chart}, not"
            f" {payload.from_version}: nothing to move to version {target}"
        )
        return StepResult(Outcome.IGNORED, state, None, reason, entity)
    try:
        data, history = json_copy(entity.data), json_copy(entity.history)
        new_state = state
        for hop in upgrade_chain(charts, entity.chart, start, target):
            new_state, data, history = _apply_hop(
                charts, entity.chart, hop, new_state, data, history
            )
        data_json = dumps(data)
    except (UpgradeRefused, PydanticSerializationError) as err:
        return StepResult(Outcome.ERROR, state, None, f"cannot upgrade: {err}", entity)
    moved = EntityState(
        entity.key, entity.chart, new_state, data, entity.version + 1, target, history
    )
    reason = f"chart {entity.chart} version {start} -> {target}"
    return StepResult(
        Outcome.TRANSITIONED, state, new_state, reason, moved, data_json=data_json, command_json=[]
    )


__all__ = [
    "UPGRADE_EVENT",
    "UPGRADE_SOURCE",
    "UpgradePayload",
    "UpgradeRefused",
    "renamed",
    "state_ids",
    "upgrade_chain",
    "upgrade_step",
]
