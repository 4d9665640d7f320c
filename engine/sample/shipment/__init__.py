"""The sample `shipment` chart package: three parallel regions, on their own.

Not installed as an entry point: an engine loads it only when asked
(``ChartSet.load([chart_package()])``). The pure-step benchmark steps it beside
the flat parcel chart, and `STEP_CASES` are the steps it measures, each a
starting configuration, an event and the configuration it must end in: the
benchmark checks them before timing anything, and a test holds them true.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.chartset import ChartPackage
from engine.events import Payload
from engine.rules import Rules, StepContext


class NotePayload(Payload):
    text: str


class ShipPayload(Payload):
    tracking_number: str


rules = Rules()
rules.register_events(
    {
        "shipment.note": NotePayload,
        "shipment.pack": None,
        "shipment.hold": None,
        "shipment.release": None,
        "shipment.cancel": None,
        "shipment.sync": None,
        "shipment.synced": None,
        "shipment.sync_failed": None,
        "shipment.ship": ShipPayload,
        "shipment.pushed": None,
    }
)


@rules.action("append_note")
def append_note(ctx: StepContext[NotePayload]) -> None:
    ctx.data.setdefault("notes", []).append(ctx.payload.text)


@rules.action("mark_tracking_sent")
def mark_tracking_sent(ctx: StepContext) -> None:
    ctx.data["tracking_sent"] = True


@rules.action("count_sync_attempt")
def count_sync_attempt(ctx: StepContext) -> None:
    ctx.data["sync_attempts"] = ctx.data.get("sync_attempts", 0) + 1


@rules.action("request_sync")
def request_sync(ctx: StepContext) -> None:
    ctx.emit("sync_shipment", {"shipment": ctx.event.entity_id})


@rules.action("record_sync_error", takes_argument=True)
def record_sync_error(ctx: StepContext, reason: str) -> None:
    ctx.data["sync_error"] = reason


@rules.action("clear_sync_error")
def clear_sync_error(ctx: StepContext) -> None:
    ctx.data.pop("sync_error", None)


@rules.action("record_tracking")
def record_tracking(ctx: StepContext[ShipPayload]) -> None:
    ctx.data["tracking_number"] = ctx.payload.tracking_number


@rules.action("request_push")
def request_push(ctx: StepContext) -> None:
    # An entry action runs after the transition's own actions: the tracking
    # number that `record_tracking` stored is already there.
    ctx.emit(
        "push_tracking",
        {"shipment": ctx.event.entity_id, "tracking_number": ctx.data["tracking_number"]},
    )


def chart_package() -> ChartPackage:
    return ChartPackage.from_directory("shipment", Path(__file__).parent, rules)


@dataclass(frozen=True)
class StepCase:
    """One measured step: from ``state`` (with ``data`` and ``history``), the
    event ``event_type`` with ``payload`` must reach ``expected``."""

    name: str
    event_type: str
    state: str
    expected: str
    payload: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list[str]] | None = None


_OPEN = "lifecycle.active.open"
_PACKED = "lifecycle.active.packed"

# The like-for-like step, as the flat chart's measured `parcel.note` (one
# transition, one action, a fresh entity): one region moves (sync.syncing to
# sync.failed) with one action, the others stay. Leaving `syncing` cancels its
# timer, so it does a little more than the flat step, never less.
ONE_MOVE_CASE = StepCase(
    "fail",
    "shipment.sync_failed",
    f"{_PACKED},sync.syncing,push.waiting",
    f"{_PACKED},sync.failed,push.waiting",
    data={"sync_attempts": 1},
)

# Regions moved per case: none (note), one (hold, release, sync), two (ship),
# one and a done event (pushed), three (cancel).
STEP_CASES = (
    StepCase(
        "note",
        "shipment.note",
        f"{_OPEN},sync.idle,push.waiting",
        f"{_OPEN},sync.idle,push.waiting",
        payload={"text": "n"},
    ),
    StepCase(
        "hold",
        "shipment.hold",
        f"{_PACKED},sync.synced,push.waiting",
        "lifecycle.on_hold,sync.synced,push.waiting",
    ),
    StepCase(
        "release",
        "shipment.release",
        "lifecycle.on_hold,sync.synced,push.waiting",
        f"{_PACKED},sync.synced,push.waiting",
        history={"lifecycle.active": [_PACKED]},
    ),
    StepCase(
        "sync",
        "shipment.sync",
        f"{_OPEN},sync.failed,push.waiting",
        f"{_OPEN},sync.syncing,push.waiting",
        data={"sync_error": "rejected", "sync_attempts": 1},
    ),
    StepCase(
        "ship",
        "shipment.ship",
        f"{_PACKED},sync.synced,push.waiting",
        f"{_PACKED},sync.syncing,push.pushing",
        payload={"tracking_number": "1Z999AA10123456784"},
    ),
    StepCase(
        "pushed",
        "shipment.pushed",
        f"{_PACKED},sync.synced,push.pushing",
        f"{_PACKED},sync.synced,push.pushed",
        data={"tracking_number": "1Z999AA10123456784"},
    ),
    StepCase(
        "cancel",
        "shipment.cancel",
        f"{_PACKED},sync.synced,push.pushing",
        "lifecycle.closed,sync.syncing,push.waiting",
        data={"tracking_number": "1Z999AA10123456784"},
    ),
)
