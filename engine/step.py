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

from pydantic_core import PydanticSerializationError, from_json, to_json

from engine.charts.compiled import ActionFailed, CompiledChart
from engine.events import Event
from engine.rules import Command, StepContext, TimerRequest


class Outcome(StrEnum):
    TRANSITIONED = "transitioned"
    IGNORED = "ignored"
    DUPLICATE = "duplicate"
    ERROR = "error"


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


def new_entity(chart: CompiledChart, key: str) -> EntityState:
    return EntityState(key=key, chart=chart.name, state=chart.initial, data={}, version=0)


def json_copy(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, scalars); much faster than
    deepcopy. Scalars are shared, and only containers recurse."""
    if isinstance(value, dict):
        return {k: json_copy(v) if isinstance(v, _CONTAINERS) else v for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) if isinstance(v, _CONTAINERS) else v for v in value]
    return value


_CONTAINERS = (dict, list)

_Encoded = tuple[str | None, list[str] | None]
_NOT_ENCODED: _Encoded = (None, None)


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
    return _step(chart, entity, event, settings, json_copy, _checked, _keep)


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
    snapshot = _Snapshot()
    return _step(chart, entity, event, settings, snapshot.take, _encoded, snapshot.restore)


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
    return _step(chart, entity, event, settings, dict, _unencoded, _keep)


def _step(
    chart: CompiledChart,
    entity: EntityState,
    event: Event,
    settings: Mapping[str, Any] | None,
    copy_data: Callable[[dict[str, Any]], dict[str, Any]],
    encode: Callable[[StepContext, EntityState], _Encoded],
    undo: Callable[[EntityState], None],
) -> StepResult:
    """The core of every step: ``copy_data`` gives the actions their data (copy
    on write), ``encode`` turns what they left into what is stored (raising if
    it cannot be), ``undo`` puts ``entity`` back after a failure."""
    state = entity.state
    if not chart.allows(event.type, state):
        reason = chart.refusals.get((event.type, state)) or (
            f"{state} is final"
            if state in chart.final_states
            else f"{event.type} is not allowed in state {state}"
        )
        return StepResult(Outcome.IGNORED, state, None, reason, entity)
    settings = settings or {}
    ctx = StepContext(
        event=event,
        data=entity.data,
        state=state,
        target="",
        now=event.received_at if event.received_at is not None else 0.0,
        settings=settings,
    )
    try:
        new_state = chart.fire(event.type, state, ctx, copy_data)
        if new_state is None:
            return StepResult(
                Outcome.IGNORED, state, None, _refusal_reason(ctx, event, state), entity
            )
        timers = _timer_changes(chart, state, new_state, ctx, settings)
        encoded = encode(ctx, entity)
    except Exception as err:
        undo(entity)
        return StepResult(Outcome.ERROR, state, None, _failure(err), entity)
    except BaseException:
        undo(entity)  # interrupted mid-step: put the data back
        raise
    updated = EntityState(entity.key, chart.name, new_state, ctx.data, entity.version + 1)
    return StepResult(
        Outcome.TRANSITIONED, state, new_state, None, updated, ctx.commands, timers, *encoded
    )


def _refusal_reason(ctx: StepContext, event: Event, state: str) -> str:
    # A refusal by a plain guard ("stale", "terms not accepted") says more than
    # the discriminating ``name=value`` guards that merely picked another branch.
    for _label, reason, discriminating in ctx.refusals:
        if not discriminating:
            return reason
    tried = ", ".join(label for label, _reason, _d in ctx.refusals)
    return f"no transition for {event.type} from {state} matches ({tried})"


def _encoded(ctx: StepContext, entity: EntityState) -> _Encoded:
    """The step's data and its commands' payloads as JSON (what is stored)."""
    return to_json(ctx.data).decode(), [to_json(dict(c.payload)).decode() for c in ctx.commands]


def _checked(ctx: StepContext, entity: EntityState) -> _Encoded:
    """Nothing to store yet, but data JSON cannot hold fails the step here, as
    it does in the bus; only when actions ran (they made a copy)."""
    if ctx.data is not entity.data:
        _encoded(ctx, entity)
    return _NOT_ENCODED


def _unencoded(ctx: StepContext, entity: EntityState) -> _Encoded:
    return _NOT_ENCODED


def _keep(entity: EntityState) -> None:
    """Nothing to undo: the actions worked on a copy."""


class _Snapshot:
    """The entity's data as JSON, taken when an in-place step's actions are
    about to change it, so that a failure can put it back."""

    __slots__ = ("_taken",)

    def __init__(self) -> None:
        self._taken: bytes | None = None

    def take(self, data: dict[str, Any]) -> dict[str, Any]:
        self._taken = to_json(data)
        return data

    def restore(self, entity: EntityState) -> None:
        if self._taken is not None:
            entity.data.clear()
            entity.data.update(from_json(self._taken))


def _failure(err: Exception) -> str:
    """An error outcome's reason: the same for live steps and for replay.

    An action or a guard that raises, data or a payload JSON cannot hold, or
    anything else that breaks during a step fails that event alone; the
    entity stays as it was."""
    if isinstance(err, ActionFailed):
        return str(err)
    if isinstance(err, PydanticSerializationError):
        return f"the step left data that is not JSON: {err}"
    return f"the step failed: {type(err).__name__}: {err}"


def _timer_changes(
    chart: CompiledChart, old: str, new: str, ctx: StepContext, settings: Mapping[str, Any]
) -> list[TimerRequest]:
    cancel, entering = chart.timer_plan(old, new)
    if not (cancel or entering or ctx.timers):
        return []
    changes = [TimerRequest(name, None) for name in cancel]
    if entering:
        plain = dict(settings)
        for timer in entering:
            due = timer.due_at(ctx.now, ctx.data, plain)
            changes.append(
                TimerRequest(timer.name, due, timer.event)
                if due is not None
                else TimerRequest(timer.name, None)
            )
    changes.extend(ctx.timers)
    return changes
