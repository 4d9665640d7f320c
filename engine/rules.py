"""Named guards and actions: the Python side of a chart.

A chart names its guards and actions; a `Rules` registry maps those names to
small functions. Guards are pure predicates of (entity data, event). Actions
change the entity's data and ask for outside work (commands into the outbox,
timers) through the `StepContext`; they never call a platform themselves, so
live processing and replay run the very same code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, overload

# PEP 696 defaults: `typing` has them from Python 3.13 on.
from typing_extensions import TypeVar

from engine.charts.configuration import is_active
from engine.events import Event, EventTypes, Payload

SEND_EVENT = "engine.send_event"
RELEASE_HELD = "engine.release_held"


@dataclass(frozen=True, slots=True)
class Command:
    """Outside work asked for by a transition, stored in the outbox."""

    type: str
    payload: Mapping[str, Any]
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class TimerRequest:
    """Arm (``due_at`` set) or cancel (``due_at`` None) the entity's timer ``name``."""

    name: str
    due_at: float | None
    event_type: str = ""


# The payload model a rule reads. Covariant: a rule written for a base model
# runs on events of any subclass. A bare `StepContext` is `StepContext[Payload]`.
P_co = TypeVar("P_co", bound=Payload, covariant=True, default=Payload)


@dataclass(slots=True)
class StepContext(Generic[P_co]):
    """What a guard or an action sees of one step.

    A rule says which payload model it reads in its signature,
    ``def paid(ctx: StepContext[OrderPaid]) -> bool``, and ``ctx.payload`` is
    then that model (one that reads several writes their union).

    ``data`` is the entity's data. Guards must only read it: they see the
    stored data itself. Actions change it once their transition is chosen:
    on a private copy, or (in the engine's bus, `step_in_place`) on the
    data itself after a JSON snapshot that puts it back if one raises; either
    way an action that raises never leaks a half-made change, and what they
    leave there is stored if the step commits. ``now`` is the
    event's ``received_at``, so a replay computes the same timers.
    """

    event: Event
    data: dict[str, Any]
    state: str
    target: str
    now: float
    settings: Mapping[str, Any]
    commands: list[Command] = field(default_factory=list)
    timers: list[TimerRequest] = field(default_factory=list)
    refusals: list[tuple[str, str, bool]] = field(default_factory=list)
    refusal_detail: str | None = None

    @property
    def payload(self) -> P_co:
        # The event was validated against the model its type registered
        # (`EventTypes`), which is the model the rule's signature names.
        # No `cast`: a function call, and rules read the payload several times a step.
        return self.event.payload  # type: ignore[return-value]

    def emit(
        self, command_type: str, payload: Mapping[str, Any], idempotency_key: str | None = None
    ) -> Command:
        """Ask for outside work. The key defaults to one derived from the event,
        stable across retries and replays."""
        key = idempotency_key or f"{self.event.event_id}#{len(self.commands)}:{command_type}"
        command = Command(command_type, dict(payload), key)
        self.commands.append(command)
        return command

    def send(
        self, entity: str, event_type: str, payload: Mapping[str, Any], *, suffix: str = ""
    ) -> Command:
        """Send an event to another entity, durably: it is recorded in the outbox
        with this step and published after commit, with an id derived from this
        event's, so a repeat is a duplicate."""
        index = len(self.commands)
        event_id = f"{self.event.event_id}>{index}{suffix}"
        return self.emit(
            SEND_EVENT,
            {"event_id": event_id, "type": event_type, "entity": entity, "payload": dict(payload)},
            idempotency_key=event_id,
        )

    def release_held(self, hold_key: str) -> Command:
        """Ask the engine to run again the commands held under ``hold_key``."""
        return self.emit(RELEASE_HELD, {"hold_key": hold_key})

    def refuse(self, reason: str) -> bool:
        """For guards: say no with a reason specific to this event."""
        self.refusal_detail = reason
        return False

    def in_state(self, state_id: str) -> bool:
        """True when ``state_id`` (atomic, compound or a region) is active in the
        configuration the step started from (SCXML's ``In()``)."""
        return is_active(self.state, state_id)

    def arm_timer(self, name: str, due_at: float, event_type: str) -> None:
        self.timers.append(TimerRequest(name, float(due_at), event_type))

    def cancel_timer(self, name: str) -> None:
        self.timers.append(TimerRequest(name, None))


