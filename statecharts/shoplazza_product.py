"""The Shoplazza product a listing keeps, and how a products/update merges into it.

A listing's ``data.product`` holds Shoplazza's own fields only. A webhook may
carry part of a product: a field it leaves out (or sends as null) keeps its
stored value (PROD-10). A variant list that is sent is the product's variant
set (Shoplazza sends every variant it has), each variant merged over the
stored variant with the same id. An update older than the stored one (by
Shoplazza's ``updated_at``) is stale: webhooks can arrive out of order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

PRODUCT_FIELDS = (
    "id",
    "title",
    "description",
    "published",
    "images",
    "variants",
    "collection_ids",
    "updated_at",
)
VARIANT_FIELDS = (
    "id",
    "sku",
    "price",
    "inventory_quantity",
    "weight",
    "weight_unit",
    "option1",
    "option2",
    "option3",
)
IMAGE_FIELDS = ("src", "width", "height")


def shoplazza_fields(product: dict[str, Any]) -> dict[str, Any]:
    """The product with Shoplazza's fields only (anything else is not Shoplazza's)."""
    kept = {key: product[key] for key in PRODUCT_FIELDS if key in product}
    if "variants" in kept:
        kept["variants"] = [
            {key: variant[key] for key in VARIANT_FIELDS if key in variant}
            for variant in kept["variants"] or []
        ]
    if "images" in kept:
        kept["images"] = [
            {key: image[key] for key in IMAGE_FIELDS if key in image}
            for image in kept["images"] or []
        ]
    return kept


def merge_product(stored: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """``change`` (a webhook's product, nulls meaning "not sent") over ``stored``."""
    merged = dict(stored)
    for key in PRODUCT_FIELDS:
        value = change.get(key)
        if value is None:
            continue
        if key == "variants":
            known = {variant["id"]: variant for variant in stored.get("variants") or []}
            value = [
                {
                    **known.get(variant["id"], {}),
                    **{k: v for k, v in variant.items() if v is not None},
                }
                for variant in value
            ]
        merged[key] = value
    return shoplazza_fields(merged)


def _instant(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def is_zoned_time(text: Any) -> bool:
    """Is ``text`` an ISO 8601 time with a zone (as Shoplazza's ``updated_at`` is)?"""
    return _instant(text) is not None


def is_stale(stored: dict[str, Any], change: dict[str, Any]) -> bool:
    """True when ``change`` is an older version than the stored product.

    Equal times are not stale (the later arrival applies); a time that cannot
    be read, or has no zone to compare by, never makes an update stale."""
    before, after = _instant(stored.get("updated_at")), _instant(change.get("updated_at"))
    return before is not None and after is not None and after < before
