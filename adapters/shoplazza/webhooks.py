"""Shoplazza webhooks -> the channel's events.

Topics: products/update and products/delete (listing changes), orders/update
(a fulfillment with tracking, or payment/status changes made in Shoplazza),
orders/cancelled, app/uninstalled. Orders are matched to their TikTok order by
the ``tiktok_order:<id>`` tag the channel put on them. Shoplazza sends no
delivery id. A product update and a fulfillment are named by the change
itself (the object's id and its ``updated_at``), so a redelivery and the
scheduled pull of the same change are one event (PLAT-3, PLAT-8); order
changes by a hash of topic and body (a redelivery of the same body is a
duplicate). A deletion or an uninstall is a report named per delivery
(`report_event_id`).

Neither the ``X-Shoplazza-Topic`` nor the ``X-Shoplazza-Shop-Domain`` header
is covered by the signature (PLAT-9), so neither decides anything alone: a
body must have the shape of the topic it came under, ids must have
Shoplazza's (or TikTok's) format (SEC-5), and a deletion or an uninstall is
only *reported* here; the charts confirm it with Shoplazza's API before they
act. The receiver's inbound adapter drops events for entities the channel
does not have (a product it does not sync, a store it is not set up for), so
a body resent under another store's domain reaches nothing
(docs/webhook-trust.md).
"""

from __future__ import annotations

import hashlib
import uuid
from functools import partial
from typing import Any

from pydantic_core import from_json, to_json

from adapters.ids import shoplazza_id, store_name, tiktok_id
from statecharts.shoplazza_product import VARIANT_FIELDS, is_zoned_time, shoplazza_fields


class ShoplazzaWebhookRejected(Exception):
    """Its text never quotes the body's values (SEC-2)."""

    quotes_no_input = True


def tiktok_order_id(order: dict[str, Any]) -> str | None:
    """The TikTok order id from the channel's tag; tags come as a string or a list."""
    tags = order.get("tags") or ""
    listed = tags.split(",") if isinstance(tags, str) else tags if isinstance(tags, list) else []
    for tag in listed:
        if isinstance(tag, str) and tag.strip().startswith("tiktok_order:"):
            return tiktok_id(tag.strip().split(":", 1)[1], "tiktok_order tag's order id")
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


def report_event_id(topic: str, entity: str) -> str:
    """A destructive topic's report: one per delivery. Its body may be
    byte-identical to an earlier one that Shoplazza's API refused (a replay,
    a product deleted long after a forged report), so a report is never
    taken for a duplicate of an earlier one; the chart keeps repeats harmless
    (one check at a time, none once the deletion or uninstall is done)."""
    kind = topic.replace("/", "-")
    return f"shoplazza:report:{kind}:{entity}:{uuid.uuid4().hex}"


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


def _object(doc: dict[str, Any], key: str, what: str) -> dict[str, Any]:
    """The object a body is about: wrapped (``{"product": {...}}``) or bare."""
    inner = doc.get(key, doc)
    if not isinstance(inner, dict):
        raise ShoplazzaWebhookRejected(f"a {what} body whose {key} is not an object")
    return inner


def _updated_product(doc: dict[str, Any]) -> dict[str, Any]:
    """products/update: a whole product, as Shoplazza sends it after an edit:
    its id, title, variants and the ``updated_at`` of the change (PLAT-9)."""
    product = _object(doc, "product", "products/update")
    product_id = shoplazza_id(product.get("id"), "product id")
    if not isinstance(product.get("title"), str):
        raise ShoplazzaWebhookRejected("a products/update body without the product's title")
    if not is_zoned_time(product.get("updated_at")):
        raise ShoplazzaWebhookRejected(
            "a products/update body without an updated_at time with a zone"
        )
    variants = product.get("variants")
    if not isinstance(variants, list) or not variants:
        raise ShoplazzaWebhookRejected("a products/update body without the product's variants")
    for variant in variants:
        if not isinstance(variant, dict):
            raise ShoplazzaWebhookRejected("a products/update variant is not an object")
        shoplazza_id(variant.get("id"), "variant id")
    return {**product, "id": product_id}


