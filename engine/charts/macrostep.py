"""One external event through a hierarchical chart: a macrostep.

The new entity's initial entry, the selection of the event's transitions
(per active atomic state, inner before outer, document order; conflicts
dropped), the microstep that exits, runs the transitions' actions and
enters, then the done events that microstep raised, each its own microstep,
until none is left (at most `MAX_INTERNAL_MICROSTEPS`). docs/statechart-
semantics.md describes the rules; engine/charts/microstep.py computes what
each microstep exits and enters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.charts.compared import run_compared
from engine.charts.microstep import MicroPlan, Move
from engine.charts.plans import (
    MAX_INTERNAL_MICROSTEPS,
    Action,
    Chains,
    HierarchicalPlans,
    Progress,
    QuickPlan,
    StepError,
)
from engine.charts.settled import settle_quick
from engine.rules import StepContext

CopyData = Callable[[dict[str, Any]], dict[str, Any]]


def run_macrostep(
    plans: HierarchicalPlans,
    ctx: StepContext,
    event_type: str,
    state: str,
    history: dict[str, list[str]] | None,
    copy_data: CopyData | None,
    enter_initial: bool,
) -> Progress | QuickPlan:
    """The step of one event; the common case (one transition whose microstep
    is cached as a `QuickPlan`) without building a `Macrostep`: that plan is
    then the answer (it keeps the history as it was)."""
    if enter_initial:
        return Macrostep(plans, ctx, state, history, copy_data).run(event_type, True)
    chains, unguarded, fixed = plans.selection(event_type, state)
    if not chains:
        return Progress(state, history)
    candidates = unguarded if unguarded is not None else select(ctx, chains)
    if not candidates:
        return Progress(state, history, tried=True)
    # Without history the key is the pair, as `plan_key` would make it.
    key = plans.plan_key(state, candidates, history) if history else (state, candidates)
    quick = plans.quick.get(key)
    if quick is None:
        macrostep = Macrostep(plans, ctx, state, history, copy_data)
        return macrostep.run(event_type, False, candidates)
    if quick.done:
        if key in plans.settled:
            settled = plans.settled[key]
        else:
            settled = plans.settled[key] = settle_quick(plans, state, quick)
        if settled is None:
            return _run_then_settle(plans, ctx, state, history, copy_data, quick)
        quick = settled
    if fixed:
        plans.remember(event_type, state, quick)  # the next such step skips all the above
    if quick.actions:
        if copy_data is not None:
            ctx.data = copy_data(ctx.data)
        run_quick(plans, ctx, quick)
    return quick


def _run_then_settle(
    plans: HierarchicalPlans,
    ctx: StepContext,
    state: str,
    history: dict[str, list[str]] | None,
    copy_data: CopyData | None,
    quick: QuickPlan,
) -> Progress:
    """A quick plan's actions, then its done events through a `Macrostep`."""
    if quick.actions:
        if copy_data is not None:
            ctx.data = copy_data(ctx.data)
        run_quick(plans, ctx, quick)
    # The data is copied already if the quick plan had actions to run.
    copy_later = None if quick.actions else copy_data
    return Macrostep(plans, ctx, state, history, copy_later).resume(quick)


def run_quick(plans: HierarchicalPlans, ctx: StepContext, quick: QuickPlan) -> None:
    """A quick plan's actions, on data already copied."""
    ctx.target = quick.target
    if quick.compared:
        for action in quick.exits:
            action(ctx)
        run_compared(plans, ctx, quick.compared)
        for action in quick.entries:
            action(ctx)
    else:
        for action in quick.actions:
            action(ctx)


def select(ctx: StepContext, chains: Chains) -> tuple[Move, ...]:
    """The event's transitions: per active atomic state (in document order)
    the first in its chain whose guards hold, each transition once."""
    if len(chains) == 1:
        for transition, move in chains[0]:
            for guard in transition.guards:
                if not guard(ctx):
                    break
            else:
                return (move,)
        return ()
    verdicts: dict[int, bool] = {}
    taken: set[int] = set()
    chosen: list[Move] = []
    for chain in chains:
        for transition, move in chain:
            index = transition.index
            holds = verdicts.get(index)
            if holds is None:
                holds = True
                for guard in transition.guards:
                    if not guard(ctx):
                        holds = False
                        break
                verdicts[index] = holds
            if holds:
                if index not in taken:
                    taken.add(index)
                    chosen.append(move)
                break
    return tuple(chosen)


