"""What a listing asks TikTok Shop for: the create/edit request and the quick fields.

Pure functions of the Shoplazza product (Shoplazza's own fields only) and the
merchant's TikTok-only attributes (category, package dimensions, size chart,
certifications). The request is TikTok's Create Product body in everything
but what only the adapter can know: the images are still the Shoplazza
``src`` addresses (the adapter uploads each one and puts TikTok's ``uri`` in
their place), the SKUs carry a ``quantity`` (the adapter puts it under the
shop's warehouse), and a missing ``category_id`` is asked of TikTok's
category recommendation. See docs/tiktok-products.md.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

from statecharts.product_checks import images_to_send

CURRENCY = "USD"  # a US shop lists in dollars
MAX_STOCK = 99_999  # TikTok's upper bound per warehouse
OPTION_FIELDS = ("option1", "option2", "option3")

# Shoplazza weight unit -> (TikTok unit of the same system, factor to it).
_WEIGHT_UNITS: dict[str, tuple[str, Decimal]] = {
    "kg": ("KILOGRAM", Decimal(1)),
    "g": ("KILOGRAM", Decimal("0.001")),
    "lb": ("POUND", Decimal(1)),
    "oz": ("POUND", Decimal(1) / Decimal(16)),
}
_POUNDS_PER_KILOGRAM = Decimal("2.20462262185")
# TikTok wants the weight and the dimensions in one system of measurement.
WEIGHT_FOR_DIMENSION = {"CENTIMETER": "KILOGRAM", "INCH": "POUND"}
# KILOGRAM takes up to 3 decimals, POUND up to 2.
_WEIGHT_STEP = {"KILOGRAM": Decimal("0.001"), "POUND": Decimal("0.01")}


def seller_sku(variant: dict[str, Any]) -> str:
    """The SKU code TikTok keeps for a variant: its Shoplazza SKU, else its id."""
    return str(variant.get("sku") or variant["id"])


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def package_weight(
    variants: list[dict[str, Any]], dimension_unit: str | None
) -> dict[str, str] | None:
    """One weight for the whole package: the heaviest variant's, in the unit
    system of the dimensions (or of the Shoplazza weight when there are none),
    rounded up so a package is never declared lighter than it is."""
    weighed: list[tuple[Decimal, Decimal, str]] = []  # (kilograms, value, TikTok unit)
    for variant in variants:
        weight = _decimal(variant.get("weight"))
        unit = _WEIGHT_UNITS.get(str(variant.get("weight_unit") or "kg").lower())
        if weight is None or weight <= 0 or unit is None:
            continue
        tiktok_unit, factor = unit
        value = weight * factor
        kilograms = value if tiktok_unit == "KILOGRAM" else value / _POUNDS_PER_KILOGRAM
        weighed.append((kilograms, value, tiktok_unit))
    if not weighed:
        return None
    kilograms, value, own_unit = max(weighed, key=lambda entry: entry[0])
    send_unit = WEIGHT_FOR_DIMENSION.get(dimension_unit or "", own_unit)
    if send_unit != own_unit:  # converted only across systems, so kg stays exact in kg
        value = kilograms if send_unit == "KILOGRAM" else kilograms * _POUNDS_PER_KILOGRAM
    value = value.quantize(_WEIGHT_STEP[send_unit], rounding=ROUND_CEILING)
    return {"value": _plain(value), "unit": send_unit}


def _plain(number: Decimal) -> str:
    """A decimal as TikTok writes it: no exponent, no trailing zeros."""
    return format(number.normalize(), "f")


def package_dimensions(attributes: dict[str, Any]) -> dict[str, str] | None:
    dimensions = attributes.get("package_dimensions")
    if not dimensions:
        return None
    return {
        "length": str(dimensions["length"]),
        "width": str(dimensions["width"]),
        "height": str(dimensions["height"]),
        "unit": str(dimensions.get("unit") or "CENTIMETER"),
    }


def sales_attributes(variant: dict[str, Any]) -> list[dict[str, str]]:
    """A variant's option values. Shoplazza names its options on the product,
    not on the variant, so each position gets a neutral name of its own."""
    return [
        {"name": f"Option {n}", "value_name": str(variant[field])}
        for n, field in enumerate(OPTION_FIELDS, start=1)
        if variant.get(field)
    ]


def _amount(price: Any) -> str:
    """A price as decimal text, as Shoplazza wrote it ("24.00" stays "24.00")."""
    number = _decimal(price)
    return format(number, "f") if number is not None else str(price)


def stock(variant: dict[str, Any]) -> int:
    """Shoplazza's stock, within what TikTok accepts per warehouse."""
    try:
        quantity = int(variant.get("inventory_quantity") or 0)
    except (TypeError, ValueError):
        quantity = 0
    return min(MAX_STOCK, max(0, quantity))


def listing_request(
    product: dict[str, Any], attributes: dict[str, Any], category_id: str | None
) -> dict[str, Any]:
    """The create/edit request the command carries to the adapter."""
    variants = product.get("variants") or []
    dimensions = package_dimensions(attributes)
    request: dict[str, Any] = {
        "title": (product.get("title") or "").strip(),
        "description": product.get("description") or "",
        "category_id": category_id or None,
        "image_srcs": images_to_send(product.get("images") or []),
        "package_weight": package_weight(variants, dimensions["unit"] if dimensions else None),
        "package_dimensions": dimensions,
        "skus": [
            {
                "seller_sku": seller_sku(v),
                "sales_attributes": sales_attributes(v),
                "price": {"amount": _amount(v.get("price")), "currency": CURRENCY},
                "quantity": stock(v),
            }
            for v in variants
        ],
    }
    size_chart = attributes.get("size_chart")
    if size_chart and size_chart.get("image_uri"):
        request["size_chart"] = {"image": {"uri": size_chart["image_uri"]}}
    certifications = attributes.get("certifications")
    if certifications:
        request["certifications"] = [
            {"id": str(c["id"]), "images": [{"uri": uri} for uri in c.get("images") or []]}
            for c in certifications
        ]
    return request


def quick_fields(product: dict[str, Any]) -> dict[str, Any]:
    """The fields that sync on their own, without a new review (PROD-6), keyed by
    seller SKU: TikTok's SKU id for each is in the listing's ``tiktok_skus``."""
    variants = product.get("variants") or []
    return {
        "published": bool(product.get("published", True)),
        "prices": {seller_sku(v): _amount(v.get("price")) for v in variants},
        "inventory": {seller_sku(v): stock(v) for v in variants},
    }
