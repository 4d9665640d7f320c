"""What-if for one entity: its logged events from seq N replayed under another
chart version (or a chart file), compared event by event with the log.

The state before N is rebuilt from the log exactly as `check` would: each
event with the version of its chart that applied it, logged upgrades applied
again. From N on every event of the entity is stepped by the chart asked for.
When that chart is a newer version than the one the entity was on at N, the
entity first moves to it the way `channelsync migrate` moves it (the newer
version's declared upgrade); an older version cannot take it back.

Only logged events are replayed: timers the other chart would have armed and
command results it would have caused never happened, so they are not invented.
Nothing is written: the store is only read (`docs/whatif.md`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.charts.checks_refs import check_upgrade_sources
from engine.charts.compiled import CompiledChart
from engine.charts.loader import ChartLoadError, load_chart
from engine.chartset import ChartSet, VersionNotInstalled, register_timer_events
from engine.log_reader import LoggedEvent
from engine.replay_stepper import LogStepper
from engine.rules import Rules
from engine.step import EntityState, StepResult, new_entity, step
from engine.step import Outcome as StepOutcome
from engine.store.protocol import Store
from engine.upgrades import UPGRADE_EVENT, UPGRADE_SOURCE, upgrade_step

__all__ = ["Outcome", "WhatIf", "WhatIfError", "WhatIfRow", "what_if"]


class WhatIfError(ValueError):
    """The what-if cannot run as asked (said as a sentence for the user)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one event did (or would do) to the entity."""

    outcome: str
    from_state: str | None
    to_state: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class WhatIfRow:
    """One replayed event: the outcome the log holds beside the one replayed."""

    seq: int
    event_id: str
    type: str
    logged: Outcome
    replayed: Outcome

    @property
    def differs(self) -> bool:
        return self.logged != self.replayed


@dataclass(slots=True)
class WhatIf:
    """One entity's events from ``from_seq`` under chart ``chart`` ``version``."""

    entity: str
    chart: str
    version: int
    from_seq: int
    # The configuration the replay started from (before ``from_seq``), on the
    # version asked for.
    state_before: str
    rows: list[WhatIfRow] = field(default_factory=list)
    final_logged: str | None = None
    final_replayed: str | None = None

    @property
    def first_difference(self) -> int | None:
        """The seq of the first event whose outcome differs, None if none does."""
        return next((row.seq for row in self.rows if row.differs), None)

    def as_dict(self) -> dict[str, Any]:
        """Plain values (`channelsync whatif --json`, a web page's JSON)."""
        return {
            "entity": self.entity,
            "chart": self.chart,
            "version": self.version,
            "from_seq": self.from_seq,
            "state_before": self.state_before,
            "first_difference": self.first_difference,
            "final_logged": self.final_logged,
            "final_replayed": self.final_replayed,
            "rows": [
                {
                    "seq": row.seq,
                    "event_id": row.event_id,
                    "type": row.type,
                    "logged": asdict(row.logged),
                    "replayed": asdict(row.replayed),
                    "differs": row.differs,
                }
                for row in self.rows
            ],
        }


async def what_if(
    store: Store,
    charts: ChartSet,
    entity: str,
    *,
    from_seq: int,
    version: int | None = None,
    chart_file: Path | None = None,
) -> WhatIf:
    """Replay ``entity`` from ``from_seq`` under ``version`` of its chart (an
    installed one) or under ``chart_file`` (default: the newest installed
    version) and compare every event's outcome with the log's.

    Raises `WhatIfError` for an unknown entity, a ``from_seq`` outside its
    events, an uninstalled version or a chart file that does not load or is
    for another chart; `ReplayError` for a log these charts cannot read."""
    if version is not None and chart_file is not None:
        raise WhatIfError("give a chart version or a chart file, not both")
    if from_seq < 1:
        raise WhatIfError(f"--from is a sequence number of the log (1 or more), not {from_seq}")
    events = await _entity_log(store, charts, entity)
    if from_seq > events[-1].seq:
        raise WhatIfError(
            f"{entity}'s events are at seq {events[0].seq}..{events[-1].seq}:"
            f" nothing to replay from seq {from_seq}"
        )
    newest = charts.by_kind[entity.split(":", 1)[0]]
    target_set, target = _target(charts, newest, version, chart_file)
    states: dict[str, EntityState] = {}
    before = [logged for logged in events if logged.seq < from_seq]
    _replay_as_logged(charts, states, entity, before)
    start = _moved_to(target_set, target, states.get(entity), entity, from_seq)
    result = WhatIf(entity, target.name, target.spec.version, from_seq, start.state)
    states = {entity: start}
    for logged in events[len(before) :]:
        if logged.event.type == UPGRADE_EVENT:
            continue  # under one chart asked for, moving between logged versions means nothing
        current = states[entity]
        stepped = step(target, current, logged.event, charts.settings)
        if stepped.outcome is StepOutcome.TRANSITIONED:
            stepped.entity.chart_version = target.spec.version
            states[entity] = stepped.entity
        result.rows.append(_row(logged, stepped))
    result.final_logged = _final_logged(events)
    result.final_replayed = states[entity].state if states[entity].version else None
    return result


