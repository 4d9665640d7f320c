"""The checks a product passes before anything is sent to TikTok (PROD-3, PROD-4).

Pure functions of a Shoplazza product: each missing or invalid field becomes a
failure reason in the same shape as TikTok's ``audit_failed_reasons`` (with
``source: local``), so the Product Sync List shows both kinds alike.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlparse

MAX_IMAGES = 9
MAX_SKUS = 300  # PLATFORMS.md: 100 in older docs, 300 in later ones
MAX_SALES_ATTRIBUTES = 3
MIN_PRICE, MAX_PRICE = Decimal("0.01"), Decimal("7600")
MAX_TITLE = 255


def is_gif(src: str) -> bool:
    """GIFs are told by their file name, whatever the query string or case."""
    return urlparse(src).path.lower().endswith(".gif")


def images_to_send(images: list[dict[str, Any]]) -> list[str]:
    """Skip GIFs; of the rest, the first nine, in the merchant's order (PROD-4)."""
    return [image["src"] for image in images if not is_gif(image["src"])][:MAX_IMAGES]


def _reason(field: str, reason: str, suggestion: str = "") -> dict[str, Any]:
    return {
        "source": "local",
        "position": field,
        "reasons": [reason],
        "suggestions": [suggestion] if suggestion else [],
    }


def check_product(product: dict[str, Any]) -> list[dict[str, Any]]:
    """Every reason the product cannot be sent, in a stable order; empty if it can."""
    failures: list[dict[str, Any]] = []
    title = (product.get("title") or "").strip()
    if not title:
        failures.append(_reason("title", "title is missing"))
    elif len(title) > MAX_TITLE:
        failures.append(_reason("title", f"title is longer than {MAX_TITLE} characters"))

    images = product.get("images") or []
    if not images_to_send(images):
        reason = (
            "no image left after skipping GIFs (TikTok Shop does not accept GIF)"
            if images
            else "no image"
        )
        failures.append(_reason("main_images", reason, "add a JPG, PNG or WEBP image"))

    variants = product.get("variants") or []
    if not variants:
        failures.append(_reason("skus", "the product has no variant"))
    if len(variants) > MAX_SKUS:
        failures.append(_reason("skus", f"more than {MAX_SKUS} SKUs"))
    missing_weight = [v.get("sku") or v["id"] for v in variants if not (v.get("weight") or 0) > 0]
    if missing_weight:
        failures.append(
            _reason(
                "package_weight",
                "weight is missing for " + ", ".join(missing_weight),
                "set each variant's weight in Shoplazza",
            )
        )
    for variant in variants:
        price = _decimal(variant.get("price"))
        if price is None or not MIN_PRICE <= price <= MAX_PRICE:
            failures.append(
                _reason(
                    "price",
                    f"price of {variant.get('sku') or variant['id']} must be "
                    f"between {MIN_PRICE} and {MAX_PRICE} USD",
                )
            )
    if len(variants) > 1:
        missing_attributes = [v.get("sku") or v["id"] for v in variants if not v.get("option1")]
        if missing_attributes:
            failures.append(
                _reason(
                    "sales_attributes",
                    "SKU attributes are missing for " + ", ".join(missing_attributes),
                    "give every variant its option values",
                )
            )

    dimensions = product.get("package_dimensions") or {}
    missing_sides = [
        side for side in ("length", "width", "height") if not (dimensions.get(side) or 0) > 0
    ]
    if missing_sides:
        failures.append(
            _reason(
                "package_dimensions",
                "size is missing: " + ", ".join(missing_sides),
                "set length, width and height",
            )
        )

    rules = product.get("category_rules") or {}
    if rules.get("size_chart_required") and not product.get("size_chart"):
        failures.append(_reason("size_chart", "the category requires a size chart"))
    required = set(rules.get("certifications_required") or [])
    missing_certificates = sorted(required - set(product.get("certifications") or []))
    if missing_certificates:
        failures.append(
            _reason(
                "certifications",
                "the category requires certificates: " + ", ".join(missing_certificates),
            )
        )
    return failures


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def content_fields(product: dict[str, Any]) -> dict[str, Any]:
    """Everything of a product that TikTok reviews again when it changes."""
    from statecharts.tiktok_request import listing_request  # it builds on images_to_send

    request = listing_request(product, {}, None) if product.get("title") else {}
    for sku in request.get("skus", []):
        sku.pop("price", None)
        sku.pop("quantity", None)
    return request
