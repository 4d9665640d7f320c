"""Actions of the order chart's fulfillment region: the push of a fulfillment made
in Shoplazza to TikTok (LOGI-1 to LOGI-5).

The region's state is the push's status (waiting, resolving, pushing, pushed,
failed, not_applicable, ...); these actions keep the facts beside it in
``data.fulfillment``: the tracking number, the carrier, why it waits or
failed, when it was pushed, and a correction's own progress. They write no
other data key (but Shoplazza's own fulfillment status, which a fulfillment
made there sets), so they never collide with another region in one step.
"""

from __future__ import annotations

from typing import Any

from engine.rules import Rules, StepContext
from statecharts import payloads as p

TRACKING_UPDATE_WINDOW = 72 * 3600  # LOGI-5
FBT_REASON = "Fulfilled by TikTok: shipping info is never pushed to TikTok (LOGI-1)"
CANCELLED_REASON = "order cancelled on TikTok"
ON_HOLD_REASON = (
    "the order is On Hold on TikTok; shipping info goes out at Awaiting Shipment (LOGI-4)"
)


def register(rules: Rules) -> None:
    rules.guard("within_correction_window")(within_correction_window)
    rules.register_actions(
        record_fulfillment,
        skip_push_for_fbt,
        skip_push_for_cancelled,
        wait_while_on_hold,
        resolve_carrier,
        push_tracking,
        wait_for_line_items,
        fail_carrier_not_mapped,
        fail_carrier_not_offered,
        fail_push_authorization_inactive,
        record_push,
        record_already_shipped,
        record_push_failure,
        correct_tracking,
        refuse_late_correction,
        push_correction,
        fail_correction,
        record_correction,
        record_correction_failure,
    )


def _fulfillment(ctx: StepContext) -> dict[str, Any]:
    fulfillment: dict[str, Any] = ctx.data.setdefault("fulfillment", {})
    return fulfillment


def record_fulfillment(ctx: StepContext[p.ShoplazzaFulfilled]) -> None:
    payload = ctx.payload
    ctx.data["fulfillment"] = {
        "reason": None,
        "tracking_number": payload.tracking_number,
        "tracking_company_code": payload.tracking_company_code,
        "line_item_ids": payload.line_item_ids,
    }
    # The merchant shipped in Shoplazza: TikTok's later "shipped" must not be sent back.
    ctx.data.setdefault("shoplazza", {})["fulfillment_status"] = "shipped"


def skip_push_for_fbt(ctx: StepContext) -> None:
    _fulfillment(ctx)["reason"] = FBT_REASON


def skip_push_for_cancelled(ctx: StepContext) -> None:
    _fulfillment(ctx)["reason"] = CANCELLED_REASON


def wait_while_on_hold(ctx: StepContext) -> None:
    _fulfillment(ctx)["reason"] = ON_HOLD_REASON


def _request_carrier(
    ctx: StepContext, purpose: str, tracking: p.ShoplazzaFulfilled | None = None
) -> None:
    fulfillment = _fulfillment(ctx)
    number = tracking.tracking_number if tracking else fulfillment.get("tracking_number")
    code = tracking.tracking_company_code if tracking else fulfillment.get("tracking_company_code")
    if purpose == "ship":
        fulfillment["reason"] = "looking up the carrier mapping"
    ctx.emit(
        "resolve_carrier",
        {
            "order": ctx.event.entity,
            "shop_id": ctx.data.get("shop_id"),
            "tracking_company_code": code,
            "tracking_number": number,
            "purpose": purpose,
        },
    )


def resolve_carrier(ctx: StepContext) -> None:
    _request_carrier(ctx, "ship")


def _push_base(ctx: StepContext, resolved: p.CarrierResolved) -> dict[str, Any]:
    return {
        "order": ctx.event.entity,
        "order_id": ctx.data["order_id"],
        "shop_id": ctx.data.get("shop_id"),
        "shipping_provider_id": resolved.shipping_provider_id,
    }


def push_tracking(ctx: StepContext[p.CarrierResolved]) -> None:
    """LOGI-3: the tracking number and the mapped provider go to TikTok."""
    resolved = ctx.payload
    fulfillment = _fulfillment(ctx)
    line_item_ids = tiktok_line_item_ids(ctx.data, fulfillment.get("line_item_ids", []))
    ctx.emit(
        "push_shipping",
        {
            **_push_base(ctx, resolved),
            "tracking_number": fulfillment["tracking_number"],
            "order_line_item_ids": line_item_ids,
        },
        idempotency_key=f"{ctx.event.entity}:ship:{fulfillment['tracking_number']}",
    )
    fulfillment.update(
        reason=None,
        shipping_provider_id=resolved.shipping_provider_id,
        delivery_option_id=resolved.delivery_option_id,
        order_line_item_ids=line_item_ids,
    )


