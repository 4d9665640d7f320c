"""Guards and actions of the product_listing chart."""

from __future__ import annotations

from typing import Any

from engine.charts.schema import parse_duration
from engine.rules import Rules, StepContext
from statecharts import payloads as p
from statecharts.product_checks import check_product, content_fields
from statecharts.tiktok_request import CURRENCY, listing_request, quick_fields

DEFAULT_REVIEW_TIMEOUT = "2h"  # PROD-9: review usually takes 1 to 2 hours
DEFAULT_REVIEW_POLL_EVERY = "1h"
DEFAULT_QUICK_UPDATE_WINDOW = "10s"  # PROD-6: a burst inside this window sends its last values


def register(rules: Rules) -> None:
    rules.register_events(
        {
            "listing.added": p.ListingAdded,
            "listing.product_updated": p.ProductUpdated,
            "listing.product_removed": p.ProductRemoved,
            "listing.resubmit": p.Resubmit,
            "listing.submitted": p.Submitted,
            "listing.submit_failed": p.SubmitFailed,
            "listing.review_result": p.ReviewResult,
            "listing.category_changed": p.CategoryChanged,
            "listing.status_notified": p.Nudge,
        }
    )

    rules.guard("passes_checks", refusal="the product fails the required-field checks")(
        passes_checks
    )
    rules.guard("product_published", refusal="the product is unpublished")(product_published)
    rules.guard("content_changed", refusal="nothing TikTok reviews has changed")(content_changed)
    rules.guard("tiktok_status", takes_argument=True)(tiktok_status)
    rules.register_actions(
        record_product,
        submit_listing,
        record_check_failures,
        record_submission,
        record_submit_failure,
        record_approval,
        record_audit_failure,
        schedule_review_poll,
        poll_review_status,
        deactivate_on_tiktok,
        edit_listing,
        queue_quick_updates,
        flush_quick_updates,
        keep_merchant_category,
        edit_after_submission,
    )


def _product(ctx: StepContext) -> dict[str, Any]:
    """The product this step is about: the event's, or the one on record."""
    payload = ctx.payload
    if isinstance(payload, p.ListingAdded | p.ProductUpdated):
        return payload.product.model_dump(mode="json")
    return ctx.data["product"]


# ------------------------------------------------------------------ guards


def passes_checks(ctx: StepContext) -> bool:
    return not check_product(_product(ctx))


def product_published(ctx: StepContext) -> bool:
    return bool(_product(ctx).get("published", True))


def content_changed(ctx: StepContext) -> bool:
    return content_fields(_product(ctx)) != content_fields(ctx.data.get("product") or {})


def tiktok_status(ctx: StepContext, statuses: str) -> bool:
    return ctx.payload.status in statuses.split("|")  # type: ignore[attr-defined]


# ------------------------------------------------------------------ actions


def record_product(ctx: StepContext) -> None:
    payload = ctx.payload
    if isinstance(payload, p.ListingAdded):
        ctx.data["shop"] = payload.shop
    ctx.data["product"] = _product(ctx)
    ctx.data["title"] = ctx.data["product"].get("title", "")


def submit_listing(ctx: StepContext) -> None:
    """Create the product on TikTok. The idempotency key is the listing plus its
    submission count, so a retried call never creates a second listing (PLAT-7)."""
    submissions = ctx.data.get("submissions", 0) + 1
    ctx.data["submissions"] = submissions
    ctx.data["failure_reasons"] = []
    product = ctx.data["product"]
    category = ctx.data.get("category") or {}
    attributes = ctx.data.get("attributes") or {}
    # PROD-7: the merchant's category, else one the merchant set on TikTok; with
    # neither, TikTok recommends one at create and an edit keeps TikTok's.
    chosen = attributes.get("category_id") or (
        category.get("category_id") if category.get("locked") else None
    )
    request = listing_request(product, attributes, chosen)
    existing = ctx.data.get("tiktok_product_id")
    command = "edit_listing" if existing else "create_listing"
    ctx.emit(
        command,
        {
            "shop": ctx.data["shop"],
            "listing": ctx.event.entity,
            "tiktok_product_id": existing,
            "product": request,
            "keep_category": bool(category.get("locked")),
        },
        idempotency_key=f"{ctx.event.entity}:submit:{submissions}",
    )
    ctx.data["last_sync_at"] = ctx.now


def record_check_failures(ctx: StepContext) -> None:
    ctx.data["failure_reasons"] = check_product(ctx.data["product"])
    ctx.data["last_sync_at"] = ctx.now


def edit_after_submission(ctx: StepContext) -> None:
    ctx.data["edit_after_submission"] = True


def record_submission(ctx: StepContext) -> None:
    """TikTok has the listing. A submission answered after the product was
    rejected locally still leaves its id, so a resubmission edits it."""
    payload: p.Submitted = ctx.payload  # type: ignore[assignment]
    ctx.data["tiktok_product_id"] = payload.product_id
    if payload.skus:  # price and stock updates name TikTok's SKU ids
        ctx.data["tiktok_skus"] = {sku.seller_sku: sku.id for sku in payload.skus}
    if ctx.data.pop("edit_after_submission", False) and ctx.state == "pending_sync":
        submit_listing(ctx)
    category = ctx.data.setdefault("category", {})
    if payload.category_id and not category.get("locked"):
        merchant = (ctx.data.get("attributes") or {}).get("category_id")
        category["category_id"] = payload.category_id  # PROD-7: TikTok picks it on first sync
        category["source"] = (
            "merchant" if payload.category_id == merchant else "tiktok_recommendation"
        )
    ctx.data["synced_fields"] = quick_fields(ctx.data["product"])
    _arm_review_poll(ctx, first=True)


