"""A checked chart compiled to its (event, state) dispatch table.

For each event and source state, the transitions that may fire, in chart
order, with their guards and actions ready to run on a `StepContext`. Nothing
is kept per entity: the step hands in an entity's state and data and reads
the result back. The `transitions` Machine of the same chart is the reference
semantics of a flat chart (engine/charts/reference.py), built only when asked
for. A chart with compound or parallel states, or entry/exit actions, also
gets its `HierarchicalPlans` (engine/charts/plans.py), which its steps use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from engine.charts.configuration import active_states, join_states
from engine.charts.hierarchy import SearchOrder, StateTree, expand_sources, inner_first
from engine.charts.loader import GuardRef, LoadedChart
from engine.charts.plans import CompiledTransition, HierarchicalPlans
from engine.charts.rule_calls import (
    ActionFailed,
    GuardFailed,
    builtin_guard,
    compile_actions,
    guard_check,
)
from engine.charts.schema import ChartSpec, StateSpec
from engine.charts.timers import CompiledTimer, TimerPlan
from engine.rules import Rules, StepContext

if TYPE_CHECKING:
    from engine.charts.reference import ReferenceMachine

__all__ = ["ActionFailed", "CompiledChart", "CompiledTimer", "GuardFailed"]


@dataclass(frozen=True, slots=True)
class _Route:
    """One transition as the step runs it: guards, then target, then actions."""

    index: int
    target: str | None
    guards: tuple[Callable[[StepContext], bool], ...]
    actions: tuple[Callable[[StepContext], None], ...]
    # The timers it cancels and arms from the source it is filed under (the
    # flat step's table has one route per (event, source)): known when compiled.
    timers: TimerPlan = ((), ())


class CompiledChart:
    """A chart ready to step entities."""

    def __init__(
        self, loaded: LoadedChart, rules: Rules, *, search_order: SearchOrder = inner_first
    ) -> None:
        self.spec: ChartSpec = loaded.spec
        self.file = loaded.file
        self.name = self.spec.name
        self.version = self.spec.version
        self.entity_kind = self.spec.entity_kind
        self.tree = StateTree.from_spec(self.spec)
        self.final_states = frozenset(n.id for n in self.tree.nodes.values() if n.kind == "final")
        self.accepted_events = frozenset(self.spec.events)
        self.timers = [CompiledTimer.from_spec(t) for t in self.spec.timers]
        self.timers_by_state: dict[str, list[CompiledTimer]] = {}
        for timer in self.timers:
            for state_name in timer.states:
                self.timers_by_state.setdefault(state_name, []).append(timer)
        self._timer_plans: dict[tuple[str, str], TimerPlan] = {}
        self.refusals: dict[tuple[str, str], str] = {
            (refusal.event, source): refusal.reason
            for refusal in self.spec.refusals
            for source in refusal.source
        }
        self._in_order: list[tuple[str, list[str], _Route]] = []
        self._reference: ReferenceMachine | None = None
        compiled = self._compile_transitions(rules)
        self.plans: HierarchicalPlans | None = None
        self.initial: str = self.spec.initial or ""
        if not self.tree.is_flat or any(n.entry or n.exit for n in self._state_specs()):
            self.plans = HierarchicalPlans(
                self.tree,
                compiled,
                self._state_actions(rules, "entry"),
                self._state_actions(rules, "exit"),
                self.timers,
                search_order,
            )
            self.initial = join_states(self.tree.initial_configuration())

    def _compile_transitions(self, rules: Rules) -> list[CompiledTransition]:
        """The flat (event, state) table and every transition compiled."""
        allowed: dict[str, set[str]] = {}
        routes: dict[tuple[str, str], list[_Route]] = {}
        compiled = []
        for index, transition in enumerate(self.spec.transitions):
            sources = expand_sources(self.tree, transition)
            allowed.setdefault(transition.event, set()).update(sources)
            guards = tuple(
                guard_check(rules.guards.get(ref.name) or builtin_guard(ref), ref)
                for ref in (GuardRef.parse(text) for text in transition.guards)
            )
            actions = compile_actions(rules, transition.actions)
            route = _Route(index, transition.target, guards, actions)
            for source in sources:
                timers = self.timer_plan(source, transition.target or source)
                routes.setdefault((transition.event, source), []).append(
                    _Route(index, transition.target, guards, actions, timers)
                )
            self._in_order.append((transition.event, sources, route))
            compiled.append(
                CompiledTransition(
                    index,
                    transition.event,
                    tuple(sources),
                    transition.target,
                    transition.history,
                    guards,
                    actions,
                )
            )
        self.allowed = {event: frozenset(states) for event, states in allowed.items()}
        self.routes = {key: tuple(found) for key, found in routes.items()}
        return compiled

    def _state_specs(self) -> list[StateSpec]:
        found: list[StateSpec] = []
        pending = list(self.spec.states.values())
        while pending:
            state = pending.pop()
            found.append(state)
            pending.extend(state.states.values())
        return found

    def _state_actions(
        self, rules: Rules, which: Literal["entry", "exit"]
    ) -> dict[str, tuple[Callable[[StepContext], None], ...]]:
        found = {}
        for node in self.tree.nodes.values():
            spec = _state_spec(self.spec, node.id)
            names = spec.entry if which == "entry" else spec.exit
            if names:
                found[node.id] = compile_actions(rules, names)
        return found

    def accepts(self, event_type: str, state: str) -> bool:
        """True when some transition on ``event_type`` starts at a state active
        in the configuration ``state`` (its guards may still say no)."""
        sources = self.allowed.get(event_type)
        if not sources:
            return False
        if self.plans is None:
            return state in sources
        return not sources.isdisjoint(active_states(state))

    def allows(self, event_type: str, state: str) -> bool:
        return state in self.allowed.get(event_type, ())

    def timer_plan(self, old: str, new: str) -> TimerPlan:
        """For a transition ``old`` -> ``new``: the timers to cancel and the ones
        whose deadline must be (re)computed. Cached per pair; the step asks every time.

        Leaving a state cancels its timers unless ``new`` keeps them. A timer of
        both states keeps its 'after' deadline, while an 'at' timer is re-read on
        every transition (a refreshed token's expiry moves it)."""
        plan = self._timer_plans.get((old, new))
        if plan is None:
            staying = self.timers_by_state.get(new, ())
            if old != new:
                old_timers = self.timers_by_state.get(old, ())
                cancel = tuple(t.cancellation for t in old_timers if t not in staying)
                entering = tuple(t for t in staying if t not in old_timers or t.at_path is not None)
            else:
                cancel = ()
                entering = tuple(t for t in staying if t.at_path is not None)
            plan = (cancel, entering)
            self._timer_plans[(old, new)] = plan
        return plan

    def fire(
        self,
        event_type: str,
        state: str,
        ctx: StepContext,
        copy_data: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> str | None:
        """Fire ``event_type`` from ``state``; the new state, or None if no
        transition's guards held (their refusals are in ``ctx.refusals``).

        Runs the chart's (event, state) table directly, with the semantics the
        `transitions` Machine gives the same chart: candidates in chart order,
        guards short-circuiting, target set before the actions run. The Machine
        stays the reference (`fire_with_machine`): a differential property test
        holds the two equal, and the table is several times faster.

        ``copy_data`` (copy on write): guards only read ``ctx.data``, so it is
        copied only once a transition is chosen and has actions to run."""
        route = self.fire_route(event_type, state, ctx, copy_data)
        return None if route is None else route.target or state

    def fire_route(
        self,
        event_type: str,
        state: str,
        ctx: StepContext,
        copy_data: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> _Route | None:
        """`fire`, answering the transition that fired."""
        return fire_first(self.routes.get((event_type, state), ()), state, ctx, copy_data)

    def fire_with_machine(self, event_type: str, state: str, ctx: StepContext) -> str | None:
        """The same, through the chart's `transitions.Machine` (the reference)."""
        if self._reference is None:
            # Deferred: only the differential test fires the reference, and
            # building a Machine costs every chart's start.
            from engine.charts.reference import ReferenceMachine, ReferenceTransition

            self._reference = ReferenceMachine(
                self.spec.states,
                self.initial,
                (
                    ReferenceTransition(event, sources, route.target, route.guards, route.actions)
                    for event, sources, route in self._in_order
                ),
            )
        return self._reference.fire(event_type, state, ctx)

    def transitions_as_edges(self) -> list[tuple[str, str, str, list[str]]]:
        """(source, target, event, guards) for each edge; internal ones target their source."""
        edges = []
        for transition in self.spec.transitions:
            for source in expand_sources(self.tree, transition):
                edges.append(
                    (source, transition.target or source, transition.event, list(transition.guards))
                )
        return edges


def fire_first(
    routes: tuple[_Route, ...],
    state: str,
    ctx: StepContext,
    copy_data: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> _Route | None:
    """The first of ``routes`` (one (event, state) entry of `CompiledChart.routes`)
    whose guards hold, its actions run; None if none holds (the flat step's core)."""
    for route in routes:
        for guard in route.guards:
            if not guard(ctx):
                break
        else:
            ctx.target = route.target or state
            if route.actions:
                if copy_data is not None:
                    ctx.data = copy_data(ctx.data)
                for action in route.actions:
                    action(ctx)
            return route
    return None


def _state_spec(spec: ChartSpec, state_id: str) -> StateSpec:
    names = state_id.split(".")
    state = spec.states[names[0]]
    for name in names[1:]:
        state = state.states[name]
    return state
