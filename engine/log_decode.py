"""A logged row's columns back into its event, without validating again what
validation would keep as it is (decisions/trusted-log-decode.md).

The payload is validated as always: a payload the installed model refuses
stops a replay where it did. The envelope (event id, type, source, entity
key, times) was validated when the engine admitted the event; when every
column still holds exactly what validating it would give, the event is built
from them directly, and otherwise `EventTypes.parse_logged` validates it, so
the event or the refusal is the validated one whatever the row holds.
"""

from __future__ import annotations

import re
from typing import Any

from annotated_types import MaxLen
from pydantic import ValidationError

from engine.events import ENTITY_KEY_PATTERN, Event, EventTypes, envelope_dict

# What validating a logged envelope sets: every field (a row names them all).
_ENVELOPE_FIELDS = frozenset(Event.model_fields)
# The envelope's fields a log row holds in columns of their own.
_COLUMNS = ("event_id", "source", "entity", "occurred_at", "received_at")
_ENTITY_KEY = re.compile(ENTITY_KEY_PATTERN)
_new = object.__new__
_set = object.__setattr__

# Keys logged rows held that have the key's shape: a log names each of its
# entities again and again, and a set lookup costs a third of the pattern.
_KEYS_SEEN: set[str] = set()
_KEYS_KEPT = 65_536


def _key_shaped(entity: str) -> bool:
    """Whether ``entity`` matches the key pattern (remembered if it does)."""
    if _ENTITY_KEY.fullmatch(entity) is None:
        return False
    if len(_KEYS_SEEN) >= _KEYS_KEPT:
        _KEYS_SEEN.clear()
    _KEYS_SEEN.add(entity)
    return True


def _max_length(field: str) -> int:
    """The longest value `Event` lets ``field`` hold."""
    limits = Event.model_fields[field].metadata
    return next(limit.max_length for limit in limits if isinstance(limit, MaxLen))


_EVENT_ID_MAX, _SOURCE_MAX, _ENTITY_MAX = map(_max_length, ("event_id", "source", "entity"))


def parse_logged_row(
    types: EventTypes,
    event_type: str,
    event_id: Any,
    source: Any,
    entity: Any,
    occurred_at: Any,
    received_at: Any,
    payload: str | bytes,
) -> Event:
    """`EventTypes.parse_logged` of a log row's columns: the same event or the
    same refusal, without the envelope's second validation where it changes
    nothing."""
    models = types.models.get(event_type)
    # What validating the envelope would keep as it is: exact types, the
    # lengths and the key's shape `Event` declares (Python's ``\s`` covers
    # all the whitespace of pydantic's Rust pattern and more, so a key it
    # accepts, pydantic accepts). One expression, no call: every row pays it.
    if (
        models is not None
        and type(event_id) is str
        and 0 < len(event_id) <= _EVENT_ID_MAX
        and type(source) is str
        and 0 < len(source) <= _SOURCE_MAX
        and type(entity) is str
        and len(entity) <= _ENTITY_MAX
        and (occurred_at is None or type(occurred_at) is float)
        and (received_at is None or type(received_at) is float)
        and (entity in _KEYS_SEEN or _key_shaped(entity))
    ):
        model, payload_model = models
        try:
            validated = payload_model.__pydantic_validator__.validate_json(payload)
        except ValidationError:
            pass  # `parse_logged` says why, as it always has
        else:
            # Built as `BaseModel.model_construct` builds it, without its search.
            event = _new(model)
            fields = (event_id, event_type, source, entity, occurred_at, received_at)
            _set(event, "__dict__", envelope_dict(fields, validated))
            _set(event, "__pydantic_fields_set__", set(_ENVELOPE_FIELDS))
            _set(event, "__pydantic_extra__", None)
            _set(event, "__pydantic_private__", None)
            return event
    columns = (event_id, source, entity, occurred_at, received_at)
    return types.parse_logged(event_type, dict(zip(_COLUMNS, columns, strict=True)), payload)


__all__ = ["parse_logged_row"]
