"""Guards and actions of the order chart: lifecycle ∥ Shoplazza sync ∥ fulfillment push.

The chart's three regions hold the statuses; these rules read them from the
configuration the step started from (``ctx.state``, e.g.
``lifecycle.on_hold,sync.synced,fulfillment.none``) and keep only facts in the
data: ids, reasons, attempts, timestamps. Each region's actions write their own
data keys, so the regions reacting to one event never write the same one."""

from __future__ import annotations

from typing import Any

from engine.charts.configuration import is_active, region_state
from engine.charts.schema import parse_duration
from engine.erasure import ERASE_COMMAND, ErasureRecorded
from engine.rules import Rules, StepContext
from engine.vault import ERASED
from statecharts import order_fulfillment, order_v1
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

# How long the buyer's address stays after the order is Completed or Cancelled (SEC-3).
DEFAULT_ADDRESS_RETENTION = "30d"
CODE_ON_HOLD = 21011044
CODE_ALREADY_SHIPPED = 21008099
CODE_FULFILLED_BY_TIKTOK = 21008025
# Failures a retry can cure; a cancelled order that never reached Shoplazza is not retried.
NOT_RETRIED = "cancelled on TikTok before it was created in Shoplazza"
WAITING_FOR_DETAIL = "waiting for the order detail"
LIFECYCLE, SYNC, FULFILLMENT = "lifecycle", "sync", "fulfillment"
# What a failed push's TikTok error code means for the push (LOGI-1, LOGI-4).
PUSH_FAILURES = {
    CODE_ON_HOLD: "on_hold",
    CODE_FULFILLED_BY_TIKTOK: "fulfilled_by_tiktok",
    CODE_ALREADY_SHIPPED: "already_shipped",
}


def register(rules: Rules) -> None:
    rules.register_events(
        {
            "order.status_changed": p.OrderStatusChanged,
            "order.detail_fetched": p.OrderDetail,
            "order.products_resolved": p.ProductsResolved,
            "order.shoplazza_created": p.ShoplazzaOrderCreated,
            "order.sync_failed": p.SyncFailed,
            "order.retry_sync": p.Nudge,
            "order.shoplazza_fulfilled": p.ShoplazzaFulfilled,
            "order.shoplazza_tracking_updated": p.ShoplazzaFulfilled,
            "order.retry_fulfillment": p.Nudge,
            "order.carrier_resolved": p.CarrierResolved,
            "order.shipping_pushed": p.ShippingPushed,
            "order.shipping_push_failed": p.ShippingPushFailed,
            "order.shoplazza_changed": p.ShoplazzaOrderChanged,
            "order.tiktok_return_changed": p.TikTokReturnChanged,
            "order.address_updated": p.Nudge,
            "order.personal_data_erased": ErasureRecorded,
        }
    )
    rules.guard("newer_update")(newer_update)
    rules.guard("order_status", takes_argument=True)(order_status)
    rules.guard("hold_lifted", refusal="the order is still Unpaid or On Hold")(hold_lifted)
    rules.guard("order_held", refusal="the order is neither Unpaid nor On Hold")(order_held)
    rules.guard("order_can_sync")(order_can_sync)
    rules.guard("sync_abandoned", refusal="the sync can be retried")(sync_abandoned)
    rules.guard("detail_known", refusal="the order detail is not fetched yet")(detail_known)
    rules.guard("line_items_known", refusal="the order's line items are not known yet")(
        line_items_known
    )
    rules.guard("fulfilled_by_tiktok", refusal="the order is Fulfilled by Seller")(
        fulfilled_by_tiktok
    )
    rules.guard("carrier", takes_argument=True)(carrier)
    rules.guard("purpose", takes_argument=True)(purpose)
    rules.guard("push_failure", takes_argument=True)(push_failure)
    rules.register_actions(
        record_status,
        start_address_retention,
        record_detail,
        refetch_detail,
        resolve_products,
        fetch_detail_for_sync,
        create_in_shoplazza,
        record_shoplazza_order,
        record_sync_failure,
        record_shoplazza_change,
        record_return,
        forget_personal_data,
        drop_address,
    )
    order_fulfillment.register(rules)
    order_v1.register(rules)  # version 1's rules, for the orders and events it applied
    # Version 1 orders (flat, statuses in data) move to version 2's regions.
    from statecharts.order_upgrade import upgrade_from_v1  # it reads this module's names

    rules.upgrade("order_v1_to_v2")(upgrade_from_v1)


