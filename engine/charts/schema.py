"""The statechart file format, as pydantic models (and a JSON Schema for editors)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
IDENTIFIER = r"^[a-z][a-z0-9_]*$"


def parse_duration(value: float | int | str) -> float:
    """``90``, ``"90s"``, ``"15m"``, ``"2h"``, ``"3d"`` -> seconds."""
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a duration (e.g. 90, '90s', '15m', '2h', '3d')")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


# One state name or a list of them, as a chart author prefers to write it.
StateNames = Annotated[list[str], BeforeValidator(_one_or_many)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StateSpec(_Strict):
    label: str = Field(description="What a merchant or an operator reads for this state.")
    final: bool = Field(False, description="A final state is never left.")
    description: str = ""


class TransitionSpec(_Strict):
    event: str = Field(description="The event type that triggers this transition.")
    source: StateNames = Field(
        description="Source state(s); '*' means every state that is not final."
    )
    target: str | None = Field(
        None, description="Target state; omitted for an internal transition that stays."
    )
    guards: list[str] = Field(
        default_factory=list,
        description="Guard names, all of which must hold: 'name', '!name' (negated) or "
        "'name=value' (a guard that takes an argument).",
    )
    actions: list[str] = Field(
        default_factory=list, description="Action names run in order: 'name' or 'name=value'."
    )
    description: str = ""


class RefusalSpec(_Strict):
    event: str
    source: StateNames = Field(description="The states in which the event is refused.")
    reason: str = Field(description="What the sender is told, instead of 'not allowed'.")


class TimerSpec(_Strict):
    name: str = Field(pattern=IDENTIFIER)
    state: StateNames = Field(
        description="Armed on entering this state (or any of these), cancelled on leaving it."
    )
    event: str = Field(description="The event type fired when the timer is due.")
    after: float | str | None = Field(
        None, description="Fire this long after entering the state (90, '15m', '2h')."
    )
    setting: str | None = Field(
        None,
        description=(
            "Name of a chart setting (Engine.open's chart_settings) that overrides"
            " 'after' (or, with 'at', 'lead')."
        ),
    )
    at: str | None = Field(
        None,
        description="Fire at the unix time held in this entity data field "
        "(dotted path), re-read on every transition.",
    )
    lead: float | str = Field(0, description="With 'at': fire this long before that time.")


class ChartSpec(_Strict):
    name: str = Field(pattern=IDENTIFIER)
    entity_kind: str = Field(pattern=IDENTIFIER)
    version: int = 1
    description: str = ""
    initial: str | None = None
    states: dict[str, StateSpec]
    events: list[str] = Field(description="Every event type this chart accepts.")
    transitions: list[TransitionSpec]
    timers: list[TimerSpec] = Field(default_factory=list)
    refusals: list[RefusalSpec] = Field(
        default_factory=list,
        description="Events refused in some states with a reason a person can act on.",
    )


def chart_json_schema() -> dict[str, Any]:
    schema = ChartSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "channelsync statechart"
    return schema
