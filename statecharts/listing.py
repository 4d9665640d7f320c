"""Guards and actions of the product_listing chart.

A listing keeps two things apart: ``data.product``, the Shoplazza product as
Shoplazza sends it (a products/update merges into it), and ``data.attributes``,
what the merchant supplied for TikTok alone (PROD-10). The checks and the
question "did anything TikTok reviews change?" look at both together.
"""

from __future__ import annotations

from typing import Any

from engine.charts.configuration import is_active
from engine.charts.schema import parse_duration
from engine.rules import Rules, StepContext
from statecharts import payloads as p
from statecharts.chart_upgrades import listing_v1_to_v2
from statecharts.product_checks import check_product, content_fields, price_in_range
from statecharts.shoplazza_product import is_stale, merge_product, shoplazza_fields
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
            "listing.attributes_set": p.AttributesSet,
            "listing.reactivate": p.Reactivate,
        }
    )

    rules.guard("passes_checks", refusal="the product fails the required-field checks")(
        passes_checks
    )
    rules.guard("change", takes_argument=True)(change)
    rules.guard(
        "fresh_update",
        refusal="Shoplazza sent an older version of the product than the one on record",
    )(fresh_update)
    rules.guard("has_tiktok_product", refusal="TikTok Shop has no product for it yet")(
        has_tiktok_product
    )
    rules.guard("tiktok_live", refusal="the product is not live on TikTok Shop")(tiktok_live)
    rules.guard("newer_status", refusal="TikTok's answer is older than the status on record")(
        newer_status
    )
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
        record_attributes,
        record_edit_failure,
        clear_edit_failure,
        record_edit_refusal,
        record_tiktok_status,
        note_tiktok_status,
        reactivate_listing,
        forget_tiktok_product,
        take_down_late_submission,
    )
    rules.upgrade("listing_v1_to_v2")(listing_v1_to_v2)


def _product(ctx: StepContext) -> dict[str, Any]:
    """The product as it is once this step applies: the one added, the one on
    record with a Shoplazza update merged in, or the one on record."""
    payload = ctx.payload
    if isinstance(payload, p.ListingAdded):
        return shoplazza_fields(payload.product.model_dump(mode="json"))
    stored = ctx.data.get("product") or {}
    if isinstance(payload, p.ProductUpdated):
        return merge_product(stored, payload.product.model_dump(mode="json"))
    return stored


def _attributes(ctx: StepContext) -> dict[str, Any]:
    """The merchant's TikTok attributes once this step applies (PROD-10)."""
    attributes = dict(ctx.data.get("attributes") or {})
    payload = ctx.payload
    if isinstance(payload, p.AttributesSet):
        for key, value in payload.changes().items():
            if value is None:
                attributes.pop(key, None)
            else:
                attributes[key] = value
    return attributes


def _failures(ctx: StepContext) -> list[dict[str, Any]]:
    return check_product(_product(ctx), _attributes(ctx), ctx.data.get("category_rules"))


def _last_sent(data: dict[str, Any]) -> dict[str, Any] | None:
    """What TikTok last reviewed of the product; None when no version of it has
    reached TikTok since it last failed the local checks (anything is news)."""
    if "submitted_content" in data:
        return data["submitted_content"]
    # A listing recorded before content was kept: its product is what was sent.
    return content_fields(data.get("product") or {}, data.get("attributes") or {})


def _reviewed_content_changed(ctx: StepContext) -> bool:
    return content_fields(_product(ctx), _attributes(ctx)) != _last_sent(ctx.data)


# ------------------------------------------------------------------ guards


def passes_checks(ctx: StepContext) -> bool:
    return not _failures(ctx)


def classify_change(ctx: StepContext) -> str:
    """What a (fresh) Shoplazza update or the merchant's attributes mean for TikTok:

    - ``unpublished``: a Shoplazza update took the product off sale;
    - ``failing``: the product as it would become fails the local checks;
    - ``reviewed``: something TikTok reviews differs from what it last saw;
    - ``quiet``: only price, stock or fields TikTok does not review changed.

    A stale update never gets here: ``fresh_update`` comes first in the chart.
    """
    payload = ctx.payload
    if isinstance(payload, p.ProductUpdated) and not _product(ctx).get("published", True):
        return "unpublished"  # only Shoplazza takes a product off sale
    if _failures(ctx):
        return "failing"
    return "reviewed" if _reviewed_content_changed(ctx) else "quiet"


