"""What one microstep exits and enters: pure functions of the state tree.

Given the active atomic states and the transitions chosen for one event (a
`Move` each: the transition's index, the state it was found at, its target
and history mode), `plan_microstep` works out, without running anything,
the states exited (innermost first), the history to record, the states
entered (outermost first), the new configuration and the done events that
entering final states raises. The step (engine/charts/plans.py) caches these
plans per (configuration, moves) and only runs the actions they list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from engine.charts.configuration import join_states
from engine.charts.hierarchy import TOP, StateTree

DONE_PREFIX = "done.state."
HISTORY_MARK = "@history"


@dataclass(frozen=True, slots=True, eq=False)
class Move:
    """A chosen transition as the tree sees it. Compared by identity: the
    plans make one per (transition, source), and the step's caches hash them."""

    index: int  # in the chart's transitions
    source: str  # the state it was found at (one of its sources)
    target: str | None
    history: str | None  # "shallow", "deep" or None


@dataclass(frozen=True, slots=True)
class MicroPlan:
    moves: tuple[Move, ...]  # the transitions that fire, in document order
    exits: tuple[str, ...]  # states exited, innermost first
    records: tuple[tuple[str, tuple[str, ...]], ...]  # history to keep, per exited state
    enters: tuple[str, ...]  # states entered, outermost first
    entered: tuple[str, ...]  # the same, those entered through history as '<id>@history'
    atomic: tuple[str, ...]  # the configuration after it
    state: str  # that configuration as stored
    done: tuple[str, ...]  # done events raised, in order
    uses_history: bool  # some state entered through its recorded history
    reentered: frozenset[str]  # states it exits and enters again


def exit_set(tree: StateTree, active: Sequence[str], move: Move) -> frozenset[str]:
    """The active states a move exits: every one inside its domain."""
    domain = tree.domain(move.source, move.target)
    if domain is None:
        return frozenset()
    return frozenset(state for state in active if tree.is_descendant(state, domain))


def without_conflicts(
    tree: StateTree, active: Sequence[str], candidates: Sequence[Move]
) -> tuple[Move, ...]:
    """The candidates minus each one whose exit set meets an earlier one's
    (the earlier, in document order of their atomic states, wins)."""
    chosen: list[Move] = []
    exiting: set[str] = set()
    for move in candidates:
        exits = exit_set(tree, active, move)
        if exits & exiting:
            continue
        exiting |= exits
        chosen.append(move)
    return tuple(chosen)


def plan_microstep(
    tree: StateTree,
    atomic: tuple[str, ...],
    candidates: Sequence[Move],
    history: Mapping[str, Sequence[str]],
    history_targets: frozenset[str],
) -> MicroPlan:
    """The microstep that fires ``candidates`` (after removing conflicts) from
    the configuration ``atomic``; ``history`` holds what exited states left."""
    active = tree.active_states(atomic)
    moves = tuple(sorted(without_conflicts(tree, active, candidates), key=lambda m: m.index))
    exiting: set[str] = set()
    for move in moves:
        exiting |= exit_set(tree, active, move)
    exits = tuple(sorted(exiting, key=lambda s: (-tree.depth(s), -tree.nodes[s].order)))
    records = tuple(
        (state, tuple(leaf for leaf in atomic if tree.is_descendant(leaf, state)))
        for state in exits
        if state in history_targets
    )
    # History recorded by this very microstep counts (a target that is an
    # ancestor of its source is left, then entered as it was left).
    known = {**history, **dict(records)}
    entering, via_history = _entry_set(tree, moves, known)
    return _finish(tree, moves, atomic, exiting, entering, via_history, exits, records)


def plan_initial(tree: StateTree) -> MicroPlan:
    """Entering the initial configuration of a new entity."""
    entering = set(tree.default_entry(TOP))
    return _finish(tree, (), (), set(), entering, set(), (), ())


