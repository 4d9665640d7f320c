"""A chart's guards and actions as a step runs them.

Each guard a transition names becomes a check that records why it said no
(the step's refusal reason); each action, a call that turns an exception
into `ActionFailed` naming it, so a failed step says which rule broke.
``in_state=<id>`` is the built-in guard (SCXML's ``In()``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from engine.charts.configuration import active_states
from engine.charts.loader import GuardRef
from engine.rules import (
    ActionSpec,
    ArgumentAction,
    ArgumentGuard,
    GuardSpec,
    PlainAction,
    PlainGuard,
    Rules,
    StepContext,
)

IN_STATE = "in_state"


_ACTIVE: dict[str, frozenset[str]] = {}  # configuration -> its active states (bounded)


def _in_state(ctx: StepContext, state_id: str) -> bool:
    """``ctx.in_state``, with each configuration's active states worked out once."""
    active = _ACTIVE.get(ctx.state)
    if active is None:
        if len(_ACTIVE) >= 4096:
            _ACTIVE.clear()
        active = _ACTIVE[ctx.state] = active_states(ctx.state)
    return state_id in active or ctx.refuse(f"{state_id} is not active")


# The built-in guard ``in_state=<state id>`` (SCXML's In()): no package registers it.
IN_STATE_GUARD = GuardSpec(IN_STATE, _in_state, "not in that state", True)


class ActionFailed(Exception):
    """An action raised: the step is refused, the entity stays as it was."""

    def __init__(self, action: str, error: BaseException, what: str = "action") -> None:
        super().__init__(f"{what} {action} failed: {type(error).__name__}: {error}")
        self.action = action


class GuardFailed(ActionFailed):
    """A guard raised (instead of answering): the same as an action's failure."""

    def __init__(self, guard: str, error: BaseException) -> None:
        super().__init__(guard, error, "guard")


def guard_check(spec: GuardSpec, ref: GuardRef) -> Callable[[StepContext], bool]:
    """A guard as it runs in a step: records its refusal reason when it says no."""
    label = str(ref)
    refusal = spec.refusal if not ref.negated else f"guard {label} refused"
    argument, negated = ref.argument, ref.negated
    # `check_chart` has matched the chart's ``name=value`` to ``takes_argument``.
    plain = cast(PlainGuard, spec.func)
    with_argument = cast(ArgumentGuard, spec.func)
    value = argument if spec.takes_argument and argument is not None else None

    def check(ctx: StepContext) -> bool:
        ctx.refusal_detail = None
        try:
            result = bool(plain(ctx) if value is None else with_argument(ctx, value))
        except Exception as err:
            raise GuardFailed(label, err) from err
        if result == negated:
            detail = ctx.refusal_detail if not negated else None
            ctx.refusals.append((label, detail or refusal, argument is not None))
            return False
        return True

    return check


def _action_run(spec: ActionSpec, argument: str | None) -> Callable[[StepContext], None]:
    name = spec.name
    # `check_chart` has matched the chart's ``name=value`` to ``takes_argument``.
    plain = cast(PlainAction, spec.func)
    with_argument = cast(ArgumentAction, spec.func)

    def run(ctx: StepContext) -> None:
        try:
            if argument is None:
                plain(ctx)
            else:
                with_argument(ctx, argument)
        except Exception as err:
            raise ActionFailed(name, err) from err

    return run


def builtin_guard(ref: GuardRef) -> GuardSpec:
    if ref.name == IN_STATE:
        return IN_STATE_GUARD
    raise KeyError(ref.name)


def compile_actions(rules: Rules, names: list[str]) -> tuple[Callable[[StepContext], None], ...]:
    actions = []
    for text in names:
        name, has_arg, argument = text.partition("=")
        actions.append(
            _action_run(rules.actions[name.strip()], argument.strip() if has_arg else None)
        )
    return tuple(actions)
