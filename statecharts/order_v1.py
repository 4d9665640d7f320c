"""Version 1 of the order chart's rules (statecharts/versions/order_v1.yaml), kept
as they were so that `check` replays events logged under version 1 as they were
applied: the flat chart whose sync and fulfillment push were statuses in data.
Version 2 is statecharts/order.py; `channelsync migrate` moves orders to it
(`order_upgrade.upgrade_from_v1`). Do not change what these rules do."""

from __future__ import annotations

from typing import Any

from engine.charts.schema import parse_duration
from engine.erasure import ERASE_COMMAND, ErasureRecorded
from engine.rules import Rules, StepContext
from engine.vault import ERASED
from statecharts import payloads as p
from statecharts.order_facts import (
    ADDRESS_VISIBLE,
    DEFAULT_SYNC_RETRY,
    FINANCIAL_RANK,
    FULFILLMENT_RANK,
    LIFECYCLE_RANK,
    ON_HOLD_STATES,
    SALES_CHANNEL,
)

TRACKING_UPDATE_WINDOW = 72 * 3600  # LOGI-5
# How long the buyer's address stays after the order is Completed or Cancelled (SEC-3).
DEFAULT_ADDRESS_RETENTION = "30d"
FINAL_STATES = frozenset({"completed", "cancelled"})
CODE_ON_HOLD = 21011044
CODE_ALREADY_SHIPPED = 21008099
CODE_FULFILLED_BY_TIKTOK = 21008025
# Failures a retry can cure; a cancelled order that never reached Shoplazza is not retried.
NOT_RETRIED = "cancelled on TikTok before it was created in Shoplazza"


# Version 1's rules, registered under "v1_" names: the package serves both
# versions from one registry, and version 2's rules of the same names read the
# regions, not these data statuses.
PREFIX = "v1_"


def register(rules: Rules) -> None:
    """Register version 1's guards and actions (the events are version 2's too)."""
    rules.guard(PREFIX + "newer_update")(newer_update)
    rules.guard(PREFIX + "order_status", takes_argument=True)(order_status)
    rules.guard(PREFIX + "order_can_sync")(order_can_sync)
    rules.guard(PREFIX + "fulfilled_by_tiktok", refusal="the order is Fulfilled by Seller")(
        fulfilled_by_tiktok
    )
    rules.guard(PREFIX + "tracking_pushed", refusal="no tracking has been pushed yet")(
        tracking_pushed
    )
    rules.guard(PREFIX + "carrier", takes_argument=True)(carrier)
    for action in (
        record_status,
        record_detail,
        refetch_detail,
        create_in_shoplazza,
        record_shoplazza_order,
        record_sync_failure,
        retry_sync,
        record_shoplazza_change,
        record_return,
        record_fulfillment,
        skip_push_for_fbt,
        wait_while_on_hold,
        skip_push_for_cancelled,
        resolve_carrier,
        push_tracking,
        fail_carrier_not_mapped,
        fail_carrier_not_offered,
        fail_push_authorization_inactive,
        record_push,
        record_push_failure,
        correct_tracking,
        forget_personal_data,
        drop_address,
    ):
        rules.action(PREFIX + action.__name__)(action)


# ------------------------------------------------------------------ what Shoplazza should show


def shoplazza_view(state: str) -> dict[str, Any]:
    """How a TikTok status shows in Shoplazza (ORD-6). Returns and refunds do not."""
    if state == "cancelled":
        return {"cancelled": True}
    fulfillment = {
        "partially_shipping": "partially_shipped",
        "in_transit": "shipped",
        "delivered": "shipped",
        "completed": "shipped",
    }.get(state)
    return {
        "financial_status": "waiting" if state == "unpaid" else "paid",
        "fulfillment_status": fulfillment,
    }


def _moves_forward(ranks: dict[str, int], current: str | None, wanted: str) -> bool:
    return ranks.get(wanted, 0) > ranks.get(current or "", -1)


