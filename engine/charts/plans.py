"""The hierarchical step: selection, microsteps and done events, on cached plans.

A chart with compound or parallel states (or entry/exit actions) steps here;
a flat chart keeps its (event, state) table in engine/charts/compiled.py.
Per (event, configuration) the transitions each active atomic state would
try are worked out once (`selection`: the chains, and the choice itself when
no guard can change it), and per (configuration, chosen transitions) what
the microstep exits and enters (`plan_microstep`), with the done events it
raises when those are as fixed (engine/charts/settled.py): the hot path is
two dict lookups, the guards and the actions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

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
# An event's chains in a configuration, the choice when no guard can change
# it, and whether that choice's plan is then fixed (no move enters through
# history, so what is recorded cannot change it): see `HierarchicalPlans.selection`.
Selection = tuple[Chains, tuple[Move, ...] | None, bool]


@dataclass(slots=True)
class Progress:
    """What a hierarchical step did, for `engine.step` to turn into a result."""

    state: str
    history: dict[str, list[str]] | None
    fired: tuple[int, ...] = ()
    entered: tuple[str, ...] = ()
    timers: TimerPlan = ((), ())
    tried: bool = False  # some transition matched the event (its guards may have said no)


@dataclass(frozen=True, slots=True)
class ComparedMove:
    """One move of a microstep whose transitions' writes are compared: the
    ``ctx.target`` its actions see, its actions, and its label for the error."""

    move: Move
    target: str
    actions: tuple[Action, ...]
    label: str


@dataclass(frozen=True, slots=True)
class QuickPlan:
    """A cached microstep ready to run without a `Macrostep`: every action
    (exit, transitions' with ``ctx.target`` set before each, entry) in one
    tuple, and everything the step returns. When two of its transitions have
    actions (``compare``: their writes are compared) the macrostep runs it
    through ``plan``; the done events it raises that some transition handles
    (``done``) are processed after it."""

    target: str
    actions: tuple[Action, ...]
    compared: tuple[ComparedMove, ...]  # empty unless two moves have actions; then
    exits: tuple[Action, ...]  # the exit actions, the moves one by one (``compared``),
    entries: tuple[Action, ...]  # then the entry actions
    done: tuple[str, ...]
    plan: MicroPlan
    state: str
    fired: tuple[int, ...]
    entered: tuple[str, ...]
    timers: TimerPlan
    records: tuple[tuple[str, tuple[str, ...]], ...]

    def history_after(self, history: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        if not self.records:
            return history
        updated = dict(history) if history else {}
        for state, leaves in self.records:  # a loop, not a generator: one frame fewer
            updated[state] = list(leaves)
        return updated


def target_setter(target: str) -> Action:
    def set_target(ctx: StepContext) -> None:
        ctx.target = target

    return set_target


def _unguarded_choice(chains: Chains) -> tuple[Move, ...] | None:
    """What `engine.charts.macrostep.select` chooses when the first transition
    of each chain has no guard (each transition once), else None."""
    chosen: list[Move] = []
    taken: set[int] = set()
    for chain in chains:
        transition, move = chain[0]
        if transition.guards:
            return None
        if transition.index not in taken:
            taken.add(transition.index)
            chosen.append(move)
    return tuple(chosen)


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
        self.handled = frozenset(t.event for t in transitions)
        self.history_targets = frozenset(
            t.target for t in transitions if t.history is not None and t.target is not None
        )
        self.initial_plan = plan_initial(tree)
        self._chains: dict[tuple[str, str], Selection] = {}
        self._moves: dict[tuple[int, str], Move] = {}
        # `plan_key` -> the microstep, and the same ready to run.
        self._micro: dict[tuple[object, ...], MicroPlan] = {}
        self.quick: dict[tuple[object, ...], QuickPlan] = {}
        # `plan_key` of a quick plan that raises done events -> it and their
        # microsteps as one plan (engine/charts/settled.py), or None if they
        # depend on more than the configuration.
        self.settled: dict[tuple[object, ...], QuickPlan | None] = {}
        self._timer_plans: dict[tuple[str, str, frozenset[str]], TimerPlan] = {}
        # (event, configuration) -> the quick plan (done events settled) of a
        # step that the configuration alone decides (`Selection`'s fixed
        # choice): the step runs it without looking anything else up.
        self.shortcuts: dict[tuple[str, str], QuickPlan] = {}

    def selection(self, event_type: str, state: str) -> Selection:
        """The event's chains in this configuration and, when no guard can
        change the choice (the first transition of every chain has none, so
        each chain picks its first), the transitions chosen: the same every
        time; and whether their plan is fixed too (none enters through history)."""
        found = self._chains.get((event_type, state))
        if found is None:
            chains = tuple(
                chain for leaf in atomic_states(state) if (chain := self._chain(event_type, leaf))
            )
            unguarded = _unguarded_choice(chains)
            fixed = unguarded is not None and not any(move.history for move in unguarded)
            found = (chains, unguarded, fixed)
            if len(self._chains) >= _CACHE_LIMIT:
                self._chains.clear()
            self._chains[(event_type, state)] = found
        return found

    def remember(self, event_type: str, state: str, quick: QuickPlan) -> None:
        """``quick`` is what ``event_type`` always does in ``state`` (a fixed choice)."""
        if len(self.shortcuts) >= _CACHE_LIMIT:
            self.shortcuts.clear()
        self.shortcuts[(event_type, state)] = quick

    def _chain(self, event_type: str, leaf: str) -> Chain:
        return tuple(
            (transition, self._move(transition, source))
            for source in self.search_order(self.tree, leaf)
            for transition in self.by_event_source.get((event_type, source), ())
        )

    def _move(self, transition: CompiledTransition, source: str) -> Move:
        # One object per (transition, source): the microstep cache hashes them.
        key = (transition.index, source)
        move = self._moves.get(key)
        if move is None:
            move = Move(transition.index, source, transition.target, transition.history)
            self._moves[key] = move
        return move

    def plan_key(
        self, state: str, candidates: tuple[Move, ...], history: Mapping[str, list[str]] | None
    ) -> tuple[object, ...]:
        """What a microstep's plan depends on: the configuration, the moves and,
        for a move entering through history, what is recorded for its target."""
        if history and self.history_targets:
            recalled = tuple(
                tuple(history.get(move.target) or ())
                for move in candidates
                if move.history and move.target
            )
            if any(recalled):
                return (state, candidates, recalled)
        return (state, candidates)

    def microplan(
        self, state: str, candidates: tuple[Move, ...], history: Mapping[str, list[str]] | None
    ) -> MicroPlan:
        key = self.plan_key(state, candidates, history)
        plan = self._micro.get(key)
        if plan is None:
            plan = plan_microstep(
                self.tree, atomic_states(state), candidates, history or {}, self.history_targets
            )
            if len(self._micro) >= _CACHE_LIMIT:
                self._micro.clear()
                self.quick.clear()
                self.settled.clear()
            self._micro[key] = plan
            self.quick[key] = self._quick(state, plan)
        return plan

    def _quick(self, state: str, plan: MicroPlan) -> QuickPlan:
        first = plan.moves[0]
        exits = tuple(action for exited in plan.exits for action in self.exit.get(exited, ()))
        entries = tuple(action for state in plan.enters for action in self.entry.get(state, ()))
        actions = list(exits)
        compared: list[ComparedMove] = []
        with_actions = 0
        for move in plan.moves:
            transition = self.transitions[move.index]
            own = transition.actions
            with_actions += bool(own)
            compared.append(ComparedMove(move, move.target or move.source, own, transition.label))
            if move is not first:
                actions.append(target_setter(move.target or move.source))
            actions.extend(own)
        actions.extend(entries)
        return QuickPlan(
            first.target or first.source,
            tuple(actions),
            tuple(compared) if with_actions > 1 else (),
            exits,
            entries,
            tuple(event for event in plan.done if event in self.handled),
            plan,
            plan.state,
            tuple(move.index for move in plan.moves),
            plan.entered,
            self.timer_plan(state, plan.state, plan.reentered),
            plan.records,
        )

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