async def _entity_log(store: Store, charts: ChartSet, entity: str) -> list[LoggedEvent]:
    """Every logged event of ``entity``, parsed; `WhatIfError` when there is none."""
    kind = entity.split(":", 1)[0]
    if kind not in charts.by_kind:
        raise WhatIfError(
            f"no installed chart serves entity kind {kind!r} (of {entity!r}); installed"
            f" kinds: {', '.join(sorted(charts.by_kind)) or 'none'}"
        )
    events = [
        LoggedEvent.from_row(row, charts)
        async for rows in store.iter_event_batches(entity=entity)
        for row in rows
    ]
    if not events:
        raise WhatIfError(f"no events logged for entity {entity!r}")
    return events


def _target(
    charts: ChartSet, newest: CompiledChart, version: int | None, chart_file: Path | None
) -> tuple[ChartSet, CompiledChart]:
    """The chart to replay with, and a chart set that holds it beside the
    installed versions of the same chart (for the upgrade to it)."""
    if chart_file is None:
        if version is None:
            return charts, newest
        try:
            return charts, charts.version(newest.name, version)
        except VersionNotInstalled as missing:
            raise WhatIfError(str(missing)) from None
    rules = Rules()
    rules.update(charts.rules)  # a copy: the file's timer events stay out of the live rules
    register_timer_events([chart_file], rules)
    try:
        loaded = load_chart(chart_file, rules)
    except ChartLoadError as error:
        raise WhatIfError(f"{chart_file} does not load:\n{error}") from None
    except OSError as error:
        raise WhatIfError(f"cannot read {chart_file}: {error.strerror or error}") from None
    spec = loaded.spec
    if spec.name != newest.name or spec.entity_kind != newest.entity_kind:
        raise WhatIfError(
            f"{chart_file} is chart {spec.name!r} (entity kind {spec.entity_kind!r}), not"
            f" {newest.name!r} (entity kind {newest.entity_kind!r})"
        )
    installed = {v: c for (n, v), c in charts.versions.items() if n == spec.name}
    problems = check_upgrade_sources(loaded, {v: c.spec for v, c in installed.items()})
    if problems:
        raise WhatIfError(f"{chart_file} does not load:\n{ChartLoadError(problems)}")
    chart = CompiledChart(loaded, rules)
    # The file replaces the installed chart of its own version, if any.
    others = [c for v, c in installed.items() if v != spec.version]
    return ChartSet([*others, chart], rules, charts.settings), chart


def _replay_as_logged(
    charts: ChartSet, states: dict[str, EntityState], entity: str, events: list[LoggedEvent]
) -> None:
    """The entity as the log left it: each event with the version that applied it."""
    stepper = LogStepper(charts, states, entity, None, None, False)
    for logged in events:
        stepper(logged)


def _moved_to(
    charts: ChartSet, target: CompiledChart, entity: EntityState | None, key: str, seq: int
) -> EntityState:
    """``entity`` (None: not created yet) on ``target``'s version, moved there
    by its declared upgrade when it was on an older one."""
    if entity is None or entity.version == 0:
        return new_entity(target, key)
    if entity.chart_version == target.spec.version:
        return entity
    if entity.chart_version > target.spec.version:
        raise WhatIfError(
            f"{key} is on version {entity.chart_version} of chart {target.name} before seq"
            f" {seq}: version {target.spec.version} cannot take it back (upgrades go forward)"
        )
    event = charts.event_types.make(
        UPGRADE_EVENT,
        key,
        {"from_version": entity.chart_version, "to_version": target.spec.version},
        event_id=f"what-if:{key}",
        source=UPGRADE_SOURCE,
    )
    moved = upgrade_step(charts, entity, event)
    if moved.outcome is not StepOutcome.TRANSITIONED:
        raise WhatIfError(f"{key} cannot move to version {target.spec.version}: {moved.reason}")
    return moved.entity


def _row(logged: LoggedEvent, stepped: StepResult) -> WhatIfRow:
    return WhatIfRow(
        logged.seq,
        logged.event.event_id,
        logged.event.type,
        Outcome(logged.outcome, logged.from_state, logged.to_state, logged.reason),
        Outcome(stepped.outcome.value, stepped.from_state, stepped.to_state, stepped.reason),
    )


def _final_logged(events: list[LoggedEvent]) -> str | None:
    """The configuration the log leaves the entity in (None: never created)."""
    final = None
    for logged in events:
        if logged.outcome == StepOutcome.TRANSITIONED.value:
            final = logged.to_state
    return final
