"""`channelsync migrate`'s work: move entities to a newer version of their chart.

`plan_moves` finds, per chart, the entities pinned to an older version than
the target (the newest installed, or ``--to``); `publish_moves` publishes one
``chart.upgraded`` event per entity through the engine's bus, so each move is
stepped (engine.upgrades), logged and committed like any event, and `check`
applies it again when it replays the log. Nothing is written behind the
engine's back. An event's id names the entity and both versions, so running
migrate again after an interruption moves only those not yet moved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.chartset import ChartSet
from engine.events import Event
from engine.store.protocol import Store
from engine.upgrades import UPGRADE_EVENT, UPGRADE_SOURCE

if TYPE_CHECKING:
    from engine.runtime import Engine

# Events handed to the bus at once: large enough to travel in groups.
WINDOW = 2000


@dataclass(slots=True)
class PlannedMove:
    """Entities of one chart to move from one version to another."""

    chart: str
    from_version: int
    to_version: int
    entities: list[str] = field(default_factory=list)
    # After publishing: how many events had each outcome.
    outcomes: dict[str, int] = field(default_factory=dict)


class NothingToMoveTo(ValueError):
    """The chart or the target version asked for is not installed."""


def _target(charts: ChartSet, name: str, to: int | None) -> int:
    newest = charts.by_name.get(name)
    if newest is None:
        raise NothingToMoveTo(
            f"chart {name!r} is not installed (installed: {', '.join(sorted(charts.by_name))})"
        )
    if to is None:
        return newest.spec.version
    charts.version(name, to)  # raises VersionNotInstalled
    return to


async def plan_moves(
    store: Store, charts: ChartSet, chart: str | None = None, to: int | None = None
) -> list[PlannedMove]:
    """Per chart (or only ``chart``) and version, the entities on a version older
    than ``to`` (default: the chart's newest installed version)."""
    if to is not None and chart is None:
        raise NothingToMoveTo("--to needs --chart: versions are numbered per chart")
    names = [chart] if chart is not None else sorted(charts.by_name)
    moves: list[PlannedMove] = []
    for name in names:
        target = _target(charts, name, to)
        by_version: dict[int, PlannedMove] = {}
        for entity in await store.entities(chart=name):
            if entity.chart_version < target:
                move = by_version.setdefault(
                    entity.chart_version, PlannedMove(name, entity.chart_version, target)
                )
                move.entities.append(entity.key)
        moves.extend(by_version[version] for version in sorted(by_version))
    return moves


def upgrade_event(charts: ChartSet, key: str, move: PlannedMove, now: float) -> Event:
    """The ``chart.upgraded`` event that moves ``key`` as ``move`` says."""
    return charts.event_types.make(
        UPGRADE_EVENT,
        key,
        {"from_version": move.from_version, "to_version": move.to_version},
        event_id=f"{UPGRADE_EVENT}:{key}:{move.from_version}:{move.to_version}",
        source=UPGRADE_SOURCE,
        received_at=now,
    )


async def publish_moves(engine: Engine, moves: Sequence[PlannedMove]) -> None:
    """Publish every move's events through ``engine``'s bus, a window at a time,
    and count each move's outcomes (transitioned, ignored, error, duplicate).

    The bus is fed directly: `Engine.publish` takes only the events a chart
    lists, and ``chart.upgraded`` is the engine's own, published by migrate alone."""
    for move in moves:
        for start in range(0, len(move.entities), WINDOW):
            now = engine.clock.now()
            events = [
                upgrade_event(engine.charts, key, move, now)
                for key in move.entities[start : start + WINDOW]
            ]
            for receipts in await asyncio.gather(*await engine.bus.submit_many(events)):
                for receipt in receipts:
                    move.outcomes[receipt.outcome] = move.outcomes.get(receipt.outcome, 0) + 1


__all__ = [
    "WINDOW",
    "NothingToMoveTo",
    "PlannedMove",
    "plan_moves",
    "publish_moves",
    "upgrade_event",
]
