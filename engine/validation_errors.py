"""Telling why input was refused without repeating what was sent (SEC-2).

A validation error's text is stored with a dead letter, shown to operators and
logged: it names the fields and the kinds of error, never the values, and a
message that would quote the input is cut down to its error type.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import ValidationError

# A location part is a field name the schema declares (snake_case, an event
# type's dots) or a key the sender chose (a dict key): a part without a field
# name's shape is not echoed.
_FIELD_NAME = re.compile(r"[a-z_][a-z0-9_]{0,63}(?:\.[a-z0-9_]{1,63}){0,3}")
# An event type has this shape; a name, phone, email or token does not.
_EVENT_TYPE = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+")
# A message shares no run of this many characters with the input it refused.
_ECHO_WINDOW = 6
# Characters of input compared per error, at most.
_ECHO_BUDGET = 20_000


def describe_validation_error(err: ValidationError, limit: int = 10) -> str:
    """The reasons of a validation failure as field locations, messages and
    error types, never the values sent (SEC-2): these texts are stored with
    dead letters, shown to operators and logged.

    Pydantic builds most messages from the schema alone; a validator's own
    message (``value_error``) or a custom error's may quote what it refused,
    so a message that shares a run of characters with the input is replaced
    by the error type alone."""
    parts = []
    for item in err.errors(include_url=False, include_input=True)[:limit]:
        where = ".".join(_location_part(p) for p in item["loc"]) or "(event)"
        kind = item["type"]
        if kind == "union_tag_invalid":
            tag = (item.get("ctx") or {}).get("tag")
            named = isinstance(tag, str) and len(tag) <= 64 and _EVENT_TYPE.fullmatch(tag)
            parts.append(f"unknown event type {tag!r}" if named else "unknown event type")
        elif kind == "union_tag_not_found":
            parts.append("missing field 'type'")
        elif quotes_input(item["msg"], item.get("input")):
            parts.append(f"{where}: {kind}")
        else:
            parts.append(f"{where}: {item['msg']} ({kind})")
    return "; ".join(parts)


def quotes_input(message: str, value: Any) -> bool:
    """Does ``message`` quote ``value``: any text in it of three to
    `_ECHO_WINDOW` characters, or a run of `_ECHO_WINDOW` characters of a
    longer one? Bounded: an error's input may be a whole body."""
    windows = {message[i : i + _ECHO_WINDOW] for i in range(len(message) - _ECHO_WINDOW + 1)}
    budget = [_ECHO_BUDGET]
    for text in _texts(value, budget):
        if len(text) < 3:
            continue
        if len(text) <= _ECHO_WINDOW:
            if text in message:
                return True
            continue
        text = text[: max(budget[0], _ECHO_WINDOW)]
        budget[0] -= len(text)
        if any(text[i : i + _ECHO_WINDOW] in windows for i in range(len(text) - _ECHO_WINDOW + 1)):
            return True
        if budget[0] <= 0:
            return False
    return False


def _texts(value: Any, budget: list[int]) -> Iterator[str]:
    if budget[0] <= 0:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            # A key short enough to be a common word ("note", "type") would
            # make every message look like a quote; a long one is compared.
            if len(str(key)) > _ECHO_WINDOW:
                yield str(key)
            yield from _texts(item, budget)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _texts(item, budget)
    elif value is not None:
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        yield text
        # As a message may quote it: escaped by repr() or by JSON.
        for quoted in (repr(text)[1:-1], json.dumps(text)[1:-1]):
            if quoted != text:
                yield quoted


def _location_part(part: str | int) -> str:
    if isinstance(part, int) or _FIELD_NAME.fullmatch(part):
        return str(part)
    return "[key]"
