"""Events: the pydantic envelope and the registry of typed payloads.

An event names its entity as ``"<kind>:<id>"`` (``order:576653688135258178``); the
kind picks the chart. Payloads are typed per event ``type``: the registry builds
one envelope model per type and validates raw input against their
*discriminated* union, which costs about as much as ``json.loads`` (docs/performance.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from operator import getitem
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
)

from engine.validation_errors import describe_validation_error

# What the log may hold (keys recorded before the stricter check below).
ENTITY_KEY_PATTERN = r"^[a-z][a-z0-9_]*:[^\s]+$"
# What a new event may name (SEC-5): a kind, a colon and a printable id
# without path separators, whitespace or "..", at most 200 characters. An id
# that could be read as a path or hide in a log line never names an entity.
ENTITY_KEY_MAX = 200
# str.isspace's whitespace (what ``\s`` matches in a str pattern), "/" and "\".
_KEY_FORBIDDEN = re.compile(r"[\s/\\]")
LOGGED = {"logged": True}
RECEIVED_AT = "received_at"


def check_entity_key(key: str) -> str:
    """``key`` if a new event may name it, else ValueError with the reason."""
    kind, _, ident = key.partition(":")
    if len(key) > ENTITY_KEY_MAX:
        raise ValueError(f"entity key longer than {ENTITY_KEY_MAX} characters")
    if not ident or not kind:
        raise ValueError("entity key is not <kind>:<id>")
    if not ident.isprintable() or _KEY_FORBIDDEN.search(ident):
        raise ValueError("entity id holds whitespace, '/', '\\' or an unprintable character")
    if ".." in ident:
        raise ValueError("entity id holds '..'")
    return key


class Payload(BaseModel):
    """Base class for event payloads. Unknown fields are kept, not dropped."""

    model_config = ConfigDict(extra="allow", frozen=True)


class EmptyPayload(Payload):
    """A payload with no declared fields (merchant buttons, timers)."""


class TimerPayload(Payload):
    """What a fired timer carries: its name and when it was due."""

    timer: str
    due_at: float


class Event(BaseModel):
    """The envelope of every event the engine accepts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(min_length=1, max_length=512)
    type: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=64)
    entity: str = Field(pattern=ENTITY_KEY_PATTERN, max_length=512)
    occurred_at: float | None = None
    # Validated even when absent, so that `_stamp` can fill it in.
    received_at: float | None = Field(default=None, validate_default=True)
    payload: Payload

    @field_validator("entity")
    @classmethod
    def _strict_key(cls, key: str, info: ValidationInfo) -> str:
        if info.context is not None and info.context.get("logged"):
            return key  # history is replayed as it was recorded
        return check_entity_key(key)

    @field_validator("received_at")
    @classmethod
    def _stamp(cls, received_at: float | None, info: ValidationInfo) -> float | None:
        # Stamped as it is built (engine.admission): a copy afterwards costs as much again.
        if received_at is None and info.context is not None:
            return info.context.get(RECEIVED_AT)  # type: ignore[no-any-return]
        return received_at

    @property
    def entity_kind(self) -> str:
        return self.entity.split(":", 1)[0]

    @property
    def entity_id(self) -> str:
        return self.entity.split(":", 1)[1]

    def payload_dict(self) -> dict[str, Any]:
        return self.payload.model_dump(mode="json")


