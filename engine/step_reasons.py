"""Why a step did not transition: the reasons its result gives.

The same for live steps and for replay, so a replayed log reports exactly
what the live engine reported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic_core import PydanticSerializationError

from engine.charts.compiled import ActionFailed, CompiledChart
from engine.charts.configuration import atomic_states
from engine.charts.plans import StepError
from engine.rules import StepContext

if TYPE_CHECKING:
    from engine.events import Event


def hierarchical_refusal(
    chart: CompiledChart, ctx: StepContext, event: Event, state: str, tried: bool
) -> str:
    """As a flat chart's: a refusal of the event in an active state, else "final"
    or "not allowed" when no transition matched, else the guards' reasons."""
    if tried:
        return refusal_reason(ctx, event, state)
    leaves = atomic_states(state)
    for source in chart.tree.active_states(leaves):
        if (reason := chart.refusals.get((event.type, source))) is not None:
            return reason
    if all(leaf in chart.final_states for leaf in leaves):
        return f"{state} is final"
    return f"{event.type} is not allowed in state {state}"


def refusal_reason(ctx: StepContext, event: Event, state: str) -> str:
    # A refusal by a plain guard ("stale", "terms not accepted") says more than
    # the discriminating ``name=value`` guards that merely picked another branch.
    for _label, reason, discriminating in ctx.refusals:
        if not discriminating:
            return reason
    tried = ", ".join(label for label, _reason, _d in ctx.refusals)
    return f"no transition for {event.type} from {state} matches ({tried})"


def failure(err: Exception) -> str:
    """An error outcome's reason: the same for live steps and for replay.

    An action or a guard that raises, data or a payload JSON cannot hold, or
    anything else that breaks during a step fails that event alone; the
    entity stays as it was."""
    if isinstance(err, ActionFailed | StepError):
        return str(err)
    if isinstance(err, PydanticSerializationError):
        return f"the step left data that is not JSON: {err}"
    return f"the step failed: {type(err).__name__}: {err}"