def _deleted_product(doc: dict[str, Any]) -> str:
    """products/delete: the id of the product that is gone. A body that
    carries a whole product (its variants) is an update's, not a deletion's."""
    product = _object(doc, "product", "products/delete")
    if "variants" in product:
        raise ShoplazzaWebhookRejected(
            "a products/delete body carrying a whole product: that is an update's body"
        )
    return shoplazza_id(product.get("id"), "product id")


def _order(doc: dict[str, Any], topic: str) -> dict[str, Any]:
    """orders/*: an order with its id and status; orders/cancelled only for an
    order whose own status says it is cancelled."""
    order = _object(doc, "order", topic)
    shoplazza_id(order.get("id"), "order id")
    status = order.get("status")
    if not isinstance(status, str):
        raise ShoplazzaWebhookRejected(f"an {topic} body without the order's status")
    if topic == "orders/cancelled" and status != "cancelled":
        raise ShoplazzaWebhookRejected(
            "an orders/cancelled body for an order that is not cancelled"
        )
    fulfillments = order.get("fulfillments") or []
    if not isinstance(fulfillments, list) or not all(
        isinstance(f, dict) and isinstance(f.get("tracking_number"), str) for f in fulfillments
    ):
        raise ShoplazzaWebhookRejected(
            f"an {topic} body whose fulfillments are not fulfillments with tracking"
        )
    return order


def _uninstalled_store(doc: dict[str, Any], store: str) -> None:
    """app/uninstalled: the body names the store it is about (its domain),
    and that is the store the delivery claims to come from. The header is not
    signed; the body is."""
    domain = doc.get("domain")
    if not isinstance(domain, str):
        raise ShoplazzaWebhookRejected("an app/uninstalled body without the store's domain")
    if store_name(domain) != store:
        raise ShoplazzaWebhookRejected(
            "an app/uninstalled body about another store than the shop-domain header names"
        )


def translate(topic: str, shop_domain: str, body: bytes) -> list[dict[str, Any]]:
    """The events a verified delivery stands for, each naming the entity it is
    for. A body must have the shape of its topic (the topic header is not
    signed, PLAT-9) and its ids the platform's format (SEC-5); otherwise
    `ShoplazzaWebhookRejected` or `InvalidId`. Destructive topics are
    reported, not acted on: the charts confirm them with Shoplazza first."""
    try:
        doc = from_json(body)
    except ValueError as err:
        raise ShoplazzaWebhookRejected(f"body is not JSON: {err}") from None
    if not isinstance(doc, dict):
        raise ShoplazzaWebhookRejected("body is not a JSON object")
    store = store_name(shop_domain)
    event = partial(
        _event, "shoplazza:" + hashlib.sha256(topic.encode() + b"\n" + body).hexdigest()
    )

    if topic == "app/uninstalled":
        _uninstalled_store(doc, store)
        shop = f"shop:{store}"
        return [event("connection.uninstall_reported", shop, {}, report_event_id(topic, shop))]
    if topic == "products/update":
        product = _updated_product(doc)
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
        product_id = _deleted_product(doc)
        listing = f"listing:{store}:{product_id}"
        shop = f"shop:{store}"
        return [
            event(
                "connection.deletion_reported",
                shop,
                {"listing": listing, "product_id": product_id},
                report_event_id(topic, listing),
            )
        ]
    if topic in ("orders/update", "orders/cancelled"):
        return _order_events(topic, _order(doc, topic), event)
    return []


def _event(
    event_id: str, type_: str, entity: str, payload: dict[str, Any], change_id: str | None = None
) -> dict[str, Any]:
    """An event of a delivery: its id is the delivery's unless a change id says otherwise."""
    return {
        "event_id": change_id or event_id,
        "type": type_,
        "source": "shoplazza",
        "entity": entity,
        "payload": payload,
    }


def _order_events(
    topic: str, order: dict[str, Any], event: partial[dict[str, Any]]
) -> list[dict[str, Any]]:
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
        "status": order.get("status"),
        "fulfillment_status": order.get("fulfillment_status"),
    }
    return [event("order.shoplazza_changed", entity, change)]