# A rule reads the payload model of its own events (`StepContext[OrderPaid]`):
# `Any` here lets a registry hold rules of every payload type. A rule named
# ``name=value`` in a chart also takes the value.
PlainGuard = Callable[[StepContext[Any]], bool]
ArgumentGuard = Callable[[StepContext[Any], str], bool]
GuardFunc = PlainGuard | ArgumentGuard
PlainAction = Callable[[StepContext[Any]], None]
ArgumentAction = Callable[[StepContext[Any], str], None]
ActionFunc = PlainAction | ArgumentAction
PG = TypeVar("PG", bound=PlainGuard)
AG = TypeVar("AG", bound=ArgumentGuard)
PA = TypeVar("PA", bound=PlainAction)
AA = TypeVar("AA", bound=ArgumentAction)
G = TypeVar("G", bound=GuardFunc)
A = TypeVar("A", bound=ActionFunc)
# A chart version's data migration: (old data, configuration after the state
# renames) -> (new data, new configuration).
UpgradeFunc = Callable[[dict[str, Any], str], tuple[dict[str, Any], str]]
U = TypeVar("U", bound=UpgradeFunc)


@dataclass(frozen=True, slots=True)
class GuardSpec:
    name: str
    func: GuardFunc
    refusal: str
    takes_argument: bool


@dataclass(frozen=True, slots=True)
class ActionSpec:
    name: str
    func: ActionFunc
    takes_argument: bool
    # The top-level data keys the action may write, as declared; validation
    # reports two parallel regions whose transitions on one event overlap.
    writes: tuple[str, ...] = ()


class Rules:
    """A registry of guards, actions and the event types a chart package uses."""

    def __init__(self) -> None:
        self.guards: dict[str, GuardSpec] = {}
        self.actions: dict[str, ActionSpec] = {}
        self.upgrades: dict[str, UpgradeFunc] = {}
        self.event_types = EventTypes()

    @overload
    def guard(
        self, name: str, *, refusal: str | None = None, takes_argument: Literal[False] = False
    ) -> Callable[[PG], PG]: ...

    @overload
    def guard(
        self, name: str, *, refusal: str | None = None, takes_argument: Literal[True]
    ) -> Callable[[AG], AG]: ...

    def guard(
        self, name: str, *, refusal: str | None = None, takes_argument: bool = False
    ) -> Callable[[G], G]:
        """Register a guard. ``refusal`` is the reason recorded when it says no.

        A guard that takes an argument is named in a chart as ``name=value`` and
        called as ``func(ctx, value)``; two transitions on the same event whose
        guards give one such guard different values can never both fire.
        """

        def register(func: G) -> G:
            if name in self.guards:
                raise ValueError(f"guard {name!r} is registered twice")
            self.guards[name] = GuardSpec(
                name, func, refusal or f"guard {name} refused", takes_argument
            )
            return func

        return register

    @overload
    def action(
        self,
        name: str,
        *,
        takes_argument: Literal[False] = False,
        writes: tuple[str, ...] | list[str] = (),
    ) -> Callable[[PA], PA]: ...

    @overload
    def action(
        self, name: str, *, takes_argument: Literal[True], writes: tuple[str, ...] | list[str] = ()
    ) -> Callable[[AA], AA]: ...

    def action(
        self, name: str, *, takes_argument: bool = False, writes: tuple[str, ...] | list[str] = ()
    ) -> Callable[[A], A]:
        """Register an action. ``writes`` names the top-level data keys it may
        change (``writes=("sync",)``), for the check that two parallel regions
        never write one key on the same event."""

        def register(func: A) -> A:
            if name in self.actions:
                raise ValueError(f"action {name!r} is registered twice")
            self.actions[name] = ActionSpec(name, func, takes_argument, tuple(writes))
            return func

        return register

    def upgrade(self, name: str) -> Callable[[U], U]:
        """Register a data migration named by a chart's ``upgrades[].data``:
        ``func(data, state) -> (data, state)``, given the old data and the
        configuration after the upgrade's state renames."""

        def register(func: U) -> U:
            if name in self.upgrades:
                raise ValueError(f"upgrade {name!r} is registered twice")
            self.upgrades[name] = func
            return func

        return register

    def register_actions(self, *funcs: PlainAction) -> None:
        """Register plain actions under their function names."""
        for func in funcs:
            self.action(func.__name__)(func)

    def register_events(self, payloads: Mapping[str, type[Payload] | None]) -> None:
        """Declare event types with their payload models (None: no payload)."""
        for event_type, payload in payloads.items():
            self.event(event_type, payload)

    def event(self, event_type: str, payload: type[Payload] | None = None) -> None:
        """Declare an event type and its payload model."""
        if payload is None:
            self.event_types.register(event_type)
        else:
            self.event_types.register(event_type, payload)

    def update(self, other: Rules) -> None:
        for name, spec in other.guards.items():
            if name in self.guards and self.guards[name] is not spec:
                raise ValueError(f"guard {name!r} is defined by two rule sets")
            self.guards[name] = spec
        for name, action in other.actions.items():
            if name in self.actions and self.actions[name] is not action:
                raise ValueError(f"action {name!r} is defined by two rule sets")
            self.actions[name] = action
        for name, upgrade in other.upgrades.items():
            if name in self.upgrades and self.upgrades[name] is not upgrade:
                raise ValueError(f"upgrade {name!r} is defined by two rule sets")
            self.upgrades[name] = upgrade
        self.event_types.update(other.event_types)
