"""How a step's actions get their data and how what they leave is stored.

`engine.step` has three variants that differ only here: a deep copy made on
write (`json_copy`, checked to be JSON), the data changed in place after a
JSON `Snapshot` (encoded at once), or a shallow copy trusted as is.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Protocol

from pydantic_core import from_json, to_json

from engine.rules import StepContext


class WithData(Protocol):
    """An entity as these helpers see it (`engine.step.EntityState`)."""

    data: dict[str, Any]


def json_copy(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, scalars); much faster than
    deepcopy. Scalars are shared, and only containers recurse."""
    if isinstance(value, dict):
        return {k: json_copy(v) if isinstance(v, CONTAINERS) else v for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) if isinstance(v, CONTAINERS) else v for v in value]
    return value


CONTAINERS = (dict, list)

# The settings of a step called without any: one empty mapping for all (a
# step only reads its settings), not a new dict per step.
NO_SETTINGS: Mapping[str, Any] = MappingProxyType({})

Encoded = tuple[str | None, list[str] | None]
NOT_ENCODED: Encoded = (None, None)


def encoded(ctx: StepContext, entity: WithData) -> Encoded:
    """The step's data and its commands' payloads as JSON (what is stored)."""
    commands = ctx.commands
    # Most steps emit nothing: an empty list spares the comprehension's frame.
    payloads = [to_json(dict(c.payload)).decode() for c in commands] if commands else []
    return to_json(ctx.data).decode(), payloads


def checked(ctx: StepContext, entity: WithData) -> Encoded:
    """Nothing to store yet, but data JSON cannot hold fails the step here, as
    it does in the bus; only when actions ran (they made a copy)."""
    if ctx.data is not entity.data:
        encoded(ctx, entity)
    return NOT_ENCODED


def unencoded(ctx: StepContext, entity: WithData) -> Encoded:
    return NOT_ENCODED


def keep(entity: WithData) -> None:
    """Nothing to undo: the actions worked on a copy."""


class Snapshot:
    """The entity's data as JSON, taken when an in-place step's actions are
    about to change it, so that a failure can put it back."""

    # No __init__: a slot left unset until `take` spares a Python frame per
    # step (the bus makes one `Snapshot` per event); `restore` reads it with a default.
    __slots__ = ("_taken",)

    _taken: bytes

    def take(self, data: dict[str, Any]) -> dict[str, Any]:
        self._taken = to_json(data)
        return data

    def restore(self, entity: WithData) -> None:
        taken: bytes | None = getattr(self, "_taken", None)
        if taken is not None:
            entity.data.clear()
            entity.data.update(from_json(taken))