class EventRejected(Exception):
    """Raw input that is not a valid event: it goes to the dead-letter table."""

    def __init__(self, reason: str, entity: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.entity = entity


class EventTypes:
    """The registry of event types and their payload models."""

    def __init__(self) -> None:
        self._payloads: dict[str, type[Payload]] = {}
        self._envelopes: dict[str, type[Event]] = {}
        self._adapter: TypeAdapter[Event] | None = None
        # Each registered type's envelope and payload models.
        self.models: dict[str, tuple[type[Event], type[Payload]]] = {}

    def register(self, event_type: str, payload: type[Payload] = EmptyPayload) -> None:
        known = self._payloads.get(event_type)
        if known is not None and known is not payload:
            raise ValueError(
                f"event type {event_type!r} is already registered with {known.__name__}"
            )
        self._payloads[event_type] = payload
        # Types built at run time from the registry are subscripted as values
        # (`getitem`): a type checker reads ``Literal[x]`` only with a constant x.
        tag: Any = getitem(Literal, event_type)
        self._envelopes[event_type] = create_model(
            f"Event[{event_type}]",
            __base__=Event,
            type=(tag, ...),
            payload=(payload, Field(default_factory=payload)),
        )
        # Read for every logged row (engine.log_decode): one lookup, no call.
        self.models[event_type] = (self._envelopes[event_type], payload)
        self._adapter = None

    def update(self, other: EventTypes) -> None:
        for name, payload in other._payloads.items():
            self.register(name, payload)

    def __contains__(self, event_type: object) -> bool:
        return event_type in self._payloads

    def names(self) -> list[str]:
        return sorted(self._payloads)

    def payload_model(self, event_type: str) -> type[Payload]:
        return self._payloads[event_type]

    def _union(self) -> TypeAdapter[Event]:
        if self._adapter is None:
            if not self._envelopes:
                raise RuntimeError("no event types are registered")
            envelopes = tuple(self._envelopes.values())
            if len(envelopes) == 1:
                self._adapter = TypeAdapter(envelopes[0])
            else:
                members = getitem(Union, envelopes)
                union: Any = getitem(Annotated, (members, Field(discriminator="type")))
                self._adapter = TypeAdapter(union)
        return self._adapter

    def parse_logged(
        self, event_type: str, envelope: dict[str, Any], payload: str | bytes
    ) -> Event:
        """Validate a logged event: its payload's JSON against its own type's
        model, then the envelope fields (no union dispatch, no JSON round trip
        of the envelope: the log already says which type it is)."""
        model = self._envelopes.get(event_type)
        if model is None:
            from pydantic_core import from_json

            return self.parse(
                {**envelope, "type": event_type, "payload": from_json(payload)}, LOGGED
            )
        try:
            envelope["payload"] = self._payloads[event_type].model_validate_json(payload)
            envelope["type"] = event_type
            return model.model_validate(envelope, context=LOGGED)
        except ValidationError as err:
            entity = envelope.get("entity")
            raise EventRejected(
                describe_validation_error(err), entity if isinstance(entity, str) else None
            ) from None

    def parse_json(self, raw: str | bytes, *, received_at: float | None = None) -> Event:
        """Validate a JSON document as an event, or raise `EventRejected`.
        ``received_at``: the stamp of a document that carries none."""
        context = None if received_at is None else {RECEIVED_AT: received_at}
        try:
            return self._union().validate_json(raw, context=context)
        except ValidationError as err:
            raise EventRejected(describe_validation_error(err), _guess_entity_json(raw)) from None

    def parse(
        self, obj: Mapping[str, Any] | Event, context: Mapping[str, Any] | None = None
    ) -> Event:
        """Validate a mapping (or re-validate an Event) against the registry.
        ``context`` `LOGGED`: an event read back from the log (its key is not
        checked again)."""
        if isinstance(obj, Event):
            # An exact type check: ABCMeta's isinstance is slow on this hot path.
            if type(obj) is self._envelopes.get(obj.type):
                return obj
            obj = obj.model_dump(mode="python")
            obj["payload"] = dict(obj["payload"])
        try:
            return self._union().validate_python(obj, context=context)
        except ValidationError as err:
            entity = obj.get("entity") if isinstance(obj, Mapping) else None
            raise EventRejected(
                describe_validation_error(err), entity if isinstance(entity, str) else None
            ) from None

    def make(
        self,
        event_type: str,
        entity: str,
        payload: Mapping[str, Any] | None = None,
        *,
        event_id: str,
        source: str,
        occurred_at: float | None = None,
        received_at: float | None = None,
    ) -> Event:
        """Build a typed event from plain values (what adapters and merchants call)."""
        fields = (event_id, event_type, source, entity, occurred_at, received_at)
        return self.parse(envelope_dict(fields, dict(payload or {})))


_ENTITY_KEY = re.compile(ENTITY_KEY_PATTERN)
# An envelope's fields in `Event`'s order, the payload's aside.
EnvelopeFields = tuple[str, str, str, str, float | None, float | None]


def envelope_dict(fields: EnvelopeFields, payload: Any) -> dict[str, Any]:
    """An envelope's fields by name, in `Event`'s order (a built event's ``__dict__``)."""
    event_id, event_type, source, entity, occurred_at, received_at = fields
    return {
        "event_id": event_id,
        "type": event_type,
        "source": source,
        "entity": entity,
        "occurred_at": occurred_at,
        "received_at": received_at,
        "payload": payload,
    }


def loggable_entity(key: str | None) -> str | None:
    """``key`` if it has the shape of an entity key, else a marker: the key of
    a refused event comes from its body and may be anything."""
    if key is None or (len(key) <= 200 and _ENTITY_KEY.fullmatch(key)):
        return key
    return "[not an entity key]"


def _guess_entity_json(raw: str | bytes) -> str | None:
    from pydantic_core import from_json

    try:
        doc = from_json(raw)
    except ValueError:
        return None
    entity = doc.get("entity") if isinstance(doc, dict) else None
    return entity if isinstance(entity, str) else None