def change(ctx: StepContext[p.AttributesSet | p.ProductUpdated], kinds: str) -> bool:
    return classify_change(ctx) in kinds.split("|")


def fresh_update(ctx: StepContext[p.ProductUpdated]) -> bool:
    """Shoplazza's webhooks can arrive out of order: an update older (by its
    updated_at) than the product on record is not applied."""
    payload = ctx.payload
    return not is_stale(ctx.data.get("product") or {}, payload.product.model_dump(mode="json"))


def has_tiktok_product(ctx: StepContext) -> bool:
    return bool(ctx.data.get("tiktok_product_id"))


def tiktok_live(ctx: StepContext) -> bool:
    """TikTok's last word on the product is that it sells (ACTIVATE)."""
    return (ctx.data.get("tiktok_status") or {}).get("status") == "ACTIVATE"


def newer_status(ctx: StepContext[p.ReviewResult]) -> bool:
    """Product statuses can arrive out of order: an answer older (by TikTok's
    update_time) than the one on record is not followed; an equal one is."""
    payload = ctx.payload
    last = (ctx.data.get("tiktok_status") or {}).get("update_time")
    return payload.update_time is None or last is None or payload.update_time >= last


def tiktok_status(ctx: StepContext[p.ReviewResult], statuses: str) -> bool:
    return ctx.payload.status in statuses.split("|")


# ------------------------------------------------------------------ actions


def record_product(ctx: StepContext[p.ListingAdded | p.ProductUpdated]) -> None:
    payload = ctx.payload
    if isinstance(payload, p.ListingAdded):
        ctx.data["shop"] = payload.shop
    ctx.data["product"] = _product(ctx)
    ctx.data["title"] = ctx.data["product"].get("title", "")


def record_attributes(ctx: StepContext[p.AttributesSet]) -> None:
    """The merchant's TikTok attributes; no Shoplazza webhook touches them (PROD-10)."""
    ctx.data["attributes"] = _attributes(ctx)


def submit_listing(ctx: StepContext) -> None:
    """Create the product on TikTok. The idempotency key is the listing plus its
    submission count, so a retried call never creates a second listing (PLAT-7)."""
    submissions = ctx.data.get("submissions", 0) + 1
    ctx.data["submissions"] = submissions
    ctx.data["failure_reasons"] = []
    ctx.data.pop("edit_failure", None)  # the version going out supersedes a held edit
    ctx.data["submitted_content"] = content_fields(
        ctx.data["product"], ctx.data.get("attributes") or {}
    )
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
    if existing and ctx.data.get("tiktok_deactivated"):
        _activate(ctx)  # PROD-11: an edit alone leaves a deactivated product off sale
    elif not existing:
        ctx.data.pop("tiktok_deactivated", None)


def record_check_failures(ctx: StepContext) -> None:
    """Rejected by the local checks (PROD-3): nothing of this version reached
    TikTok, so the next version that passes is sent, whatever changed."""
    ctx.data["failure_reasons"] = _failures(ctx)
    ctx.data["submitted_content"] = None
    ctx.data.pop("edit_failure", None)
    ctx.data.pop("edit_after_submission", None)
    ctx.data["last_sync_at"] = ctx.now


def record_edit_failure(ctx: StepContext) -> None:
    """PROD-12: an edit that fails the local checks is not sent. TikTok keeps
    the version it has (a live product keeps selling); the edit's failure is
    shown as the product's reason until a later edit passes."""
    ctx.data["edit_failure"] = _failures(ctx)
    ctx.data.pop("edit_after_submission", None)
    ctx.data["last_sync_at"] = ctx.now


def clear_edit_failure(ctx: StepContext) -> None:
    """The product passes again with nothing new for TikTok to review."""
    ctx.data.pop("edit_failure", None)


def edit_after_submission(ctx: StepContext) -> None:
    """Chart version 1 only: the flag that version 2 has a state for
    (``pending_sync.edited``). Kept, with the flag's other reads and clears in
    this module, so events version 1 applied replay as they ran (ENG-9)."""
    ctx.data["edit_after_submission"] = True


