"""The sample `parcel` chart package: the engine on its own, in a few lines."""

from __future__ import annotations

from pathlib import Path

from engine.chartset import ChartPackage
from engine.events import Payload
from engine.rules import Rules, StepContext


class PackPayload(Payload):
    weight_kg: float = 0.0


class ShipPayload(Payload):
    tracking_number: str | None = None


class NotePayload(Payload):
    text: str


rules = Rules()
rules.event("parcel.pack", PackPayload)
rules.event("parcel.ship", ShipPayload)
rules.event("parcel.deliver")
rules.event("parcel.cancel")
rules.event("parcel.note", NotePayload)


@rules.guard("has_tracking", refusal="no tracking number")
def has_tracking(ctx: StepContext[ShipPayload]) -> bool:
    return bool(ctx.payload.tracking_number)


@rules.action("record_weight")
def record_weight(ctx: StepContext[PackPayload]) -> None:
    ctx.data["weight_kg"] = ctx.payload.weight_kg


@rules.action("record_tracking")
def record_tracking(ctx: StepContext[ShipPayload]) -> None:
    ctx.data["tracking_number"] = ctx.payload.tracking_number


@rules.action("notify_buyer")
def notify_buyer(ctx: StepContext) -> None:
    ctx.emit(
        "notify_buyer",
        {"parcel": ctx.event.entity_id, "tracking_number": ctx.data["tracking_number"]},
    )


@rules.action("append_note")
def append_note(ctx: StepContext[NotePayload]) -> None:
    ctx.data.setdefault("notes", []).append(ctx.payload.text)


def chart_package() -> ChartPackage:
    return ChartPackage.from_directory("sample", Path(__file__).parent, rules)