class Macrostep:
    """The run of one event; ``run`` returns what it did."""

    __slots__ = ("applied", "copied", "copy_data", "ctx", "plans", "progress", "queue")

    def __init__(
        self,
        plans: HierarchicalPlans,
        ctx: StepContext,
        state: str,
        history: dict[str, list[str]] | None,
        copy_data: CopyData | None,
    ) -> None:
        self.plans = plans
        self.ctx = ctx
        self.copy_data = copy_data
        self.copied = copy_data is None
        self.progress = Progress(state, history)
        self.applied: list[MicroPlan] = []
        self.queue: list[str] = []

    def run(
        self, event_type: str, enter_initial: bool, chosen: tuple[Move, ...] | None = None
    ) -> Progress:
        """``chosen``: the event's transitions when the caller selected them already."""
        progress = self.progress
        start = progress.state
        if enter_initial:
            self._enter_initial()
            self._settle()  # SCXML: the initial entry's done events before the event
        candidates = chosen if chosen is not None else self._select(event_type)
        if candidates:
            self._take(candidates)
            self._settle()
        if progress.fired:
            progress.timers = self.plans.timer_plan(
                "" if enter_initial else start, progress.state, self._reentered()
            )
        return progress

    def resume(self, quick: QuickPlan) -> Progress:
        """After a quick plan has run (its actions included): its done events."""
        progress = self.progress
        start = progress.state
        self._record(quick)
        self._settle()
        progress.timers = self.plans.timer_plan(start, progress.state, self._reentered())
        return progress

    def _select(self, event_type: str, external: bool = True) -> tuple[Move, ...]:
        chains, unguarded, _fixed = self.plans.selection(event_type, self.progress.state)
        if not chains:
            return ()
        if external:
            self.progress.tried = True
        return unguarded if unguarded is not None else select(self.ctx, chains)

    def _settle(self) -> None:
        """Process the raised done events, each as its own microstep."""
        microsteps = 0
        while self.queue:
            event = self.queue.pop(0)
            candidates = self._select(event, external=False)
            if not candidates:
                continue
            microsteps += 1
            if microsteps > MAX_INTERNAL_MICROSTEPS:
                raise StepError(
                    f"done events did not settle after {MAX_INTERNAL_MICROSTEPS} "
                    f"internal microsteps (last: {event})"
                )
            self._take(candidates)

    def _enter_initial(self) -> None:
        """A new entity's initial configuration: entry actions, outermost first."""
        plans, progress = self.plans, self.progress
        plan = plans.initial_plan
        self.ctx.target = progress.state
        for state in plan.enters:
            self._run(plans.entry.get(state, ()))
        progress.state = plan.state
        progress.entered += plan.entered
        self.queue.extend(event for event in plan.done if event in plans.handled)
        self.applied.append(plan)

    def _take(self, candidates: tuple[Move, ...]) -> None:
        """One microstep (its plan cached as a quick plan): exit actions, the
        transitions' actions, entry actions; history kept, done events queued."""
        plans, progress = self.plans, self.progress
        key = plans.plan_key(progress.state, candidates, progress.history)
        quick = plans.quick.get(key)
        if quick is None:
            plans.microplan(progress.state, candidates, progress.history)
            quick = plans.quick[key]
        if quick.actions:
            if not self.copied:
                self._copy()
            run_quick(plans, self.ctx, quick)
        self._record(quick)

    def _record(self, quick: QuickPlan) -> None:
        progress = self.progress
        progress.state = quick.state
        progress.history = quick.history_after(progress.history)
        progress.fired += quick.fired
        progress.entered += quick.entered
        self.queue.extend(quick.done)
        self.applied.append(quick.plan)

    def _run(self, actions: tuple[Action, ...]) -> None:
        if not actions:
            return
        if not self.copied:
            self._copy()
        ctx = self.ctx
        for action in actions:
            action(ctx)

    def _copy(self) -> None:
        """Copy on write: the data is copied once, before the step's first action."""
        if self.copy_data is not None:
            self.ctx.data = self.copy_data(self.ctx.data)
        self.copied = True

    def _reentered(self) -> frozenset[str]:
        if len(self.applied) == 1:
            return self.applied[0].reentered
        exited: set[str] = set()
        reentered: set[str] = set()
        for plan in self.applied:
            exited.update(plan.exits)
            reentered.update(state for state in plan.enters if state in exited)
        return frozenset(reentered)
