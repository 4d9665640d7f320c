"""Checks of how a chart runs: states no step can enter, transitions that could
both fire from one state, and transitions of parallel regions that would write
the same data key in one step."""

from __future__ import annotations

from collections import deque
from itertools import combinations

from engine.charts.checks_common import Report, guards_exclude
from engine.charts.checks_states import ChartStates
from engine.charts.hierarchy import TOP, StateTree
from engine.charts.schema import TransitionSpec
from engine.rules import Rules


def reachable_states(states: ChartStates) -> set[str]:
    """The states some sequence of steps enters: by the initial configuration,
    by a region's entry with its parallel parent, or as (or around) the target
    of a transition whose source is reachable. A history target is entered as
    its initial states the first time, so history adds no state of its own.
    Needs a well-formed tree (every compound state with its initial child)."""
    tree = states.tree
    edges: dict[str, list[str]] = {}
    for transition in states.spec.transitions:
        if transition.target is not None:
            for source in states.expand_sources(transition):
                edges.setdefault(source, []).append(transition.target)
    reached: set[str] = set()
    queue: deque[str] = deque()

    def enter(entered: list[str]) -> None:
        for state_id in entered:
            if state_id not in reached:
                reached.add(state_id)
                queue.append(state_id)

    enter(tree.default_entry(TOP))
    while queue:
        for target in edges.get(queue.popleft(), ()):
            # The target, its ancestors, and every other region of a parallel
            # ancestor (entered at its initial states).
            enter([target, *tree.ancestors(target)])
            for ancestor in (*tree.ancestors(target), TOP):
                if tree.kind(ancestor) == "parallel":
                    for region in tree.children(ancestor):
                        if region not in reached:
                            enter(tree.default_entry(region))
            enter(tree.default_entry(target))
    return reached


def check_reachable(states: ChartStates, report: Report) -> None:
    """Each unreachable state whose parent is reachable (its own children are
    then unreachable too, and saying so would only repeat it)."""
    reached = reachable_states(states)
    for entry in states.entries.values():
        if entry.id in reached or (entry.parent is not None and entry.parent not in reached):
            continue
        if states.tree.is_flat:
            message = f"unreachable from the initial state {states.spec.initial!r}"
        else:
            message = (
                "unreachable: no initial or region entry, and no transition from a "
                "reachable state, enters it"
            )
        report(entry.path, f"state {entry.id!r}", message)


def check_conflicts(states: ChartStates, report: Report) -> None:
    """Two transitions on one event from one source id, guards not exclusive.
    A parent's transition and its child's are no conflict: the child's wins."""
    indexed = list(enumerate(states.spec.transitions))
    for (i, first), (j, second) in combinations(indexed, 2):
        if first.event != second.event:
            continue
        shared = set(states.expand_sources(first)) & set(states.expand_sources(second))
        if not shared or guards_exclude(first.guards, second.guards):
            continue
        report(
            ("transitions", j),
            f"transitions[{i}] and transitions[{j}] (event {first.event!r})",
            f"both can fire from state {sorted(shared)[0]!r}: give them guards that exclude "
            "each other ('g' and '!g', or 'g=a' and 'g=b')",
        )


def declared_writes(rules: Rules, transition: TransitionSpec) -> set[str]:
    """The top-level data keys its actions declare they write (`Rules.action(writes=)`)."""
    keys: set[str] = set()
    for text in transition.actions:
        action = rules.actions.get(text.partition("=")[0].strip())
        if action is not None:
            keys.update(action.writes)
    return keys


def check_parallel_writes(states: ChartStates, rules: Rules, report: Report) -> None:
    """Transitions of two regions of one parallel state, on the same event,
    fire in one step: if their actions declare a shared data key, the step
    would be an error at run time (one region's write would hide the other's)."""
    indexed = list(enumerate(states.spec.transitions))
    for (i, first), (j, second) in combinations(indexed, 2):
        if first.event != second.event or guards_exclude(first.guards, second.guards):
            continue
        overlap = declared_writes(rules, first) & declared_writes(rules, second)
        if not overlap:
            continue
        regions = _regions_apart(states, first, second)
        if regions is None:
            continue
        parallel, mine, theirs = regions
        where = "the parallel chart" if parallel == TOP else f"parallel state {parallel!r}"
        keys = ", ".join(repr(key) for key in sorted(overlap))
        report(
            ("transitions", j),
            f"transitions[{i}] and transitions[{j}] (event {first.event!r})",
            f"both write data key {keys} in one step, from regions {mine!r} and {theirs!r} "
            f"of {where}: let one region own the key, or guard them apart",
        )


def _regions_apart(
    states: ChartStates, first: TransitionSpec, second: TransitionSpec
) -> tuple[str, str, str] | None:
    """(parallel state, region of ``first``, region of ``second``) when some of
    their sources lie in different regions of one parallel state, else None."""
    tree = states.tree
    for mine in states.expand_sources(first):
        for theirs in states.expand_sources(second):
            if tree.in_different_regions(mine, theirs):
                common = tree.common_ancestor(mine, theirs)
                return common, _region_of(tree, common, mine), _region_of(tree, common, theirs)
    return None


def _region_of(tree: StateTree, parallel: str, state_id: str) -> str:
    """The child of ``parallel`` that holds ``state_id`` (or is it)."""
    return next(
        s
        for s in (state_id, *tree.ancestors(state_id))
        if tree.nodes[s].parent == (parallel or None)
    )