def _finish(
    tree: StateTree,
    moves: tuple[Move, ...],
    atomic: tuple[str, ...],
    exiting: set[str],
    entering: set[str],
    via_history: set[str],
    exits: tuple[str, ...],
    records: tuple[tuple[str, tuple[str, ...]], ...],
) -> MicroPlan:
    enters = tuple(sorted(entering, key=lambda s: (tree.depth(s), tree.nodes[s].order)))
    leaves = {leaf for leaf in atomic if leaf not in exiting}
    leaves.update(state for state in entering if tree.nodes[state].is_atomic)
    new_atomic = tree.in_document_order(leaves)
    return MicroPlan(
        moves,
        exits,
        records,
        enters,
        tuple(s + HISTORY_MARK if s in via_history else s for s in enters),
        new_atomic,
        join_states(new_atomic),
        _done_events(tree, enters, frozenset(tree.active_states(new_atomic))),
        bool(via_history),
        frozenset(exiting & entering),
    )


def _entry_set(
    tree: StateTree, moves: Sequence[Move], history: Mapping[str, Sequence[str]]
) -> tuple[set[str], set[str]]:
    """The states the moves enter (their targets, the targets' ancestors below
    each domain, and what completes them), and those entered through history."""
    entering: set[str] = set()
    via_history: set[str] = set()
    for move in moves:
        domain = tree.domain(move.source, move.target)
        if domain is None or move.target is None:
            continue
        target = move.target
        entering.update(a for a in tree.ancestors(target) if tree.is_descendant(a, domain))
        recorded = history.get(target) if move.history else None
        if recorded:
            via_history.add(target)
            entering.add(target)
            entering.update(_restore(tree, target, recorded, move.history == "deep"))
        else:
            entering.update(tree.default_entry(target))
        if tree.kind(domain) == "parallel":  # the chart's top, when it is parallel
            entering.update(s for r in tree.top if r not in entering for s in tree.default_entry(r))
    _complete_regions(tree, entering)
    return entering, via_history


def _restore(tree: StateTree, target: str, recorded: Sequence[str], deep: bool) -> set[str]:
    """Entering ``target`` as it was left: the exact atomic states (deep), or
    its last active children entered at their initial states (shallow)."""
    restored: set[str] = set()
    if deep:
        for leaf in recorded:
            restored.add(leaf)
            restored.update(a for a in tree.ancestors(leaf) if tree.is_descendant(a, target))
        return restored
    for child in tree.children(target):
        if any(leaf == child or tree.is_descendant(leaf, child) for leaf in recorded):
            restored.update(tree.default_entry(child))
    return restored


def _complete_regions(tree: StateTree, entering: set[str]) -> None:
    """A parallel state entered on the way to a target in one region enters
    its other regions too, at their initial states."""
    pending = [s for s in entering if tree.nodes[s].kind == "parallel"]
    while pending:
        parallel = pending.pop()
        for region in tree.children(parallel):
            if region in entering:
                continue
            added = tree.default_entry(region)
            entering.update(added)
            pending.extend(s for s in added if tree.nodes[s].kind == "parallel")


def _in_final(tree: StateTree, state: str, active: frozenset[str]) -> bool:
    kind = tree.kind(state)
    if kind == "compound":
        return any(c in active and tree.kind(c) == "final" for c in tree.children(state))
    if kind == "parallel":
        return all(_in_final(tree, region, active) for region in tree.children(state))
    return kind == "final" and state in active


def _done_events(tree: StateTree, enters: Sequence[str], active: frozenset[str]) -> tuple[str, ...]:
    """SCXML's done events: entering a final state completes its (compound)
    parent, and a parallel grandparent once all its regions are complete."""
    raised: list[str] = []
    for state in enters:
        node = tree.nodes[state]
        if node.kind != "final" or node.parent is None:
            continue
        completed = [node.parent]
        grandparent = tree.nodes[node.parent].parent
        if grandparent is not None and tree.kind(grandparent) == "parallel":
            completed.append(grandparent)
        for candidate in completed:
            event = DONE_PREFIX + candidate
            if event not in raised and _in_final(tree, candidate, active):
                raised.append(event)
    return tuple(raised)