def record_submission(ctx: StepContext[p.Submitted]) -> None:
    """TikTok has the listing. A submission answered after the product was
    rejected locally still leaves its id, so a resubmission edits it."""
    payload = ctx.payload
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


def _refusal_reasons(payload: p.SubmitFailed) -> list[dict[str, Any]]:
    reasons = [
        dict(r.model_dump(mode="json"), source="tiktok") for r in payload.audit_failed_reasons
    ]
    return reasons or [
        {
            "source": "tiktok",
            "position": "",
            "reasons": [f"TikTok Shop refused the product: {payload.message}"],
            "suggestions": [],
            "code": payload.code,
        }
    ]


def record_submit_failure(ctx: StepContext[p.SubmitFailed]) -> None:
    ctx.data["failure_reasons"] = _refusal_reasons(ctx.payload)


def record_edit_refusal(ctx: StepContext[p.SubmitFailed]) -> None:
    """TikTok refused an edit of a product it sells: it keeps selling the
    version it has (PROD-12), and the refusal is shown as the reason."""
    ctx.data["edit_failure"] = _refusal_reasons(ctx.payload)
    ctx.data.pop("review", None)


def _note_status(ctx: StepContext[p.ReviewResult]) -> None:
    payload = ctx.payload
    last = (ctx.data.get("tiktok_status") or {}).get("update_time")
    ctx.data["tiktok_status"] = {
        "status": payload.status,
        "update_time": payload.update_time if payload.update_time is not None else last,
    }


def note_tiktok_status(ctx: StepContext[p.ReviewResult]) -> None:
    """Remember TikTok's word without changing what the merchant sees."""
    _note_status(ctx)
    if ctx.payload.status == "ACTIVATE":
        ctx.data.pop("tiktok_deactivated", None)
    elif ctx.payload.status == "SELLER_DEACTIVATED":
        ctx.data["tiktok_deactivated"] = True


def record_approval(ctx: StepContext[p.ReviewResult]) -> None:
    ctx.data["failure_reasons"] = []
    ctx.data.pop("review", None)
    ctx.data["approved_at"] = ctx.now
    _note_status(ctx)
    ctx.data.pop("tiktok_deactivated", None)


def record_audit_failure(ctx: StepContext[p.ReviewResult]) -> None:
    payload = ctx.payload
    reasons = [
        dict(r.model_dump(mode="json"), source="tiktok") for r in payload.audit_failed_reasons
    ]
    if not reasons:
        reasons = [
            {
                "source": "tiktok",
                "position": "",
                "reasons": [
                    "TikTok Shop did not approve the product and gave no reason: "
                    "edit it in Shoplazza, or resubmit it."
                ],
                "suggestions": [],
            }
        ]
    ctx.data["failure_reasons"] = reasons
    ctx.data.pop("review", None)
    _note_status(ctx)


# What each TikTok status other than ACTIVATE, FAILED and PENDING tells the merchant.
TIKTOK_STATUS_REASONS = {
    "SELLER_DEACTIVATED": "The product was deactivated in TikTok Seller Center: reactivate it "
    "there, or from this channel, to sell it again.",
    "PLATFORM_DEACTIVATED": "TikTok Shop deactivated the product. Fix what TikTok reports, in "
    "Shoplazza or in the product's TikTok attributes, and it is sent again; or resubmit it.",
    "FREEZE": "TikTok Shop froze the product while it looks into it. Appeal in TikTok Seller "
    "Center; the channel follows TikTok's decision.",
    "DELETED": "The product was deleted on TikTok Shop. Resubmit it to create it there again.",
}


def record_tiktok_status(ctx: StepContext[p.ReviewResult]) -> None:
    """A status TikTok set on its side: shown as what it is (PROD-11), with
    TikTok's reasons when it gave some and what the merchant can do."""
    payload = ctx.payload
    reasons = [
        dict(r.model_dump(mode="json"), source="tiktok") for r in payload.audit_failed_reasons
    ]
    sentence = TIKTOK_STATUS_REASONS.get(payload.status, f"TikTok status {payload.status}.")
    ctx.data["failure_reasons"] = reasons or [
        {"source": "tiktok", "position": "", "reasons": [sentence], "suggestions": []}
    ]
    ctx.data.pop("review", None)
    ctx.data.pop("quick_updates", None)
    note_tiktok_status(ctx)


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


