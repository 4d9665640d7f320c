"""The statechart file format, as pydantic models (and a JSON Schema for editors)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

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
    """A state: atomic (no ``states``), compound (``states`` and ``initial``) or
    parallel (``states`` with ``parallel: true``: each child is a region, all
    active at once). Its id in transitions, timers and the stored configuration
    is the dotted path of names from the chart's top (``sync.failed``)."""

    label: str = Field(description="What a merchant or an operator reads for this state.")
    final: bool = Field(
        False,
        description="A final state is never left; reaching it completes its parent "
        "(the parent's done event, 'done.state.<parent id>').",
    )
    description: str = ""
    states: dict[str, StateSpec] = Field(
        default_factory=dict, description="Child states: this state is then compound or parallel."
    )
    initial: str | None = Field(
        None, description="A compound state's initial child (its name, not its dotted id)."
    )
    parallel: bool = Field(
        False, description="The children are orthogonal regions, all entered together."
    )
    entry: list[str] = Field(
        default_factory=list, description="Actions run on entering this state, in order."
    )
    exit: list[str] = Field(
        default_factory=list, description="Actions run on leaving this state, in order."
    )


class TransitionSpec(_Strict):
    event: str = Field(description="The event type that triggers this transition.")
    source: StateNames = Field(
        description="Source state(s); '*' means every state that is not final."
    )
    target: str | None = Field(
        None, description="Target state; omitted for an internal transition that stays."
    )
    history: Literal["shallow", "deep"] | None = Field(
        None,
        description="Enter the (compound) target as it was when last left: its last "
        "active child ('shallow') or its last active descendants ('deep'); its "
        "initial states the first time.",
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


class UpgradeSpec(_Strict):
    """How an entity moves from the previous version of its chart to this one."""

    from_version: int = Field(ge=1, description="The version entities move from.")
    states: dict[str, str] = Field(
        default_factory=dict,
        description="Old state id -> new state id, for states renamed or moved; an old "
        "active state not listed keeps its id.",
    )
    data: str | None = Field(
        None,
        description="Name of a registered data migration (Rules.upgrade) that turns the "
        "old data into the new.",
    )


class ChartSpec(_Strict):
    name: str = Field(pattern=IDENTIFIER)
    entity_kind: str = Field(pattern=IDENTIFIER)
    version: int = Field(1, ge=1)
    description: str = ""
    initial: str | None = None
    parallel: bool = Field(
        False,
        description="The top-level states are regions, all active at once ('initial' unused).",
    )
    states: dict[str, StateSpec]
    events: list[str] = Field(description="Every event type this chart accepts.")
    transitions: list[TransitionSpec]
    timers: list[TimerSpec] = Field(default_factory=list)
    refusals: list[RefusalSpec] = Field(
        default_factory=list,
        description="Events refused in some states with a reason a person can act on.",
    )
    upgrades: list[UpgradeSpec] = Field(
        default_factory=list,
        description="How entities of older versions move to this one (`channelsync migrate`).",
    )


def chart_json_schema() -> dict[str, Any]:
    schema = ChartSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "channelsync statechart"
    return schema
