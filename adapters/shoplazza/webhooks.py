"""Shoplazza webhooks -> the channel's events.

Topics: products/update and products/delete (listing changes), orders/update
(a fulfillment with tracking, or payment/status changes made in Shoplazza),
orders/cancelled, app/uninstalled. Orders are matched to their TikTok order by
the ``tiktok_order:<id>`` tag the channel put on them. Shoplazza sends no
delivery id, so the event id is a hash of topic and body: a redelivery of the
same body is a duplicate (PLAT-3).
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic_core import from_json

from statecharts.shoplazza_product import shoplazza_fields


class ShoplazzaWebhookRejected(Exception):
    pass


def store_of(shop_domain: str) -> str:
    """``demo-store.myshoplaza.com`` -> ``demo-store``."""
    return shop_domain.split(".", 1)[0]


def _tiktok_order_id(order: dict[str, Any]) -> str | None:
    """The TikTok order id from the channel's tag; tags come as a string or a list."""
    tags = order.get("tags") or ""
    listed = tags.split(",") if isinstance(tags, str) else tags if isinstance(tags, list) else []
    for tag in listed:
        if isinstance(tag, str) and tag.strip().startswith("tiktok_order:"):
            return tag.strip().split(":", 1)[1]
    return None


def _product_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The product of a products/* body (wrapped in "product" or not), id as text."""
    product = doc.get("product", doc)
    if not isinstance(product, dict) or product.get("id") in (None, ""):
        raise ShoplazzaWebhookRejected("a products webhook without a product id")
    if isinstance(product["id"], bool | float | dict | list):
        raise ShoplazzaWebhookRejected(f"not a Shoplazza product id: {product['id']!r}")
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

    def event(type_: str, entity: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "event_id": event_id,
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
            )
        ]
    if topic == "products/delete":
        product = _product_of(doc)
        return [
            event(
                "listing.product_removed", f"listing:{store}:{product['id']}", {"reason": "deleted"}
            )
        ]
    if topic in ("orders/update", "orders/cancelled"):
        order = doc.get("order", doc)
        tiktok_id = _tiktok_order_id(order)
        if tiktok_id is None:
            return []  # not a TikTok Shop order: nothing for this channel
        entity = f"order:{tiktok_id}"
        fulfillments = order.get("fulfillments") or []
        if topic == "orders/update" and fulfillments:
            latest = fulfillments[-1]
            kind = (
                "order.shoplazza_tracking_updated"
                if len(fulfillments) > 1 or latest.get("updated")
                else "order.shoplazza_fulfilled"
            )
            return [
                event(
                    kind,
                    entity,
                    {
                        "tracking_number": latest["tracking_number"],
                        "tracking_company_code": latest.get("tracking_company_code", ""),
                        "tracking_company": latest.get("tracking_company", ""),
                        "line_item_ids": [str(i.get("id")) for i in latest.get("line_items", [])],
                    },
                )
            ]
        change = {
            "financial_status": order.get("financial_status"),
            "status": "cancelled" if topic == "orders/cancelled" else order.get("status"),
            "fulfillment_status": order.get("fulfillment_status"),
        }
        return [event("order.shoplazza_changed", entity, change)]
    return []
