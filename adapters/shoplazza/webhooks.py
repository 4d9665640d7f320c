"""Shoplazza webhooks -> the channel's events.

Topics: products/update and products/delete (listing changes), orders/update
(a fulfillment with tracking, or payment/status changes made in Shoplazza),
orders/cancelled, app/uninstalled. Orders are matched to their TikTok order by
the ``tiktok_order:<id>`` tag the channel put on them. Shoplazza sends no
delivery id. A product update, a product deletion and a fulfillment are named
by the change itself (the object's id and its ``updated_at``), so a redelivery
and the scheduled pull of the same change are one event (PLAT-3, PLAT-8);
other bodies by a hash of topic and body (a redelivery of the same body is a
duplicate).
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic_core import from_json, to_json

from statecharts.shoplazza_product import VARIANT_FIELDS, shoplazza_fields


class ShoplazzaWebhookRejected(Exception):
    """Its text never quotes the body's values (SEC-2)."""

    quotes_no_input = True


def store_of(shop_domain: str) -> str:
    """``demo-store.myshoplaza.com`` -> ``demo-store``."""
    return shop_domain.split(".", 1)[0]


def tiktok_order_id(order: dict[str, Any]) -> str | None:
    """The TikTok order id from the channel's tag; tags come as a string or a list."""
    tags = order.get("tags") or ""
    listed = tags.split(",") if isinstance(tags, str) else tags if isinstance(tags, list) else []
    for tag in listed:
        if isinstance(tag, str) and tag.strip().startswith("tiktok_order:"):
            return tag.strip().split(":", 1)[1]
    return None


def _digest(value: Any) -> str:
    return hashlib.sha256(to_json(value)).hexdigest()[:16]


def product_event_id(product: dict[str, Any]) -> str | None:
    """One product change, by products/update or by the product list: its id,
    ``updated_at`` and content. None when the body has no ``updated_at``."""
    if not product.get("updated_at"):
        return None
    # The variant fields the channel keeps: two edits within one second of
    # ``updated_at`` (its resolution) differ in these, and the same change read
    # from a webhook or from the product list agrees on them.
    content = {
        "title": product.get("title"),
        "description": product.get("description"),
        "published": product.get("published"),
        "images": [i.get("src") for i in product.get("images") or []],
        "variants": [{k: v.get(k) for k in VARIANT_FIELDS} for v in product.get("variants") or []],
        "collection_ids": product.get("collection_ids"),
    }
    return f"shoplazza:product:{product['id']}:{product['updated_at']}:{_digest(content)}"


def product_removed_event_id(product_id: str) -> str:
    """A product's deletion, by products/delete or found by the stock sweep: it happens once."""
    return f"shoplazza:product-deleted:{product_id}"


def fulfillment_event_id(order_id: str, fulfillment: dict[str, Any]) -> str | None:
    """One fulfillment change, by orders/update or by the fulfillment list."""
    if not fulfillment.get("id") or not fulfillment.get("updated_at"):
        return None
    tracking = _digest(
        [fulfillment.get("tracking_number"), fulfillment.get("tracking_company_code")]
    )
    return (
        f"shoplazza:fulfillment:{order_id}:{fulfillment['id']}:"
        f"{fulfillment['updated_at']}:{tracking}"
    )


def fulfillment_event(fulfillments: list[dict[str, Any]], index: int) -> tuple[str, dict[str, Any]]:
    """The event type and payload of an order's ``index``-th fulfillment: the
    first one ships the order, a later one or an edit corrects the tracking."""
    fulfillment = fulfillments[index]
    kind = (
        "order.shoplazza_tracking_updated"
        if index > 0 or fulfillment.get("updated")
        else "order.shoplazza_fulfilled"
    )
    return kind, {
        "tracking_number": fulfillment["tracking_number"],
        "tracking_company_code": fulfillment.get("tracking_company_code", ""),
        "tracking_company": fulfillment.get("tracking_company", ""),
        "line_item_ids": [str(i.get("id")) for i in fulfillment.get("line_items", [])],
    }


def _product_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The product of a products/* body (wrapped in "product" or not), id as text."""
    product = doc.get("product", doc)
    if not isinstance(product, dict) or product.get("id") in (None, ""):
        raise ShoplazzaWebhookRejected("a products webhook without a product id")
    if isinstance(product["id"], bool | float | dict | list):
        raise ShoplazzaWebhookRejected(
            f"not a Shoplazza product id: a JSON {type(product['id']).__name__}"
        )
    return {**product, "id": str(product["id"])}


def translate(topic: str, shop_domain: str, body: bytes) -> list[dict[str, Any]]:
    try:
        doc = from_json(body)
    except ValueError as err:
        raise ShoplazzaWebhookRejected(f"body is not JSON: {err}") from None
    if not isinstance(doc, dict):
        raise ShoplazzaWebhookRejected("body is not a JSON object")
    store = store_of(shop_domain)
    event_id = "shoplazza:" + hashlib.sha256(topic.encode() + b"\n" + body).hexdigest()

    def event(
        type_: str, entity: str, payload: dict[str, Any], change_id: str | None = None
    ) -> dict[str, Any]:
        return {
            "event_id": change_id or event_id,
            "type": type_,
            "source": "shoplazza",
            "entity": entity,
            "payload": payload,
        }

    if topic == "app/uninstalled":
        return [event("connection.app_uninstalled", f"shop:{store}", {})]
    if topic == "products/update":
        product = _product_of(doc)
        # Shoplazza's own fields only: the listing merges them into what it
        # has, and TikTok's attributes are the merchant's, never a webhook's.
        return [
            event(
                "listing.product_updated",
                f"listing:{store}:{product['id']}",
                {"product": shoplazza_fields(product)},
                product_event_id(product),
            )
        ]
    if topic == "products/delete":
        product = _product_of(doc)
        return [
            event(
                "listing.product_removed",
                f"listing:{store}:{product['id']}",
                {"reason": "deleted"},
                product_removed_event_id(str(product["id"])),
            )
        ]
    if topic in ("orders/update", "orders/cancelled"):
        order = doc.get("order", doc)
        tiktok_id = tiktok_order_id(order)
        if tiktok_id is None:
            return []  # not a TikTok Shop order: nothing for this channel
        entity = f"order:{tiktok_id}"
        fulfillments = order.get("fulfillments") or []
        if topic == "orders/update" and fulfillments:
            kind, payload = fulfillment_event(fulfillments, len(fulfillments) - 1)
            change_id = fulfillment_event_id(str(order.get("id", "")), fulfillments[-1])
            return [event(kind, entity, payload, change_id)]
        change = {
            "financial_status": order.get("financial_status"),
            "status": "cancelled" if topic == "orders/cancelled" else order.get("status"),
            "fulfillment_status": order.get("fulfillment_status"),
        }
        return [event("order.shoplazza_changed", entity, change)]
    return []
