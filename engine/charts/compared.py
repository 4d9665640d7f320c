"""A microstep whose transitions in different regions both have actions:
their writes to the data's top-level keys are compared, and two that write
the same key are an error (docs/statechart-semantics.md)."""

from __future__ import annotations

from typing import Any

from pydantic_core import to_json

from engine.charts.plans import ComparedMove, HierarchicalPlans, StepError
from engine.rules import StepContext


def run_compared(
    plans: HierarchicalPlans, ctx: StepContext, compared: tuple[ComparedMove, ...]
) -> None:
    """Each move's actions (on data already copied), and the check that no two
    transitions of different regions wrote the same top-level data key.

    Which keys a move's actions changed: those added or removed, those bound
    to another value that compares unequal, and containers left in place
    whose JSON changed (actions may change a list or dict in place, so those
    are encoded before the actions run; scalars are compared as they are).
    What one move leaves is what the next starts from: its containers'
    encodings are kept for the next, not taken again."""
    written: list[tuple[ComparedMove, set[str]]] = []
    last = len(compared) - 1  # the last move with actions (two of them have some)
    while not compared[last].actions:
        last -= 1
    before: dict[str, Any] | None = None
    encoded: dict[str, bytes] = {}
    for position, each in enumerate(compared):
        ctx.target = each.target
        if not each.actions:
            continue  # no action: nothing written
        if before is None:
            before = ctx.data.copy()
            for key, value in before.items():
                if isinstance(value, _CONTAINERS):
                    encoded[key] = to_json(value)
        for action in each.actions:
            action(ctx)
        again = position < last
        keys = _written_keys(before, encoded, ctx.data, again)
        if again:
            before = ctx.data.copy()
        if not keys:
            continue
        for other, other_keys in written:
            shared = keys & other_keys
            if shared and plans.tree.in_different_regions(other.move.source, each.move.source):
                raise StepError(
                    f"{other.label} and {each.label} run in "
                    f"parallel regions and both write data key {min(shared)!r}"
                )
        written.append((each, keys))


def _written_keys(
    before: dict[str, Any], encoded: dict[str, bytes], after: dict[str, Any], again: bool
) -> set[str]:
    """The top-level keys whose values differ between ``before`` (whose
    containers ``encoded`` holds as JSON) and ``after``. When ``again`` (another
    move follows), ``encoded`` is left holding ``after``'s containers."""
    keys = before.keys() - after.keys()
    for key in keys:
        encoded.pop(key, None)
    for key, value in after.items():
        old = before.get(key, _ABSENT)
        if old is value:
            if key in encoded:  # a container left in place: changed inside?
                text = to_json(value)
                if text != encoded[key]:
                    keys.add(key)
                    encoded[key] = text
            continue
        if old is _ABSENT or old != value:
            keys.add(key)
        if again and isinstance(value, _CONTAINERS):
            encoded[key] = to_json(value)
        else:
            encoded.pop(key, None)
    return keys


_ABSENT = object()  # a key the data did not hold before the actions
_CONTAINERS = (dict, list)
