"""The hierarchical step: selection, microsteps and done events, on cached plans.

A chart with compound or parallel states (or entry/exit actions) steps here;
a flat chart keeps its (event, state) table in engine/charts/compiled.py.
Per (event, configuration) the transitions each active atomic state would
try are worked out once (`chains`), and per (configuration, chosen
transitions) what the microstep exits and enters (`plan_microstep`): the hot
path is two dict lookups, the guards and the actions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from engine.charts.configuration import atomic_states
from engine.charts.hierarchy import SearchOrder, StateTree
from engine.charts.microstep import MicroPlan, Move, plan_initial, plan_microstep
from engine.charts.timers import CompiledTimer, TimerPlan, configuration_timer_plan
from engine.rules import StepContext

MAX_INTERNAL_MICROSTEPS = 100
_CACHE_LIMIT = 4096

Guard = Callable[[StepContext], bool]
Action = Callable[[StepContext], None]


class StepError(Exception):
    """The step cannot be taken as the chart says (the event is an error)."""


@dataclass(frozen=True, slots=True)
class CompiledTransition:
    index: int
    event: str
    sources: tuple[str, ...]
    target: str | None
    history: str | None
    guards: tuple[Guard, ...]
    actions: tuple[Action, ...]

    @property
    def label(self) -> str:
        return f"transitions[{self.index}] (event {self.event!r})"


# Per active atomic state, in document order: the transitions it tries, best
# first, each with the move it makes from the state it was found at.
Chain = tuple[tuple[CompiledTransition, Move], ...]
Chains = tuple[Chain, ...]


@dataclass(slots=True)
class Progress:
    """What a hierarchical step did, for `engine.step` to turn into a result."""

    state: str
    history: dict[str, list[str]] | None
    fired: list[int] = field(default_factory=list)
    entered: list[str] = field(default_factory=list)
    timers: TimerPlan = ((), ())
    tried: bool = False  # some transition matched the event (its guards may have said no)


class HierarchicalPlans:
    """The compiled form of a chart with nesting, regions or entry/exit actions."""

    def __init__(
        self,
        tree: StateTree,
        transitions: list[CompiledTransition],
        entry: Mapping[str, tuple[Action, ...]],
        exit: Mapping[str, tuple[Action, ...]],
        timers: list[CompiledTimer],
        search_order: SearchOrder,
    ) -> None:
        self.tree = tree
        self.transitions = transitions
        self.entry = entry
        self.exit = exit
        self.timers = timers
        self.search_order = search_order
        self.by_event_source: dict[tuple[str, str], list[CompiledTransition]] = {}
        for transition in transitions:
            for source in transition.sources:
                key = (transition.event, source)
                self.by_event_source.setdefault(key, []).append(transition)
        self.history_targets = frozenset(
            t.target for t in transitions if t.history is not None and t.target is not None
        )
        self.initial_plan = plan_initial(tree)
        self._chains: dict[tuple[str, str], Chains] = {}
        self._moves: dict[Move, Move] = {}
        self._micro: dict[tuple[str, tuple[Move, ...]], MicroPlan] = {}
        self._timer_plans: dict[tuple[str, str, frozenset[str]], TimerPlan] = {}

    def chains(self, event_type: str, state: str) -> Chains:
        found = self._chains.get((event_type, state))
        if found is None:
            found = tuple(
                chain for leaf in atomic_states(state) if (chain := self._chain(event_type, leaf))
            )
            if len(self._chains) >= _CACHE_LIMIT:
                self._chains.clear()
            self._chains[(event_type, state)] = found
        return found

    def _chain(self, event_type: str, leaf: str) -> Chain:
        return tuple(
            (transition, self._move(transition, source))
            for source in self.search_order(self.tree, leaf)
            for transition in self.by_event_source.get((event_type, source), ())
        )

    def _move(self, transition: CompiledTransition, source: str) -> Move:
        move = Move(transition.index, source, transition.target, transition.history)
        # One object per (transition, source): the microstep cache hashes them.
        return self._moves.setdefault(move, move)

    def microplan(
        self, state: str, candidates: tuple[Move, ...], history: Mapping[str, list[str]] | None
    ) -> MicroPlan:
        key = (state, candidates)
        plan = self._micro.get(key)
        if plan is None:
            plan = plan_microstep(
                self.tree, atomic_states(state), candidates, history or {}, self.history_targets
            )
            if not plan.uses_history:
                if len(self._micro) >= _CACHE_LIMIT:
                    self._micro.clear()
                self._micro[key] = plan
        elif any(m.history for m in plan.moves) and history:
            # Cached before any history was recorded: plan again with it.
            plan = plan_microstep(
                self.tree, atomic_states(state), candidates, history, self.history_targets
            )
        return plan

    def timer_plan(self, before: str, after: str, reentered: frozenset[str]) -> TimerPlan:
        key = (before, after, reentered)
        plan = self._timer_plans.get(key)
        if plan is None:
            tree = self.tree
            old = frozenset(tree.active_states(atomic_states(before))) if before else frozenset()
            new = frozenset(tree.active_states(atomic_states(after)))
            plan = configuration_timer_plan(self.timers, old, new, reentered)
            if len(self._timer_plans) >= _CACHE_LIMIT:
                self._timer_plans.clear()
            self._timer_plans[key] = plan
        return plan