# ------------------------------------------------------------------ the regions' states


# lifecycle_of's answers: an order step asks two to four times, for the few
# configurations the chart has.
_LIFECYCLES: dict[str, str] = {}
_LIFECYCLES_KEPT = 1024


def lifecycle_of(state: str) -> str:
    """The order's TikTok status (its lifecycle state's name) in a configuration
    or a target id: ``lifecycle.on_hold,sync.synced,...`` -> ``on_hold``."""
    known = _LIFECYCLES.get(state)
    if known is None:
        leaf = region_state(state, LIFECYCLE)
        known = leaf.removeprefix(LIFECYCLE + ".") if leaf else state
        if len(_LIFECYCLES) >= _LIFECYCLES_KEPT:
            _LIFECYCLES.clear()
        _LIFECYCLES[state] = known
    return known


def is_synced(state: str) -> bool:
    """Whether the order exists in Shoplazza (its sync region is Synced)."""
    return is_active(state, f"{SYNC}.synced")


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


def _propagate(
    ctx: StepContext, before: dict[str, Any], after: dict[str, Any], shoplazza_order_id: str
) -> None:
    """Send Shoplazza what a TikTok change altered, in lifecycle order, and only
    what moves its copy forward (data.shoplazza is what Shoplazza shows).
    Callers send only once the order exists in Shoplazza."""
    base = {"order": ctx.event.entity, "shoplazza_order_id": shoplazza_order_id}
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
    target, current = payload.order_status.lower(), lifecycle_of(ctx.state)
    if update_time == last and LIFECYCLE_RANK[target] > LIFECYCLE_RANK[current]:
        return True
    if update_time == last:
        return ctx.refuse(
            f"stale: update_time {update_time} equals the last one and "
            f"{target} is not further along than {current}"
        )
    return ctx.refuse(f"stale: update_time {update_time} is not newer than {last}, already applied")


def order_status(ctx: StepContext[p.OrderStatusChanged], status: str) -> bool:
    return ctx.payload.order_status == status


def hold_lifted(ctx: StepContext[p.OrderStatusChanged]) -> bool:
    """LOGI-4: TikTok's new status is past Unpaid and On Hold (and not Cancelled)."""
    status = ctx.payload.order_status.lower()
    return status in LIFECYCLE_RANK and status not in ON_HOLD_STATES | {"cancelled"}


def order_held(ctx: StepContext) -> bool:
    """LOGI-4: shipping info never goes to TikTok while the order is Unpaid or On Hold."""
    return lifecycle_of(ctx.state) in ON_HOLD_STATES


def _sync_problem(ctx: StepContext, resolved: p.ProductsResolved) -> str | None:
    if lifecycle_of(ctx.state) == "cancelled" and not is_synced(ctx.state):
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


def sync_abandoned(ctx: StepContext[p.ProductsResolved]) -> bool:
    return _sync_problem(ctx, ctx.payload) == NOT_RETRIED


def detail_known(ctx: StepContext) -> bool:
    return bool(ctx.data.get("detail"))


def line_items_known(ctx: StepContext) -> bool:
    """The push names TikTok's own line item ids: it needs the order detail's."""
    return any(item.get("id") for item in ctx.data.get("detail", {}).get("line_items", []))


def fulfilled_by_tiktok(ctx: StepContext) -> bool:
    return ctx.data.get("detail", {}).get("fulfillment_type") == "FULFILLMENT_BY_TIKTOK"


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


def purpose(
    ctx: StepContext[p.CarrierResolved | p.ShippingPushed | p.ShippingPushFailed], wanted: str
) -> bool:
    """Whether a result answers the first push ('ship') or a correction (LOGI-5)."""
    return ctx.payload.purpose == wanted


def push_failure(ctx: StepContext[p.ShippingPushFailed], kind: str) -> bool:
    """What TikTok's error code says of a failed push: on_hold, fulfilled_by_tiktok,
    already_shipped, or 'other' for every other failure."""
    return PUSH_FAILURES.get(ctx.payload.code or 0, "other") == kind


# ------------------------------------------------------------------ lifecycle


