"""A microstep and the done events it raises, cached as one quick plan.

When a microstep raises done events (a region reached its final state), the
macrostep processes each as its own microstep. If every one of those
selections is decided by the configuration alone (the transitions they pick
have no guards and do not enter through history), the whole chain is the
same every time the first microstep is: it is worked out once here, by the
same rules as `Macrostep._settle`, and cached as one `QuickPlan` (its
actions in order, each microstep's with its ``ctx.target``) so the step runs
it without a `Macrostep`. Anything else (guards, history, compared writes,
more internal microsteps than allowed) gets None and the macrostep runs.
"""

from __future__ import annotations

from engine.charts.plans import (
    MAX_INTERNAL_MICROSTEPS,
    Action,
    HierarchicalPlans,
    QuickPlan,
    target_setter,
)


def settle_quick(plans: HierarchicalPlans, start: str, first: QuickPlan) -> QuickPlan | None:
    """``first`` (a quick plan from configuration ``start`` that raises done
    events) followed by the microsteps of those events, or None when they
    depend on more than the configuration."""
    if first.compared:
        return None
    applied = [first]
    state = first.state
    queue = list(first.done)
    microsteps = 0
    while queue:
        event = queue.pop(0)
        chains, unguarded, _fixed = plans.selection(event, state)
        if not chains:
            continue
        if unguarded is None or any(move.history for move in unguarded):
            return None
        microsteps += 1
        if microsteps > MAX_INTERNAL_MICROSTEPS:
            return None  # the macrostep reports it
        chosen = unguarded
        key = plans.plan_key(state, chosen, None)
        if key not in plans.quick:
            plans.microplan(state, chosen, None)
        quick = plans.quick[key]
        if quick.compared:
            return None
        applied.append(quick)
        state = quick.state
        queue.extend(quick.done)
    return _joined(plans, start, applied)


def _joined(plans: HierarchicalPlans, start: str, applied: list[QuickPlan]) -> QuickPlan:
    first = applied[0]
    actions: list[Action] = list(first.actions)
    exited: set[str] = set()
    reentered: set[str] = set()
    for quick in applied:
        if quick is not first and quick.actions:
            actions.append(target_setter(quick.target))
            actions.extend(quick.actions)
        # As `Macrostep._reentered`: states entered again after some microstep left them.
        exited.update(quick.plan.exits)
        reentered.update(state for state in quick.plan.enters if state in exited)
    if len(applied) == 1:
        reentered = set(first.plan.reentered)
    last = applied[-1]
    return QuickPlan(
        first.target,
        tuple(actions),
        (),
        (),
        (),
        (),
        first.plan,  # the first microstep's; the others are in the fields above
        last.state,
        tuple(index for quick in applied for index in quick.fired),
        tuple(state for quick in applied for state in quick.entered),
        plans.timer_plan(start, last.state, frozenset(reentered)),
        tuple(record for quick in applied for record in quick.records),
    )