def tiktok_line_item_ids(data: dict[str, Any], shoplazza_ids: list[str]) -> list[str]:
    """TikTok's own ids of the line items a Shoplazza fulfillment shipped. A
    fulfillment naming no item the channel knows ships the whole order."""
    own = [str(i["id"]) for i in data.get("detail", {}).get("line_items", []) if i.get("id")]
    by_shoplazza = data.get("line_item_map", {})
    chosen: list[str] = []
    for shoplazza_id in shoplazza_ids:
        for tiktok_id in by_shoplazza.get(str(shoplazza_id), []):
            if tiktok_id in own and tiktok_id not in chosen:
                chosen.append(tiktok_id)
    return chosen or own


def wait_for_line_items(ctx: StepContext) -> None:
    _fulfillment(ctx)["reason"] = (
        "waiting for TikTok's order detail (its line items) before pushing"
    )


def fail_carrier_not_mapped(ctx: StepContext[p.CarrierResolved]) -> None:
    _fulfillment(ctx)["reason"] = f"carrier not mapped ({ctx.payload.tracking_company_code})"


def fail_carrier_not_offered(ctx: StepContext[p.CarrierResolved]) -> None:
    """LOGI-2: the mapped provider does not ship this order's delivery option."""
    _fulfillment(ctx)["reason"] = ctx.payload.not_offered


def fail_push_authorization_inactive(ctx: StepContext) -> None:
    _fulfillment(ctx)["reason"] = "authorization inactive"


def record_push(ctx: StepContext[p.ShippingPushed]) -> None:
    _fulfillment(ctx).update(reason=None, pushed_at=ctx.now, package_id=ctx.payload.package_id)


def record_already_shipped(ctx: StepContext) -> None:
    _fulfillment(ctx).update(reason="already shipped on TikTok", pushed_at=ctx.now)


def record_push_failure(ctx: StepContext[p.ShippingPushFailed]) -> None:
    failed = ctx.payload
    _fulfillment(ctx).update(reason=failed.message, code=failed.code)


# ------------------------------------------------------------------ corrections (LOGI-5)
# A correction of what was pushed keeps the push Sent to TikTok: its progress
# is the pushed state's child (correcting, corrected, correction_failed), its
# facts are kept beside the push (data.fulfillment.correction).


def within_correction_window(ctx: StepContext) -> bool:
    """LOGI-5: TikTok takes shipping info updates for 72 hours after the push."""
    pushed_at = ctx.data.get("fulfillment", {}).get("pushed_at") or 0
    return ctx.now - pushed_at <= TRACKING_UPDATE_WINDOW or ctx.refuse(
        "past TikTok's 72-hour window for shipping info updates"
    )


def correct_tracking(ctx: StepContext[p.ShoplazzaFulfilled]) -> None:
    update = ctx.payload
    _fulfillment(ctx)["correction"] = {"tracking_number": update.tracking_number, "reason": None}
    _request_carrier(ctx, "correction", update)


def refuse_late_correction(ctx: StepContext[p.ShoplazzaFulfilled]) -> None:
    _fulfillment(ctx)["correction"] = {
        "tracking_number": ctx.payload.tracking_number,
        "reason": "past TikTok's 72-hour window for shipping info updates",
    }


def push_correction(ctx: StepContext[p.CarrierResolved]) -> None:
    resolved = ctx.payload
    ctx.emit(
        "update_shipping_info",
        {**_push_base(ctx, resolved), "tracking_number": resolved.tracking_number},
    )
    _fulfillment(ctx)["correction"] = {"tracking_number": resolved.tracking_number, "reason": None}


def fail_correction(ctx: StepContext[p.CarrierResolved]) -> None:
    """The correction's carrier cannot be pushed: why, on the correction."""
    resolved = ctx.payload
    if not resolved.authorization_active:
        reason = "authorization inactive"
    elif resolved.fulfillment_model == "FBT":
        reason = FBT_REASON
    elif resolved.not_offered:
        reason = resolved.not_offered
    else:
        reason = f"carrier not mapped ({resolved.tracking_company_code})"
    _fulfillment(ctx).setdefault("correction", {})["reason"] = reason


def record_correction(ctx: StepContext[p.ShippingPushed]) -> None:
    fulfillment = _fulfillment(ctx)
    correction = fulfillment.setdefault("correction", {})
    correction.update(reason=None, at=ctx.now)
    fulfillment["tracking_number"] = correction.get(
        "tracking_number", fulfillment.get("tracking_number")
    )


def record_correction_failure(ctx: StepContext[p.ShippingPushFailed]) -> None:
    _fulfillment(ctx).setdefault("correction", {})["reason"] = ctx.payload.message