def _propagate(ctx: StepContext, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Send Shoplazza what a TikTok change altered, in lifecycle order, and only
    what moves its copy forward (data.shoplazza is what Shoplazza shows)."""
    sync = ctx.data.get("sync", {})
    if sync.get("status") != "synced":
        return
    base = {"order": ctx.event.entity, "shoplazza_order_id": sync["shoplazza_order_id"]}
    sent = ctx.data.setdefault("shoplazza_sent", {})
    mirror = ctx.data.setdefault("shoplazza", {})
    if mirror.get("status") == "cancelled":
        return  # a cancelled order in Shoplazza is never reopened by a later status
    if after.get("cancelled") and not before.get("cancelled"):
        ctx.emit("cancel_shoplazza_order", base)
        sent["cancelled"] = True
        mirror["status"] = "cancelled"
        return
    # Payment before fulfillment: Shoplazza's lifecycle order.
    for status, ranks, command in (
        ("financial_status", FINANCIAL_RANK, "update_shoplazza_payment"),
        ("fulfillment_status", FULFILLMENT_RANK, "update_shoplazza_fulfillment"),
    ):
        wanted = after.get(status)
        if (
            wanted
            and wanted != before.get(status)
            and _moves_forward(ranks, mirror.get(status), wanted)
        ):
            ctx.emit(command, {**base, status: wanted})
            sent[status] = wanted
            mirror[status] = wanted


# ------------------------------------------------------------------ guards


def newer_update(ctx: StepContext[p.OrderStatusChanged]) -> bool:
    """ORD-8: an older update never applies. ORD-9: one with the same update_time
    applies when it moves the order forward along the lifecycle, never back."""
    payload = ctx.payload
    update_time, last = payload.update_time, ctx.data.get("update_time")
    if last is None or update_time > last:
        return True
    # Each status names the state it leads to (guards run before a target is chosen).
    target = payload.order_status.lower()
    if update_time == last and LIFECYCLE_RANK[target] > LIFECYCLE_RANK[ctx.state]:
        return True
    if update_time == last:
        return ctx.refuse(
            f"stale: update_time {update_time} equals the last one and "
            f"{target} is not further along than {ctx.state}"
        )
    return ctx.refuse(f"stale: update_time {update_time} is not newer than {last}, already applied")


def order_status(ctx: StepContext[p.OrderStatusChanged], status: str) -> bool:
    return ctx.payload.order_status == status


def _sync_problem(ctx: StepContext, resolved: p.ProductsResolved) -> str | None:
    if ctx.state == "cancelled" and ctx.data.get("sync", {}).get("status") != "synced":
        return NOT_RETRIED
    if not resolved.authorization_active:
        return "authorization inactive"
    if resolved.unsynced:
        return "products not synced: " + ", ".join(resolved.unsynced)
    if resolved.unavailable:
        return "products deleted or unpublished in Shoplazza: " + ", ".join(resolved.unavailable)
    return None


def order_can_sync(ctx: StepContext[p.ProductsResolved]) -> bool:
    problem = _sync_problem(ctx, ctx.payload)
    return problem is None or ctx.refuse(problem)


def fulfilled_by_tiktok(ctx: StepContext) -> bool:
    return ctx.data.get("detail", {}).get("fulfillment_type") == "FULFILLMENT_BY_TIKTOK"


def tracking_pushed(ctx: StepContext) -> bool:
    return ctx.data.get("fulfillment", {}).get("status") == "pushed"


def _carrier_resolution(resolved: p.CarrierResolved) -> str:
    if not resolved.authorization_active:
        return "inactive"
    if resolved.fulfillment_model == "FBT":
        return "fbt"
    if resolved.not_offered:
        return "not_offered"
    return "mapped" if resolved.shipping_provider_id else "not_mapped"


def carrier(ctx: StepContext[p.CarrierResolved], resolution: str) -> bool:
    return _carrier_resolution(ctx.payload) == resolution


# ------------------------------------------------------------------ lifecycle


def record_status(ctx: StepContext[p.OrderStatusChanged]) -> None:
    payload = ctx.payload
    before, after = ctx.state, ctx.target
    data = ctx.data
    first = "update_time" not in data
    data.update(
        order_id=payload.order_id,
        status=payload.order_status,
        update_time=payload.update_time,
        is_on_hold_order=payload.is_on_hold_order,
    )
    if payload.shop_id:
        data["shop_id"] = payload.shop_id
    data.setdefault("sync", {"status": "not_synced", "reason": "waiting for the order detail"})
    data.setdefault("channel", SALES_CHANNEL)
    # Fetch once on first sight, and once more on entering the states whose
    # address TikTok shows (repeated updates there do not fetch again).
    entering_visible = after in ADDRESS_VISIBLE and before not in ADDRESS_VISIBLE
    if first or (entering_visible and not data.get("address_fetched")):
        _fetch_detail(ctx, after)
    if before != after:
        _propagate(ctx, shoplazza_view(before), shoplazza_view(after))
    if after in FINAL_STATES and before not in FINAL_STATES:
        retention = parse_duration(ctx.settings.get("address_retention", DEFAULT_ADDRESS_RETENTION))
        data.setdefault("personal_data", {})["address_until"] = ctx.now + retention
    fulfillment = data.get("fulfillment", {})
    if fulfillment.get("status") == "waiting" and after not in ON_HOLD_STATES:
        if after == "cancelled":
            fulfillment.update(status="not_applicable", reason="order cancelled on TikTok")
        else:
            _request_carrier(ctx, "ship")  # LOGI-4: the hold is over


def _fetch_detail(ctx: StepContext, state: str) -> None:
    include = state in ADDRESS_VISIBLE
    ctx.emit(
        "fetch_order_detail",
        {
            "order": ctx.event.entity,
            "order_id": ctx.data["order_id"],
            "shop_id": ctx.data.get("shop_id"),
            "include_recipient": include,
        },
    )


def record_detail(ctx: StepContext[p.OrderDetail]) -> None:
    detail = ctx.payload
    data = ctx.data
    data["order_id"] = detail.id
    data["detail"] = {
        "tiktok_create_time": detail.create_time,
        "fulfillment_type": detail.fulfillment_type,
        "delivery_option_id": detail.delivery_option_id,
        "delivery_option_name": detail.delivery_option_name,
        # TikTok's own line item ids: the fulfillment push names them.
        "line_items": [item.model_dump(mode="json") for item in detail.line_items],
        "payment": detail.payment,
    }
    address = detail.recipient_address
    if ctx.state in ADDRESS_VISIBLE and isinstance(address, dict) and _may_keep_address(data):
        data["recipient_address"] = detail.recipient_address
        data["address_fetched"] = True
        sync = data.get("sync", {})
        if sync.get("status") == "synced":
            ctx.emit(
                "update_shoplazza_address",
                {
                    "order": ctx.event.entity,
                    "shoplazza_order_id": sync["shoplazza_order_id"],
                    "recipient_address": detail.recipient_address,
                },
            )
    # else: ORD-5, the address of an Unpaid/On Hold order is never kept.
    sync = data.get("sync", {})
    # A retry that had to fetch the detail first goes on once it is here (CONN-4).
    awaited = sync.pop("awaiting_detail", False)
    if awaited or sync.get("status") in ("not_synced", None):
        _resolve_products(ctx)
    fulfillment = data.get("fulfillment", {})
    if fulfillment.get("status") == "waiting_detail" and ctx.state not in ON_HOLD_STATES:
        _request_carrier(ctx, "ship")


def refetch_detail(ctx: StepContext) -> None:
    if ctx.state in ADDRESS_VISIBLE:
        _fetch_detail(ctx, ctx.state)


# ------------------------------------------------------------------ sync into Shoplazza


def _resolve_products(ctx: StepContext) -> None:
    detail = ctx.data.get("detail")
    if not detail:
        ctx.data.setdefault("sync", {})["awaiting_detail"] = True
        _fetch_detail(ctx, ctx.state)
        return
    ctx.data["sync"] = {
        **ctx.data.get("sync", {}),
        "status": "syncing",
        "reason": "checking the order's products",
    }
    ctx.data["sync"].pop("retry_at", None)
    ctx.emit(
        "resolve_order_products",
        {
            "order": ctx.event.entity,
            "shop_id": ctx.data.get("shop_id"),
            "product_ids": sorted({item["product_id"] for item in detail["line_items"]}),
        },
    )


def create_in_shoplazza(ctx: StepContext[p.ProductsResolved]) -> None:
    resolved = ctx.payload
    data = ctx.data
    sync = data.setdefault("sync", {})
    attempt = sync.get("attempts", 0) + 1
    view = shoplazza_view(ctx.state)
    request: dict[str, Any] = {
        "order": ctx.event.entity,
        "order_id": data["order_id"],
        "shop_id": data.get("shop_id"),
        "source_name": SALES_CHANNEL,
        "tags": [SALES_CHANNEL, f"tiktok_order:{data['order_id']}"],
        "tiktok_create_time": data["detail"]["tiktok_create_time"],
        "line_items": resolved.shoplazza_line_items,
        "financial_status": view["financial_status"],
        "payment": data["detail"].get("payment", {}),
    }
    if ctx.state in ADDRESS_VISIBLE and _address(data):
        request["recipient_address"] = _address(data)
    ctx.emit(
        "create_shoplazza_order", request, idempotency_key=f"{ctx.event.entity}:create:{attempt}"
    )
    sync.update(status="syncing", reason="creating the order in Shoplazza", attempts=attempt)
    sync.pop("retry_at", None)
    data["shoplazza_sent"] = {
        "financial_status": view["financial_status"],
        "fulfillment_status": None,
        "recipient_address": "recipient_address" in request,
    }
    # Which TikTok line items each Shoplazza variant stands for, so a fulfillment
    # made in Shoplazza ships TikTok's own line items.
    by_variant: dict[str, list[str]] = {}
    for item in resolved.shoplazza_line_items:
        if item.get("variant_id") and item.get("tiktok_line_item_id"):
            by_variant.setdefault(str(item["variant_id"]), []).append(
                str(item["tiktok_line_item_id"])
            )
    data["line_item_map"] = by_variant


def record_shoplazza_order(ctx: StepContext[p.ShoplazzaOrderCreated]) -> None:
    """Synced (ORD-1, ORD-2); then catch up with what changed on TikTok meanwhile."""
    created = ctx.payload
    data = ctx.data
    data["sync"] = {
        "status": "synced",
        "reason": None,
        "attempts": data.get("sync", {}).get("attempts", 1),
        "shoplazza_order_id": created.shoplazza_order_id,
    }
    data["shoplazza_created_at"] = created.created_at
    line_item_map = data.setdefault("line_item_map", {})
    for item in created.line_items:
        if item.variant_id and item.variant_id in line_item_map:
            line_item_map[item.id] = line_item_map[item.variant_id]
    sent = data.get("shoplazza_sent", {})
    mirror = data.setdefault("shoplazza", {})
    for field in ("status", "financial_status", "fulfillment_status"):
        value = getattr(created, field)
        if value is not None and field not in mirror:
            mirror[field] = value
    mirror.setdefault("financial_status", sent.get("financial_status"))
    _propagate(
        ctx,
        {
            "financial_status": sent.get("financial_status"),
            "fulfillment_status": sent.get("fulfillment_status"),
        },
        shoplazza_view(ctx.state),
    )
    if _address(data) and not sent.get("recipient_address"):
        ctx.emit(
            "update_shoplazza_address",
            {
                "order": ctx.event.entity,
                "shoplazza_order_id": created.shoplazza_order_id,
                "recipient_address": _address(data),
            },
        )


def record_sync_failure(ctx: StepContext[p.ProductsResolved | p.SyncFailed]) -> None:
    payload = ctx.payload
    reason = payload.reason if isinstance(payload, p.SyncFailed) else _sync_problem(ctx, payload)
    sync = ctx.data.setdefault("sync", {})
    if reason == NOT_RETRIED:
        sync.update(status="not_synced", reason=reason)
        sync.pop("retry_at", None)
        return
    wait = parse_duration(ctx.settings.get("order_sync_retry", DEFAULT_SYNC_RETRY))
    sync.update(
        status="failed",
        reason=reason,
        retry_at=ctx.now + wait,
        failures=sync.get("failures", 0) + 1,
    )


def retry_sync(ctx: StepContext) -> None:
    """ORD-4: retried once the cause is gone (on a timer, or when asked)."""
    if ctx.data.get("sync", {}).get("status") == "failed":
        _resolve_products(ctx)


# ------------------------------------------------------------------ changes flowing nowhere


def record_shoplazza_change(ctx: StepContext[p.ShoplazzaOrderChanged]) -> None:
    """ORD-7: a payment, cancel, return or refund made in Shoplazza changes nothing on TikTok."""
    payload = ctx.payload
    change = {k: v for k, v in payload.model_dump(mode="json").items() if v is not None}
    ctx.data.setdefault("shoplazza", {}).update(change)
    ctx.data.setdefault("shoplazza_changes", []).append({**change, "at": ctx.now})


def record_return(ctx: StepContext[p.TikTokReturnChanged]) -> None:
    """ORD-6: returns and refunds on TikTok change nothing in Shoplazza."""
    payload = ctx.payload
    entry = {**payload.model_dump(mode="json"), "at": ctx.now}
    returns = ctx.data.setdefault("returns", [])
    for index, known in enumerate(returns):
        if entry["return_id"] and known.get("return_id") == entry["return_id"]:
            # One row per return, at its latest status (an older update is kept out).
            if (known.get("update_time") or 0) <= (entry["update_time"] or 0):
                returns[index] = entry
            return
    returns.append(entry)


# ------------------------------------------------------------------ fulfillment push


def record_fulfillment(ctx: StepContext[p.ShoplazzaFulfilled]) -> None:
    payload = ctx.payload
    ctx.data["fulfillment"] = {
        "status": "received",
        "reason": None,
        "tracking_number": payload.tracking_number,
        "tracking_company_code": payload.tracking_company_code,
        "line_item_ids": payload.line_item_ids,
    }
    # The merchant shipped in Shoplazza: TikTok's later "shipped" must not be sent back.
    ctx.data.setdefault("shoplazza", {})["fulfillment_status"] = "shipped"


def skip_push_for_fbt(ctx: StepContext) -> None:
    ctx.data.setdefault("fulfillment", {}).update(
        status="not_applicable",
        reason="Fulfilled by TikTok: shipping info is never pushed to TikTok (LOGI-1)",
    )


def skip_push_for_cancelled(ctx: StepContext) -> None:
    ctx.data["fulfillment"].update(status="not_applicable", reason="order cancelled on TikTok")


def wait_while_on_hold(ctx: StepContext) -> None:
    ctx.data["fulfillment"].update(
        status="waiting",
        reason="the order is On Hold on TikTok; "
        "shipping info goes out at Awaiting Shipment (LOGI-4)",
    )


def _request_carrier(
    ctx: StepContext, purpose: str, tracking: p.ShoplazzaFulfilled | None = None
) -> None:
    fulfillment = ctx.data.setdefault("fulfillment", {})
    number = tracking.tracking_number if tracking else fulfillment.get("tracking_number")
    code = tracking.tracking_company_code if tracking else fulfillment.get("tracking_company_code")
    if purpose == "ship":
        fulfillment.update(status="resolving", reason="looking up the carrier mapping")
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


def push_tracking(ctx: StepContext[p.CarrierResolved]) -> None:
    """LOGI-3: the tracking number and the mapped provider go to TikTok."""
    resolved = ctx.payload
    fulfillment = ctx.data.setdefault("fulfillment", {})
    base = {
        "order": ctx.event.entity,
        "order_id": ctx.data["order_id"],
        "shop_id": ctx.data.get("shop_id"),
        "shipping_provider_id": resolved.shipping_provider_id,
    }
    if resolved.purpose == "correction":
        ctx.emit("update_shipping_info", {**base, "tracking_number": resolved.tracking_number})
        fulfillment["correction"] = {
            "status": "pushing",
            "tracking_number": resolved.tracking_number,
        }
        return
    line_item_ids = _tiktok_line_item_ids(ctx.data, fulfillment.get("line_item_ids", []))
    if not line_item_ids:
        wait_for_line_items(ctx)
        return
    ctx.emit(
        "push_shipping",
        {
            **base,
            "tracking_number": fulfillment["tracking_number"],
            "order_line_item_ids": line_item_ids,
        },
        idempotency_key=f"{ctx.event.entity}:ship:{fulfillment['tracking_number']}",
    )
    fulfillment.update(
        status="pushing",
        reason=None,
        shipping_provider_id=resolved.shipping_provider_id,
        delivery_option_id=resolved.delivery_option_id,
        order_line_item_ids=line_item_ids,
    )


def _tiktok_line_item_ids(data: dict[str, Any], shoplazza_ids: list[str]) -> list[str]:
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
    ctx.data.setdefault("fulfillment", {}).update(
        status="waiting_detail",
        reason="waiting for TikTok's order detail (its line items) before pushing",
    )


def fail_carrier_not_mapped(ctx: StepContext[p.CarrierResolved]) -> None:
    resolved = ctx.payload
    target = "correction" if resolved.purpose == "correction" else None
    fulfillment = ctx.data.setdefault("fulfillment", {})
    reason = f"carrier not mapped ({resolved.tracking_company_code})"
    if target:
        fulfillment["correction"] = {"status": "not_synced", "reason": reason}
    else:
        fulfillment.update(status="failed", reason=reason)


def fail_carrier_not_offered(ctx: StepContext[p.CarrierResolved]) -> None:
    """LOGI-2: the mapped provider does not ship this order's delivery option."""
    resolved = ctx.payload
    fulfillment = ctx.data.setdefault("fulfillment", {})
    if resolved.purpose == "correction":
        fulfillment["correction"] = {"status": "not_synced", "reason": resolved.not_offered}
    else:
        fulfillment.update(status="failed", reason=resolved.not_offered)


def fail_push_authorization_inactive(ctx: StepContext) -> None:
    ctx.data.setdefault("fulfillment", {}).update(status="failed", reason="authorization inactive")


def record_push(ctx: StepContext[p.ShippingPushed]) -> None:
    pushed = ctx.payload
    fulfillment = ctx.data.setdefault("fulfillment", {})
    if pushed.purpose == "correction":
        correction = fulfillment.setdefault("correction", {})
        correction.update(status="synced", at=ctx.now)
        fulfillment["tracking_number"] = correction.get(
            "tracking_number", fulfillment.get("tracking_number")
        )
        return
    fulfillment.update(
        status="pushed", reason=None, pushed_at=ctx.now, package_id=pushed.package_id
    )


def record_push_failure(ctx: StepContext[p.ShippingPushFailed]) -> None:
    failed = ctx.payload
    fulfillment = ctx.data.setdefault("fulfillment", {})
    if failed.purpose == "correction":
        fulfillment["correction"] = {"status": "not_synced", "reason": failed.message}
    elif failed.code == CODE_ON_HOLD:
        wait_while_on_hold(ctx)
    elif failed.code == CODE_FULFILLED_BY_TIKTOK:
        skip_push_for_fbt(ctx)  # TikTok knows better than the order detail we kept (LOGI-1)
    elif failed.code == CODE_ALREADY_SHIPPED:
        fulfillment.update(status="pushed", reason="already shipped on TikTok", pushed_at=ctx.now)
    else:
        fulfillment.update(status="failed", reason=failed.message, code=failed.code)


def correct_tracking(ctx: StepContext[p.ShoplazzaFulfilled]) -> None:
    """LOGI-5: a tracking correction goes out only within TikTok's 72-hour window."""
    update = ctx.payload
    fulfillment = ctx.data["fulfillment"]
    pushed_at = fulfillment.get("pushed_at") or 0
    if ctx.now - pushed_at > TRACKING_UPDATE_WINDOW:
        fulfillment["correction"] = {
            "status": "not_synced",
            "tracking_number": update.tracking_number,
            "reason": "past TikTok's 72-hour window for shipping info updates",
        }
        return
    fulfillment["correction"] = {"status": "resolving", "tracking_number": update.tracking_number}
    _request_carrier(ctx, "correction", update)


# ------------------------------------------------------------------ personal data (SEC-3)
# The address in data is the sealed value the engine made of TikTok's (opaque
# here); the Shoplazza create command opens it. Erasure leaves the marker
# "[erased]" in its place; retention removes it.


def _address(data: dict[str, Any]) -> dict[str, Any] | None:
    """The address to send on, if the order still keeps one (never the marker)."""
    address = data.get("recipient_address")
    return address if isinstance(address, dict) else None


def _may_keep_address(data: dict[str, Any]) -> bool:
    personal = data.get("personal_data", {})
    return personal.get("status") != "erased" and "address_removed_at" not in personal


def forget_personal_data(ctx: StepContext[ErasureRecorded]) -> None:
    """The order's key was destroyed: what data kept of the buyer shows as erased."""
    erased = ctx.payload
    data = ctx.data
    if "recipient_address" in data:
        data["recipient_address"] = ERASED
    data.setdefault("personal_data", {}).update(
        status="erased", erased_at=ctx.now, reason=erased.reason
    )
    data["personal_data"].pop("address_until", None)


def drop_address(ctx: StepContext) -> None:
    """Retention is over: the address leaves the order's data, and the order's
    key is destroyed so the log's sealed copies can no longer be read."""
    personal = ctx.data.setdefault("personal_data", {})
    personal.pop("address_until", None)
    personal["address_removed_at"] = ctx.now
    ctx.data.pop("recipient_address", None)
    if personal.get("status") != "erased":
        ctx.emit(
            ERASE_COMMAND,
            {
                "entity": ctx.event.entity,
                "reason": "address retention ended after the order was completed or cancelled",
                "requested_by": "channelsync",
            },
            idempotency_key=f"{ctx.event.entity}:erase",
        )