def deactivate_on_tiktok(ctx: StepContext[p.ProductRemoved | p.ProductUpdated]) -> None:
    payload = ctx.payload
    reason = payload.reason if isinstance(payload, p.ProductRemoved) else "unpublished"
    ctx.data["deactivated_because"] = f"{reason} in Shoplazza"
    ctx.data.pop("review", None)
    ctx.data.pop("quick_updates", None)
    ctx.data.pop("edit_after_submission", None)
    if is_active(ctx.state, "deleted_on_tiktok"):
        forget_tiktok_product(ctx)  # nothing left on TikTok to deactivate
        return
    if ctx.data.get("tiktok_product_id"):
        ctx.data["tiktok_deactivated"] = True
        _emit_for_tiktok_product(ctx, "deactivate_listing")


def edit_listing(ctx: StepContext) -> None:
    """A content edit goes through TikTok's review again."""
    submit_listing(ctx)
    _arm_review_poll(ctx, first=True)


def queue_quick_updates(ctx: StepContext) -> None:
    """Remember the latest price/stock values; they go out when the window closes (PROD-6)."""
    latest = quick_fields(_product(ctx))
    # A price the checks refuse (PROD-12: the edit is held) is not sent either:
    # TikTok would refuse it; the price it has stays until a valid one comes.
    synced = (ctx.data.get("synced_fields") or {}).get("prices") or {}
    latest["prices"] = {
        sku: amount if price_in_range(amount) or sku not in synced else synced[sku]
        for sku, amount in (latest.get("prices") or {}).items()
    }
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


def keep_merchant_category(ctx: StepContext[p.CategoryChanged]) -> None:
    """A category set on TikTok is the merchant's: sync never overwrites it (PROD-7)."""
    payload = ctx.payload
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


def _emit_for_tiktok_product(ctx: StepContext, command: str) -> None:
    """A command about the listing's TikTok product as a whole (activate,
    deactivate), sent only once the listing has its TikTok product id."""
    ctx.emit(
        command,
        {
            "shop": ctx.data["shop"],
            "listing": ctx.event.entity,
            "tiktok_product_id": ctx.data["tiktok_product_id"],
        },
    )


def _activate(ctx: StepContext) -> None:
    """Ask TikTok to sell the product again (its handler, like every platform
    command, waits while the shop's authorization is inactive)."""
    ctx.data.pop("tiktok_deactivated", None)
    _emit_for_tiktok_product(ctx, "activate_listing")


def reactivate_listing(ctx: StepContext) -> None:
    """PROD-11: a product republished in Shoplazza, or one the merchant asks to
    sell again, is reactivated on TikTok. What changed meanwhile that TikTok
    reviews goes out as an edit first; price and stock follow on their own.
    TikTok's next status (its webhook, or the review poll) says where it stands."""
    ctx.data["tiktok_deactivated"] = True
    ctx.data.pop("deactivated_because", None)
    failures = _failures(ctx)
    if failures:
        ctx.data["edit_failure"] = failures  # PROD-12: TikTok's version sells, the edit waits
        _activate(ctx)
    elif _reviewed_content_changed(ctx):
        submit_listing(ctx)
    else:
        _activate(ctx)
    queue_quick_updates(ctx)
    ctx.data.pop("review", None)
    _arm_review_poll(ctx, first=True)


def forget_tiktok_product(ctx: StepContext) -> None:
    """The product is gone from TikTok: the next submission creates it anew."""
    for key in ("tiktok_product_id", "tiktok_skus", "tiktok_status", "tiktok_deactivated"):
        ctx.data.pop(key, None)
    ctx.data["submitted_content"] = None


def take_down_late_submission(ctx: StepContext) -> None:
    """TikTok answered a create after the product left sale in Shoplazza: the
    product it made is deactivated as well, or it would sell what the merchant
    took down (PROD-8). Its id is kept, so republishing reactivates it."""
    ctx.data.pop("review", None)
    ctx.data["tiktok_deactivated"] = True
    _emit_for_tiktok_product(ctx, "deactivate_listing")