def record_submit_failure(ctx: StepContext) -> None:
    payload: p.SubmitFailed = ctx.payload  # type: ignore[assignment]
    reasons = [
        dict(r.model_dump(mode="json"), source="tiktok") for r in payload.audit_failed_reasons
    ]
    ctx.data["failure_reasons"] = reasons or [
        {
            "source": "tiktok",
            "position": "",
            "reasons": [payload.message],
            "suggestions": [],
            "code": payload.code,
        }
    ]


def record_approval(ctx: StepContext) -> None:
    ctx.data["failure_reasons"] = []
    ctx.data.pop("review", None)
    ctx.data["approved_at"] = ctx.now


def record_audit_failure(ctx: StepContext) -> None:
    payload: p.ReviewResult = ctx.payload  # type: ignore[assignment]
    reasons = [
        dict(r.model_dump(mode="json"), source="tiktok") for r in payload.audit_failed_reasons
    ]
    if not reasons:
        reasons = [
            {
                "source": "tiktok",
                "position": "",
                "reasons": [f"TikTok status {payload.status}"],
                "suggestions": [],
            }
        ]
    ctx.data["failure_reasons"] = reasons
    ctx.data.pop("review", None)


def _arm_review_poll(ctx: StepContext, first: bool) -> None:
    setting = "review_timeout" if first else "review_poll_every"
    default = DEFAULT_REVIEW_TIMEOUT if first else DEFAULT_REVIEW_POLL_EVERY
    wait = parse_duration(ctx.settings.get(setting, default))
    review = ctx.data.setdefault("review", {})
    review.setdefault("since", ctx.now)
    review["poll_at"] = ctx.now + wait


def schedule_review_poll(ctx: StepContext) -> None:
    _arm_review_poll(ctx, first="review" not in ctx.data)


def poll_review_status(ctx: StepContext) -> None:
    """Webhooks can be lost: ask TikTok for the product's status (PROD-9)."""
    review = ctx.data.setdefault("review", {})
    review["polls"] = review.get("polls", 0) + 1
    ctx.emit(
        "fetch_product_status",
        {
            "shop": ctx.data["shop"],
            "listing": ctx.event.entity,
            "tiktok_product_id": ctx.data.get("tiktok_product_id"),
        },
    )
    _arm_review_poll(ctx, first=False)


def deactivate_on_tiktok(ctx: StepContext) -> None:
    payload = ctx.payload
    reason = payload.reason if isinstance(payload, p.ProductRemoved) else "unpublished"
    ctx.data["deactivated_because"] = f"{reason} in Shoplazza"
    ctx.data.pop("review", None)
    ctx.data.pop("quick_updates", None)
    if ctx.data.get("tiktok_product_id"):
        ctx.emit(
            "deactivate_listing",
            {
                "shop": ctx.data["shop"],
                "listing": ctx.event.entity,
                "tiktok_product_id": ctx.data["tiktok_product_id"],
            },
        )


def edit_listing(ctx: StepContext) -> None:
    """A content edit goes through TikTok's review again."""
    submit_listing(ctx)
    _arm_review_poll(ctx, first=True)


def queue_quick_updates(ctx: StepContext) -> None:
    """Remember the latest price/stock values; they go out when the window closes (PROD-6)."""
    latest = quick_fields(_product(ctx))
    queue = ctx.data.setdefault("quick_updates", {})
    queue["values"] = latest
    if "flush_at" not in queue:
        window = parse_duration(
            ctx.settings.get("quick_update_window", DEFAULT_QUICK_UPDATE_WINDOW)
        )
        queue["flush_at"] = ctx.now + window


def flush_quick_updates(ctx: StepContext) -> None:
    queue = ctx.data.pop("quick_updates", None)
    if not queue:
        return
    latest, synced = queue["values"], ctx.data.get("synced_fields") or {}
    base = {
        "shop": ctx.data["shop"],
        "listing": ctx.event.entity,
        "tiktok_product_id": ctx.data.get("tiktok_product_id"),
    }
    sku_ids = ctx.data.get("tiktok_skus") or {}
    old_prices, old_stock = synced.get("prices") or {}, synced.get("inventory") or {}
    prices = [
        {"id": sku_ids.get(sku), "seller_sku": sku, "amount": amount, "currency": CURRENCY}
        for sku, amount in latest["prices"].items()
        if old_prices.get(sku) != amount
    ]
    stock = [
        {"id": sku_ids.get(sku), "seller_sku": sku, "quantity": quantity}
        for sku, quantity in latest["inventory"].items()
        if old_stock.get(sku) != quantity
    ]
    if prices:
        ctx.emit("update_price", {**base, "prices": prices})
    if stock:
        ctx.emit("update_inventory", {**base, "inventory": stock})
    ctx.data["synced_fields"] = latest
    ctx.data["last_sync_at"] = ctx.now


def keep_merchant_category(ctx: StepContext) -> None:
    """A category set on TikTok is the merchant's: sync never overwrites it (PROD-7)."""
    payload: p.CategoryChanged = ctx.payload  # type: ignore[assignment]
    kept = ctx.data.get("category") or {}
    if (
        kept.get("locked")
        and payload.update_time is not None
        and (kept.get("update_time") or 0) > payload.update_time
    ):
        return  # a late delivery of an older change: the newer category stays
    ctx.data["category"] = {
        "category_id": payload.category_id,
        "previous_category_id": payload.previous_category_id,
        "source": payload.change_source,
        "locked": True,
        "update_time": payload.update_time,
    }
