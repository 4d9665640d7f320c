"""A small, plainly written statechart interpreter: the oracle for what the
`transitions` HierarchicalMachine cannot express (history, done events,
entering a region from outside, SCXML's external transitions into a child).

It follows the documented step semantics (docs/statechart-semantics.md, close
to SCXML's algorithm) one rule at a time, with no caching and no compiled
plans, so that it is easy to read against the text. It knows only the rule
vocabulary of the generated charts (tests/property/hierarchy_charts.py):

- guard ``flag=K``: data[K] is odd (``!flag=K``: it is not); the built-in
  ``in_state=ID``: ID is active in the configuration the step started from;
- action ``note=X``: appends X to the step's trace (the candidate emits a
  ``note`` command); ``bump=K``: data[K] += 1 (a write every time).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.charts.schema import ChartSpec, TransitionSpec
from tests.property.hierarchy_tree import TOP, Tree

MAX_INTERNAL_MICROSTEPS = 100


@dataclass(frozen=True)
class Transition:
    index: int
    event: str
    source: str
    target: str | None
    history: str | None
    guards: tuple[str, ...]
    actions: tuple[str, ...]


@dataclass
class Result:
    outcome: str  # "transitioned", "ignored" or "error"
    configuration: str
    data: dict[str, Any]
    history: dict[str, list[str]]
    trace: list[str] = field(default_factory=list)
    fired: list[int] = field(default_factory=list)
    entered: list[str] = field(default_factory=list)
    timers: list[tuple[str, float | None, str]] = field(default_factory=list)


class StepError(Exception):
    """The step is an error: nothing it did is kept."""


def expand(spec: ChartSpec, tree: Tree, index: int, transition: TransitionSpec) -> list[Transition]:
    """One chart transition per source; ``*`` is every non-final atomic state."""
    sources: list[str] = []
    for source in transition.source:
        if source == "*":
            sources.extend(a for a in tree.atomic_ids() if not tree.nodes[a].final)
        else:
            sources.append(source)
    return [
        Transition(
            index,
            transition.event,
            source,
            transition.target,
            transition.history,
            tuple(transition.guards),
            tuple(transition.actions),
        )
        for source in sources
    ]


class Interpreter:
    def __init__(self, spec: ChartSpec) -> None:
        self.spec = spec
        self.tree = Tree(spec)
        self.transitions = [
            t
            for index, spec_t in enumerate(spec.transitions)
            for t in expand(spec, self.tree, index, spec_t)
        ]
        self.history_targets = {t.target for t in self.transitions if t.history and t.target}

    # -- the step ---------------------------------------------------------

    def initial_configuration(self) -> str:
        return self.tree.configuration(self.default_entry(TOP))

    def step(
        self,
        configuration: str,
        data: dict[str, Any],
        history: dict[str, list[str]] | None,
        event: str,
        is_new: bool,
        now: float = 0.0,
    ) -> Result:
        run = _Run(self, configuration, data, history or {})
        if is_new:
            run.start_active_timers = set()
        try:
            if is_new:
                run.enter(sorted(self.default_entry(TOP) - {TOP}, key=self.tree.entry_key), set())
            run.microstep(event)
            internal = 0
            while run.queue:
                done_event = run.queue.pop(0)
                if run.microstep(done_event):
                    internal += 1
                    if internal > MAX_INTERNAL_MICROSTEPS:
                        raise StepError("done events did not settle")
            run.check_region_writes()
        except StepError:
            return Result("error", configuration, data, history or {})
        if not run.fired:
            return Result("ignored", configuration, data, history or {})
        return Result(
            "transitioned",
            self.tree.configuration(run.active),
            run.data,
            run.history,
            run.trace,
            [t.index for t in run.fired],
            run.entered,
            run.timer_changes(now),
        )

    # -- the pieces -------------------------------------------------------

    def domain(self, t: Transition) -> str | None:
        """None when nothing is exited (targetless, or target == source); else the
        nearest compound proper ancestor of source and target, or the top."""
        if t.target is None or t.target == t.source:
            return None
        for ancestor in self.tree.ancestors(t.source):
            if ancestor == TOP:
                return TOP
            if self.tree.nodes[ancestor].kind == "compound" and self.tree.is_descendant(
                t.target, ancestor
            ):
                return ancestor
        return TOP

    def default_entry(self, state: str) -> set[str]:
        """A state and its default completion (initial children, every region)."""
        entering = {state}
        node = self.tree.nodes[state]
        if node.kind == "compound" and node.initial:
            entering |= self.default_entry(node.initial)
        elif node.kind == "parallel":
            for region in node.children:
                entering |= self.default_entry(region)
        return entering


class _Run:
    """One step in progress: the configuration, data and history it changes."""

    def __init__(
        self,
        interpreter: Interpreter,
        configuration: str,
        data: dict[str, Any],
        history: dict[str, list[str]],
    ) -> None:
        self.it = interpreter
        self.tree = interpreter.tree
        self.start_active = self.tree.active_from(configuration)
        self.active = set(self.start_active)
        self.data_before = data
        self.data = dict(data)
        self.history = {k: list(v) for k, v in history.items()}
        self.trace: list[str] = []
        self.fired: list[Transition] = []
        self.entered: list[str] = []
        self.queue: list[str] = []
        self.writes: list[tuple[Transition, set[str]]] = []
        self.exited: set[str] = set()
        self.entered_states: set[str] = set()
        self.start_active_timers = self._active_timers(self.start_active)

    def _active_timers(self, active: set[str]) -> set[str]:
        return {t.name for t in self.it.spec.timers if any(s in active for s in t.state)}

    def timer_changes(self, now: float) -> list[tuple[str, float | None, str]]:
        """Timers that stop being active are cancelled; those that become active,
        or one of whose states was exited and entered again, are armed."""
        after = self._active_timers(self.active)
        changes: list[tuple[str, float | None, str]] = []
        for timer in self.it.spec.timers:
            reentered = any(s in self.exited and s in self.entered_states for s in timer.state)
            if timer.name in self.start_active_timers and timer.name not in after:
                changes.append((timer.name, None, ""))
            elif timer.name in after and (timer.name not in self.start_active_timers or reentered):
                changes.append((timer.name, now + float(timer.after or 0), timer.event))
        return sorted(changes, key=str)

    def guard_holds(self, guard: str) -> bool:
        negated = guard.startswith("!")
        name, _, argument = guard.lstrip("!").partition("=")
        if name == "in_state":
            result = argument in self.start_active
        elif name == "flag":
            result = self.data_before.get(argument, 0) % 2 == 1
        else:
            raise AssertionError(f"unknown guard {guard}")
        return result != negated

    def run_action(self, action: str) -> None:
        name, _, argument = action.partition("=")
        if name == "note":
            self.trace.append(argument)
        elif name == "bump":
            self.data[argument] = self.data.get(argument, 0) + 1
        else:
            raise AssertionError(f"unknown action {action}")

    def select(self, event: str) -> list[Transition]:
        """Each active atomic state's first enabled transition, inner before
        outer; duplicates and conflicting later candidates dropped."""
        chosen: list[Transition] = []
        exits: list[set[str]] = []
        for atomic in self.tree.atomic_ids():
            if atomic not in self.active:
                continue
            candidate = self._candidate(atomic, event)
            if candidate is None or candidate in chosen:
                continue
            exit_set = self.exit_set(candidate)
            if any(exit_set & earlier for earlier in exits):
                continue
            chosen.append(candidate)
            exits.append(exit_set)
        return chosen

    def _candidate(self, atomic: str, event: str) -> Transition | None:
        for state in [atomic, *self.tree.ancestors(atomic)]:
            for t in self.it.transitions:
                if t.source == state and t.event == event and all(map(self.guard_holds, t.guards)):
                    return t
        return None

    def exit_set(self, t: Transition) -> set[str]:
        domain = self.it.domain(t)
        if domain is None:
            return set()
        return {s for s in self.active if self.tree.is_descendant(s, domain)}

    def microstep(self, event: str) -> bool:
        chosen = self.select(event)
        if not chosen:
            return False
        exiting: set[str] = set()
        for t in chosen:
            exiting |= self.exit_set(t)
        for state in exiting & self.it.history_targets:
            self.history[state] = [
                a
                for a in self.tree.atomic_ids()
                if a in self.active and self.tree.is_descendant(a, state)
            ]
        for state in sorted(exiting, key=self.tree.exit_key):
            for action in self.tree.nodes[state].exit:
                self.run_action(action)
            self.active.discard(state)
            self.exited.add(state)
        # The transitions' own actions run in document order (their order in
        # the chart), which need not be the order their atomic states chose them.
        self.check_region_writes()  # the previous microstep's
        self.writes = []
        for t in sorted(chosen, key=lambda t: t.index):
            before = dict(self.data)
            for action in t.actions:
                self.run_action(action)
            changed = {k for k in set(before) | set(self.data) if before.get(k) != self.data.get(k)}
            self.writes.append((t, changed))
            self.fired.append(t)
        entering: set[str] = set()
        through_history: set[str] = set()
        for t in chosen:
            domain = self.it.domain(t)
            if domain is not None and t.target is not None:
                self._add_target(t.target, t.history, domain, entering, through_history)
        self.enter(sorted(entering, key=self.tree.entry_key), through_history)
        return True

    def _add_target(
        self, target: str, history: str | None, domain: str, entering: set[str], through: set[str]
    ) -> None:
        recorded = self.history.get(target) if history else None
        if recorded:
            through.add(target)
            entering.add(target)
            if history == "deep":
                for atomic in recorded:
                    entering.add(atomic)
                    entering.update(
                        a for a in self.tree.ancestors(atomic) if self.tree.is_descendant(a, target)
                    )
            else:
                child = next(
                    c
                    for c in self.tree.nodes[target].children
                    if c == recorded[0] or self.tree.is_descendant(recorded[0], c)
                )
                entering |= self.it.default_entry(child)
        else:
            entering |= self.it.default_entry(target)
        for ancestor in self.tree.ancestors(target):
            if ancestor != domain:
                entering.add(ancestor)
            if self.tree.nodes[ancestor].kind == "parallel":
                # Every region of a parallel state entered (or, for a parallel
                # top that was the domain, left entirely) is entered.
                for region in self.tree.nodes[ancestor].children:
                    if not any(s == region or self.tree.is_descendant(s, region) for s in entering):
                        entering |= self.it.default_entry(region)
            if ancestor == domain:
                break

    def enter(self, ordered: list[str], through_history: set[str]) -> None:
        for state in ordered:
            self.active.add(state)
            self.entered_states.add(state)
            self.entered.append(f"{state}@history" if state in through_history else state)
            node = self.tree.nodes[state]
            for action in node.entry:
                self.run_action(action)
            if node.kind == "atomic" and node.final and node.parent not in (None, TOP):
                parent = node.parent
                assert parent is not None
                self.queue.append(f"done.state.{parent}")
                grandparent = self.tree.nodes[parent].parent
                if (
                    grandparent not in (None, TOP)
                    and self.tree.nodes[grandparent].kind == "parallel"
                    and self.tree.in_final_state(grandparent, self.active)
                ):
                    self.queue.append(f"done.state.{grandparent}")

    def check_region_writes(self) -> None:
        """Two transitions of different regions writing one key in one
        microstep: an error. (Successive microsteps are ordered.)"""
        for i, (first, first_keys) in enumerate(self.writes):
            for second, second_keys in self.writes[i + 1 :]:
                if first_keys & second_keys and self._different_regions(
                    first.source, second.source
                ):
                    raise StepError("parallel regions wrote the same data key")

    def _different_regions(self, a: str, b: str) -> bool:
        common = next(
            s for s in [a, *self.tree.ancestors(a)] if s == b or self.tree.is_descendant(b, s)
        )
        return common not in (a, b) and self.tree.nodes[common].kind == "parallel"