def record_status(ctx: StepContext[p.OrderStatusChanged]) -> None:
    payload = ctx.payload
    before, after = lifecycle_of(ctx.state), lifecycle_of(ctx.target)
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
    if first:
        data.setdefault("sync", {"reason": WAITING_FOR_DETAIL})
    data.setdefault("channel", SALES_CHANNEL)
    # Fetch once on first sight, and once more on entering the states whose
    # address TikTok shows (repeated updates there do not fetch again).
    entering_visible = after in ADDRESS_VISIBLE and before not in ADDRESS_VISIBLE
    if first or (entering_visible and not data.get("address_fetched")):
        _fetch_detail(ctx, after)
    if before != after and is_synced(ctx.state):
        shoplazza_order_id = data["sync"]["shoplazza_order_id"]
        _propagate(ctx, shoplazza_view(before), shoplazza_view(after), shoplazza_order_id)


def start_address_retention(ctx: StepContext) -> None:
    """Entry of Completed and Cancelled: the buyer's address is kept only this long (SEC-3)."""
    retention = parse_duration(ctx.settings.get("address_retention", DEFAULT_ADDRESS_RETENTION))
    ctx.data.setdefault("personal_data", {})["address_until"] = ctx.now + retention


def _order_id(ctx: StepContext) -> str:
    """TikTok's order id: recorded from its first status, else the key's (order:<id>)."""
    return str(ctx.data.get("order_id") or ctx.event.entity.split(":", 1)[-1])


def _fetch_detail(ctx: StepContext, status: str) -> None:
    include = status in ADDRESS_VISIBLE
    ctx.emit(
        "fetch_order_detail",
        {
            "order": ctx.event.entity,
            "order_id": _order_id(ctx),
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
    visible = lifecycle_of(ctx.state) in ADDRESS_VISIBLE
    if visible and isinstance(address, dict) and _may_keep_address(data):
        data["recipient_address"] = detail.recipient_address
        data["address_fetched"] = True
        if is_synced(ctx.state):
            ctx.emit(
                "update_shoplazza_address",
                {
                    "order": ctx.event.entity,
                    "shoplazza_order_id": data["sync"]["shoplazza_order_id"],
                    "recipient_address": detail.recipient_address,
                },
            )
    # else: ORD-5, the address of an Unpaid/On Hold order is never kept.


def refetch_detail(ctx: StepContext) -> None:
    status = lifecycle_of(ctx.state)
    if status in ADDRESS_VISIBLE:
        _fetch_detail(ctx, status)


# ------------------------------------------------------------------ sync into Shoplazza


def resolve_products(ctx: StepContext) -> None:
    """Ask which Shoplazza products the order's line items are (ORD-3, ORD-4)."""
    detail = ctx.data["detail"]
    sync = ctx.data.setdefault("sync", {})
    sync["reason"] = "checking the order's products"
    sync.pop("retry_at", None)
    ctx.emit(
        "resolve_order_products",
        {
            "order": ctx.event.entity,
            "shop_id": ctx.data.get("shop_id"),
            "product_ids": sorted({item["product_id"] for item in detail["line_items"]}),
        },
    )


def fetch_detail_for_sync(ctx: StepContext) -> None:
    """A retry with no order detail yet: fetch it; its arrival resolves the products (CONN-4)."""
    sync = ctx.data.setdefault("sync", {})
    sync["reason"] = WAITING_FOR_DETAIL
    sync.pop("retry_at", None)
    _fetch_detail(ctx, lifecycle_of(ctx.state))


def create_in_shoplazza(ctx: StepContext[p.ProductsResolved]) -> None:
    resolved = ctx.payload
    data = ctx.data
    status = lifecycle_of(ctx.state)
    sync = data.setdefault("sync", {})
    attempt = sync.get("attempts", 0) + 1
    view = shoplazza_view(status)
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
    if status in ADDRESS_VISIBLE and _address(data):
        request["recipient_address"] = _address(data)
    ctx.emit(
        "create_shoplazza_order", request, idempotency_key=f"{ctx.event.entity}:create:{attempt}"
    )
    sync.update(reason="creating the order in Shoplazza", attempts=attempt)
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
        shoplazza_view(lifecycle_of(ctx.state)),
        created.shoplazza_order_id,
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
    sync["reason"] = reason
    if reason == NOT_RETRIED:
        sync.pop("retry_at", None)
        return
    wait = parse_duration(ctx.settings.get("order_sync_retry", DEFAULT_SYNC_RETRY))
    sync.update(retry_at=ctx.now + wait, failures=sync.get("failures", 0) + 1)


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
