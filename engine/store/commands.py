"""The outbox's records: commands as a dispatcher and an operator see them, and
what a dispatcher records of a call.

Statuses, as a store keeps them:

- ``pending``: waits for its turn (``available_at``); after a transient error
  it carries the error and how many attempts were made;
- ``held``: waits until something else changes (a shop's authorization); it
  is released on its own when that happens;
- ``parked``: gave up (a permanent refusal, or every attempt failed); only an
  operator's retry or discard moves it;
- ``done``: carried out;
- ``discarded``: an operator decided it must never run;
- ``inert``: recorded by `ingest` from another database's log; it was that
  database's work, never this one's.

``running`` is shown, not kept: a pending command under a live claim (ENG-10).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

STATUSES = ("pending", "held", "parked", "done", "discarded", "inert")
# Filters beyond the stored statuses: what failed, what waits on nobody but
# an operator or the clock, and everything.
FILTERS = (*STATUSES, "running", "failed", "open", "all")
OPEN = ("pending", "held", "parked")

RETRYABLE = ("pending", "held", "parked")
DISCARDABLE = ("pending", "held", "parked")


@dataclass(frozen=True, slots=True)
class OutboxCommand:
    id: int
    entity: str
    type: str
    payload: dict[str, Any]
    idempotency_key: str
    attempts: int
    status: str = "pending"
    last_error: str | None = None
    event_seq: int = 0


class Claimed(NamedTuple):
    """A command claimed by a dispatcher, and who held it before when its
    claim was taken over from a dispatcher whose lease ran out."""

    command: OutboxCommand
    previous_claimant: str | None


@dataclass(frozen=True, slots=True)
class Done:
    """The call succeeded (recorded whatever the status: it did happen)."""

    attempts: int
    at: float


@dataclass(frozen=True, slots=True)
class Held:
    """The command waits under ``hold_key`` until that key is released."""

    attempts: int
    error: str
    hold_key: str


@dataclass(frozen=True, slots=True)
class Retry:
    """Try again at ``available_at`` (``status`` pending) or give up (parked)."""

    status: Literal["pending", "parked"]
    attempts: int
    error: str
    available_at: float


CallResult = Done | Held | Retry

# What became of a claimant's outcome: ``recorded``; ``overruled`` (an
# operator discarded the command meanwhile: only the claim is dropped);
# ``lost`` (the claim is no longer the claimant's: another took it over).
FinishOutcome = Literal["recorded", "overruled", "lost"]


class ActionOutcome(NamedTuple):
    """What an operator's action found: ``ok``, ``missing`` or ``refused``,
    with the command's status before (``running`` when under a live claim)
    and its entity."""

    outcome: Literal["ok", "missing", "refused"]
    status: str | None
    entity: str | None


@dataclass(frozen=True, slots=True)
class CommandAction:
    """One operator action on a command."""

    action: str
    actor: str
    reason: str | None
    at: float
    status_before: str
    attempts_before: int
    error_before: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "actor": self.actor,
            "reason": self.reason,
            "at": self.at,
            "status_before": self.status_before,
            "attempts_before": self.attempts_before,
            "error_before": self.error_before,
        }


@dataclass(frozen=True, slots=True)
class CommandView:
    """A command as an operator sees it."""

    id: int
    type: str
    entity: str
    status: str
    attempts: int
    last_error: str | None
    idempotency_key: str
    created_at: float
    available_at: float
    done_at: float | None
    hold_key: str | None
    event_seq: int
    payload: dict[str, Any]
    actions: tuple[CommandAction, ...] = field(default_factory=tuple)
    # Who runs it and until when their lease lasts, while it is running.
    claimed_by: str | None = None
    claim_until: float | None = None

    @property
    def next_attempt_at(self) -> float | None:
        """When the dispatcher will next try it: only a pending command has a time."""
        return self.available_at if self.status == "pending" else None

    @property
    def reason(self) -> str | None:
        """Why it is where it is: the claimant, the discard's reason, the inert
        note, the hold or the error."""
        if self.status == "running":
            return f"claimed by {self.claimed_by} until {_iso(self.claim_until)}"
        if self.status == "discarded":
            last = self.actions[-1] if self.actions else None
            by = f"discarded by {last.actor}" if last else "discarded"
            return f"{by}: {last.reason}" if last and last.reason else by
        return self.last_error

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "entity": self.entity,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at,
            "reason": self.reason,
            "last_error": self.last_error,
            "hold_key": self.hold_key,
            "idempotency_key": self.idempotency_key,
            "created_at": self.created_at,
            "done_at": self.done_at,
            "event_seq": self.event_seq,
            "payload": self.payload,
            "actions": [a.as_dict() for a in self.actions],
            "claimed_by": self.claimed_by,
            "claim_until": self.claim_until,
        }


def _iso(timestamp: float | None) -> str:
    if timestamp is None:
        return "an unknown time"
    moment = datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
    return moment.replace("+00:00", "Z")


__all__ = [
    "DISCARDABLE",
    "FILTERS",
    "OPEN",
    "RETRYABLE",
    "STATUSES",
    "ActionOutcome",
    "CallResult",
    "Claimed",
    "CommandAction",
    "CommandView",
    "Done",
    "FinishOutcome",
    "Held",
    "OutboxCommand",
    "Retry",
]
