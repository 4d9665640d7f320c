"""The runtime step: one function of (chart, entity, event) shared by live
processing and replay.

`step` -> `StepResult`: the outcome, the new state and data, the commands to
put in the outbox and the timers to arm or cancel. It touches no database, no
network and no clock (``now`` is the event's ``received_at``), so replaying a
log computes exactly what the live engine did. `step` is pure: it never
changes its input. Two faster variants share its core and differ only in how
the actions get the data they may change:

- `step_in_place` (the bus): actions change the entity's own data, which a
  JSON snapshot puts back if one of them raises; the new data and the
  commands' payloads are encoded as JSON at once.
- `step_trusted` (replay of a logged non-error outcome): actions work on a
  shallow copy, so nested data of the input may change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from engine.charts.compiled import CompiledChart, fire_first
from engine.charts.macrostep import run_macrostep, run_quick
from engine.charts.plans import HierarchicalPlans, Progress, QuickPlan
from engine.charts.timers import CompiledTimer
from engine.events import Event
from engine.rules import Command, StepContext, TimerRequest
from engine.step_data import (
    NO_SETTINGS,
    Encoded,
    Snapshot,
    checked,
    encoded,
    json_copy,
    keep,
    unencoded,
)
from engine.step_reasons import failure, hierarchical_refusal, refusal_reason

__all__ = ["EntityState", "Outcome", "StepResult", "json_copy", "new_entity", "step"]


class Outcome(StrEnum):
    TRANSITIONED = "transitioned"
    IGNORED = "ignored"
    DUPLICATE = "duplicate"
    ERROR = "error"


# The outcomes as module constants: reading ``Outcome.X`` goes through
# EnumType's attribute hook (it defines ``__getattr__``), a measurable share
# of a step's cost; a global is one dict lookup.
TRANSITIONED, IGNORED, ERROR = Outcome.TRANSITIONED, Outcome.IGNORED, Outcome.ERROR


@dataclass(slots=True)
class EntityState:
    """An entity as stored: its chart, state, data and how many steps changed it.

    ``state`` is the configuration (engine/charts/configuration.py): one state's
    name in a flat chart, the active atomic states' ids joined by commas in a
    chart with compound or parallel states. ``chart_version`` is the version of
    the chart that steps it (it moves only by `channelsync migrate`);
    ``history`` remembers, per compound state left while it had history, the
    atomic states that were active under it, in document order."""

    key: str
    chart: str
    state: str
    data: dict[str, Any]
    version: int = 0
    chart_version: int = 1
    history: dict[str, list[str]] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "chart": self.chart,
            "state": self.state,
            "data": self.data,
            "version": self.version,
        }


@dataclass(slots=True)
class StepResult:
    outcome: Outcome
    from_state: str
    to_state: str | None
    reason: str | None
    entity: EntityState
    commands: list[Command] = field(default_factory=list)
    timers: list[TimerRequest] = field(default_factory=list)
    # From `step_in_place`: the new data and each command's payload as JSON,
    # taken at once (the data dict goes on changing with later steps).
    data_json: str | None = None
    command_json: list[str] | None = None
    # Indices (in the chart's transitions) of the transitions that fired, in
    # firing order, and the states entered, in entry order ('<id>@history'
    # for one entered as it was left).
    fired: tuple[int, ...] = ()
    entered: tuple[str, ...] = ()


def new_entity(chart: CompiledChart, key: str) -> EntityState:
    return EntityState(
        key=key,
        chart=chart.name,
        state=chart.initial,
        data={},
        version=0,
        chart_version=chart.version,
    )


def step(
    chart: CompiledChart,
    entity: EntityState,
    event: Event,
    settings: Mapping[str, Any] | None = None,
) -> StepResult:
    """Apply ``event`` to ``entity`` and return what it decides; ``entity`` is
    left as it was. Actions work on a deep copy of the data, made only once a
    transition with actions is chosen; data they leave that JSON cannot hold is
    an error outcome, as in the bus."""
    return _step(chart, entity, event, settings, json_copy, checked, keep)


def step_in_place(
    chart: CompiledChart,
    entity: EntityState,
    event: Event,
    settings: Mapping[str, Any] | None = None,
) -> StepResult:
    """`step` for a caller that keeps only the newest state and writes JSON,
    not dicts (the bus): actions change ``entity.data`` itself, after a JSON
    snapshot that puts it back if one raises or the result cannot be encoded.
    The result carries the new data and the commands' payloads as JSON
    (`StepResult.data_json`, ``command_json``), taken before the data moves on;
    the old `EntityState` then shares the new data. It spares a deep copy per
    transition."""
    snapshot = Snapshot()
    return _step(chart, entity, event, settings, snapshot.take, encoded, snapshot.restore)


def step_trusted(
    chart: CompiledChart,
    entity: EntityState,
    event: Event,
    settings: Mapping[str, Any] | None = None,
) -> StepResult:
    """`step` for a caller that discards ``entity`` afterwards and knows no
    action will fail (a replay of a logged event whose outcome was not an
    error): actions work on a shallow copy of the data, so nested values of
    ``entity.data`` may change; nothing is encoded or checked."""
    return _step(chart, entity, event, settings, dict, unencoded, keep)


def _step(
    chart: CompiledChart,
    entity: EntityState,
    event: Event,
    settings: Mapping[str, Any] | None,
    copy_data: Callable[[dict[str, Any]], dict[str, Any]],
    encode: Callable[[StepContext, EntityState], Encoded],
    undo: Callable[[EntityState], None],
) -> StepResult:
    """The core of every step: ``copy_data`` gives the actions their data (copy
    on write), ``encode`` turns what they left into what is stored (raising if
    it cannot be), ``undo`` puts ``entity`` back after a failure."""
    plans = chart.plans
    if plans is not None:
        return _step_hierarchical(chart, plans, entity, event, settings, copy_data, encode, undo)
    state = entity.state
    routes = chart.routes.get((event.type, state))
    if routes is None:
        reason = chart.refusals.get((event.type, state)) or (
            f"{state} is final"
            if state in chart.final_states
            else f"{event.type} is not allowed in state {state}"
        )
        return StepResult(IGNORED, state, None, reason, entity)
    received = event.received_at  # the step's "now": replay computes the same timers
    ctx = StepContext(event, entity.data, state, "", received or 0.0, settings or NO_SETTINGS)
    try:
        route = fire_first(routes, state, ctx, copy_data)
        if route is None:
            return StepResult(IGNORED, state, None, refusal_reason(ctx, event, state), entity)
        new_state = route.target or state
        cancel, entering = route.timers
        timers = _timer_changes(cancel, entering, ctx) if entering or ctx.timers else list(cancel)
        stored = encode(ctx, entity)
    except Exception as err:
        undo(entity)
        return StepResult(ERROR, state, None, failure(err), entity)
    except BaseException:
        undo(entity)  # interrupted mid-step: put the data back
        raise
    entered = (new_state,) if new_state != state else ()
    moved = (new_state, entity.history, (route.index,), entered)
    return _transitioned(chart, entity, ctx, moved, timers, stored)


def _step_hierarchical(
    chart: CompiledChart,
    plans: HierarchicalPlans,
    entity: EntityState,
    event: Event,
    settings: Mapping[str, Any] | None,
    copy_data: Callable[[dict[str, Any]], dict[str, Any]],
    encode: Callable[[StepContext, EntityState], Encoded],
    undo: Callable[[EntityState], None],
) -> StepResult:
    """`_step` for a chart with nesting, regions or entry/exit actions: one
    macrostep (engine/charts/macrostep.py), the same outcomes and failures.
    A step that the event and configuration alone decide, seen before, runs
    its cached plan (`HierarchicalPlans.shortcuts`) without a macrostep."""
    state = entity.state
    received = event.received_at
    ctx = StepContext(event, entity.data, state, "", received or 0.0, settings or NO_SETTINGS)
    is_new = entity.version == 0 and state == chart.initial
    try:
        quick = None if is_new else plans.shortcuts.get((event.type, state))
        if quick is not None:
            if quick.compared:
                ctx.data = copy_data(ctx.data)
                run_quick(plans, ctx, quick)
            elif quick.actions:  # `run_quick`'s common case, one frame fewer
                ctx.data = copy_data(ctx.data)
                ctx.target = quick.target
                for action in quick.actions:
                    action(ctx)
            run: Progress | QuickPlan = quick
        else:
            run = run_macrostep(plans, ctx, event.type, state, entity.history, copy_data, is_new)
            if not run.fired:
                assert isinstance(run, Progress)  # a quick plan fires its transition
                undo(entity)
                reason = hierarchical_refusal(chart, ctx, event, state, run.tried)
                return StepResult(IGNORED, state, None, reason, entity)
        cancel, entering = run.timers
        timers = _timer_changes(cancel, entering, ctx) if entering or ctx.timers else list(cancel)
        stored = encode(ctx, entity)
    except Exception as err:
        undo(entity)
        return StepResult(ERROR, state, None, failure(err), entity)
    except BaseException:
        undo(entity)
        raise
    if isinstance(run, Progress):
        history = run.history
    else:
        history = run.history_after(entity.history) if run.records else entity.history
    moved = (run.state, history, run.fired, run.entered)
    return _transitioned(chart, entity, ctx, moved, timers, stored)


# A transitioning step's new state, history, fired transitions and entered states.
_Moved = tuple[str, dict[str, list[str]] | None, tuple[int, ...], tuple[str, ...]]


def _transitioned(
    chart: CompiledChart,
    entity: EntityState,
    ctx: StepContext,
    moved: _Moved,
    timers: list[TimerRequest],
    stored: Encoded,
) -> StepResult:
    new_state, history, fired, entered = moved
    updated = EntityState(
        entity.key,
        chart.name,
        new_state,
        ctx.data,
        entity.version + 1,
        entity.chart_version,
        history,
    )
    data_json, command_json = stored
    return StepResult(
        TRANSITIONED,
        entity.state,
        new_state,
        None,
        updated,
        ctx.commands,
        timers,
        data_json,
        command_json,
        fired,
        entered,
    )


def _timer_changes(
    cancel: tuple[TimerRequest, ...], entering: tuple[CompiledTimer, ...], ctx: StepContext
) -> list[TimerRequest]:
    """The timers a step arms and cancels: its plan's (`TimerPlan`), then those
    its actions asked for. A step with neither to arm skips this call."""
    changes = list(cancel)
    if entering:
        settings = ctx.settings
        for timer in entering:
            due = timer.due_at(ctx.now, ctx.data, settings)
            changes.append(
                TimerRequest(timer.name, due, timer.event)
                if due is not None
                else TimerRequest(timer.name, None)
            )
    changes.extend(ctx.timers)
    return changes
