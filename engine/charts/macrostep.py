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

import copy
from collections.abc import Callable
from typing import Any

from engine.charts.microstep import MicroPlan, Move
from engine.charts.plans import (
    MAX_INTERNAL_MICROSTEPS,
    Action,
    HierarchicalPlans,
    Progress,
    StepError,
)
from engine.rules import StepContext

CopyData = Callable[[dict[str, Any]], dict[str, Any]]


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

    def run(self, event_type: str, enter_initial: bool) -> Progress:
        progress = self.progress
        start = progress.state
        if enter_initial:
            self.ctx.target = start
            self._apply(self.plans.initial_plan)
            self._settle()  # SCXML: the initial entry's done events before the event
        candidates = self._select(event_type, external=True)
        if candidates:
            self._apply(self.plans.microplan(progress.state, candidates, progress.history))
            self._settle()
        if progress.fired:
            progress.timers = self.plans.timer_plan(
                "" if enter_initial else start, progress.state, self._reentered()
            )
        return progress

    def _select(self, event_type: str, external: bool = False) -> tuple[Move, ...]:
        """The event's transitions, one per active atomic state whose chain has
        one whose guards hold, in document order of those states, each once."""
        chains = self.plans.chains(event_type, self.progress.state)
        if not chains:
            return ()
        if external:
            self.progress.tried = True
        ctx = self.ctx
        verdicts: dict[int, bool] = {}
        chosen: list[Move] = []
        for chain in chains:
            for transition, move in chain:
                holds = verdicts.get(transition.index)
                if holds is None:
                    holds = all(guard(ctx) for guard in transition.guards)
                    verdicts[transition.index] = holds
                if holds:
                    if all(m.index != move.index for m in chosen):
                        chosen.append(move)
                    break
        return tuple(chosen)

    def _settle(self) -> None:
        """Process the raised done events, each as its own microstep."""
        microsteps = 0
        while self.queue:
            event = self.queue.pop(0)
            candidates = self._select(event)
            if not candidates:
                continue
            microsteps += 1
            if microsteps > MAX_INTERNAL_MICROSTEPS:
                raise StepError(
                    f"done events did not settle after {MAX_INTERNAL_MICROSTEPS} "
                    f"internal microsteps (last: {event})"
                )
            self._apply(
                self.plans.microplan(self.progress.state, candidates, self.progress.history)
            )

    def _apply(self, plan: MicroPlan) -> None:
        """Run one microstep: exit actions, history, transitions' actions, entry actions."""
        plans, ctx, progress = self.plans, self.ctx, self.progress
        if plan.moves:
            first = plan.moves[0]
            ctx.target = first.target or first.source
        for state in plan.exits:
            self._run(plans.exit.get(state, ()))
        if plan.records:
            history = dict(progress.history or {})
            history.update((state, list(leaves)) for state, leaves in plan.records)
            progress.history = history
        if len(plan.moves) == 1:
            move = plan.moves[0]
            self._run(plans.transitions[move.index].actions)
        elif plan.moves:
            self._run_parallel_moves(plan.moves)
        for state in plan.enters:
            self._run(plans.entry.get(state, ()))
        progress.state = plan.state
        progress.fired.extend(move.index for move in plan.moves)
        progress.entered.extend(plan.entered)
        self.queue.extend(plan.done)
        self.applied.append(plan)

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

    def _run_parallel_moves(self, moves: tuple[Move, ...]) -> None:
        """Transitions of several regions on one event: each one's actions, then
        the check that no two regions wrote the same top-level data key."""
        plans, ctx = self.plans, self.ctx
        written: list[tuple[Move, set[str]]] = []
        for move in moves:
            transition = plans.transitions[move.index]
            ctx.target = move.target or move.source
            if not self.copied:
                self._copy()
            before = copy.deepcopy(ctx.data)
            self._run(transition.actions)
            keys = _changed_keys(before, ctx.data)
            for other, other_keys in written:
                shared = keys & other_keys
                if shared and plans.tree.in_different_regions(other.source, move.source):
                    raise StepError(
                        f"{plans.transitions[other.index].label} and {transition.label} run in "
                        f"parallel regions and both write data key {min(shared)!r}"
                    )
            written.append((move, keys))

    def _reentered(self) -> frozenset[str]:
        if len(self.applied) == 1:
            return self.applied[0].reentered
        exited: set[str] = set()
        reentered: set[str] = set()
        for plan in self.applied:
            exited.update(plan.exits)
            reentered.update(state for state in plan.enters if state in exited)
        return frozenset(reentered)


def _changed_keys(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {
        key
        for key in before.keys() | after.keys()
        if key not in before or key not in after or before[key] != after[key]
    }
