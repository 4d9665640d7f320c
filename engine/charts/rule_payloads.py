"""A rule's signature names the payload it reads; a chart must give it that payload.

A guard or an action written as ``def paid(ctx: StepContext[OrderPaid])``
reads ``ctx.payload`` as an ``OrderPaid``: the type checker holds the function
to that, and this check holds the charts to it. A chart that names the rule
on an event whose registered payload model is another one is refused on load,
with the rule, the event and both models named, instead of failing with an
AttributeError on the first such event.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any

from engine.events import Payload
from engine.rules import Rules, StepContext


@cache
def declared_payloads(func: Callable[..., Any]) -> tuple[type[Payload], ...] | None:
    """The payload models ``func``'s first parameter names (``StepContext[A | B]``:
    A and B), or None when it names none (a bare `StepContext`) or its
    annotations cannot be resolved at run time (names imported only for the
    type checker): such a rule is not checked."""
    try:
        hints = typing.get_type_hints(func)
        first = next(iter(inspect.signature(func).parameters), None)
    except (NameError, TypeError, ValueError):
        return None
    hint = hints.get(first) if first is not None else None
    if typing.get_origin(hint) is not StepContext:
        return None
    (argument,) = typing.get_args(hint)
    union = typing.get_origin(argument) in (typing.Union, types.UnionType)
    members = typing.get_args(argument) if union else (argument,)
    if all(isinstance(m, type) and issubclass(m, Payload) for m in members):
        return members
    return None


def payload_mismatch(
    rules: Rules, kind: str, name: str, func: Callable[..., Any], event_type: str
) -> str | None:
    """Why ``event_type``'s payload is not what rule ``name`` reads, or None if it is
    (or either side is unknown: the event and rule checks report those)."""
    wanted = declared_payloads(func)
    if wanted is None or event_type not in rules.event_types:
        return None
    carried = rules.event_types.payload_model(event_type)
    if issubclass(carried, wanted):
        return None
    reads = " | ".join(model.__name__ for model in wanted)
    return (
        f"{kind} {name!r} reads a {reads} payload (its StepContext[{reads}]), "
        f"but event {event_type!r} carries {carried.__name__}"
    )
