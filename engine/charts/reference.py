"""A chart as a `transitions.Machine`: the reference semantics of `CompiledChart.fire`.

The step runs a chart's (event, state) table; this Machine, built from the same
transitions, guards and actions, is what that table is held equal to by a
differential property test. Nothing else triggers it, so a chart builds it on
its first `CompiledChart.fire_with_machine` call rather than at every start.

There is one Machine per chart and one light model object it is triggered on:
the step's state is loaded into the model, the Machine triggered, and the
result read back; guards and actions see the step through ``model.ctx``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from transitions import EventData, Machine, State

from engine.rules import StepContext

logging.getLogger("transitions").setLevel(logging.WARNING)


@dataclass(frozen=True, slots=True)
class ReferenceTransition:
    """One chart transition with the guards and actions the step runs for it."""

    event: str
    sources: Sequence[str]
    target: str | None
    guards: Sequence[Callable[[StepContext], bool]]
    actions: Sequence[Callable[[StepContext], None]]


class _Model:
    """The single object a chart's Machine is triggered on."""

    __slots__ = ("ctx", "state")

    def __init__(self, state: str) -> None:
        self.state = state
        self.ctx: StepContext | None = None


def _model(event_data: EventData) -> tuple[_Model, StepContext]:
    model = event_data.model
    if not isinstance(model, _Model) or model.ctx is None:
        raise RuntimeError("the reference Machine was triggered outside ReferenceMachine.fire")
    return model, model.ctx


def _on_model(func: Callable[[StepContext], Any]) -> Callable[[EventData], Any]:
    """Adapt a step-level guard or action to a `transitions` callback."""

    def callback(event_data: EventData) -> Any:
        return func(_model(event_data)[1])

    return callback


def _target_setter(target: str | None) -> Callable[[EventData], None]:
    def set_target(event_data: EventData) -> None:
        model, ctx = _model(event_data)
        ctx.target = target or model.state

    return set_target


class ReferenceMachine:
    """A chart's transitions on one shared `transitions.Machine`."""

    def __init__(
        self, states: Iterable[str], initial: str, transitions: Iterable[ReferenceTransition]
    ) -> None:
        self.model = _Model(initial)
        machine = Machine(
            model=None,
            states=list(states),
            initial=initial,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=True,
        )
        for transition in transitions:
            sources: list[str | Enum | State] = list(transition.sources)
            machine.add_transition(
                trigger=transition.event,
                source=sources,
                dest=transition.target,
                conditions=[_on_model(check) for check in transition.guards],
                before=[_target_setter(transition.target)]
                + [_on_model(action) for action in transition.actions],
            )
        self._triggers = {name: event.trigger for name, event in machine.events.items()}

    def fire(self, event_type: str, state: str, ctx: StepContext) -> str | None:
        """Trigger ``event_type`` from ``state``: the new state, or None if no
        transition's guards held."""
        model = self.model
        model.state = state
        model.ctx = ctx
        try:
            fired = self._triggers[event_type](model)
        finally:
            model.ctx = None
        return model.state if fired else None
