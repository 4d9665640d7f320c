"""The checks a product passes before anything is sent to TikTok (PROD-3, PROD-4).

Pure functions of a Shoplazza product and the merchant's TikTok attributes:
each missing or invalid field becomes a failure reason in the same shape as
TikTok's ``audit_failed_reasons`` (with ``source: local``), so the Product Sync
List shows both kinds alike. The reason itself is a sentence that tells the
merchant what to do and where.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlparse

MAX_IMAGES = 9
MAX_SKUS = 300  # TikTok: 100 in older docs, 300 in later ones
MAX_SALES_ATTRIBUTES = 3
MIN_PRICE, MAX_PRICE = Decimal("0.01"), Decimal("7600")
MAX_TITLE = 255


def is_gif(src: str) -> bool:
    """GIFs are told by their file name, whatever the query string or case."""
    return urlparse(src).path.lower().endswith(".gif")


def images_to_send(images: list[dict[str, Any]]) -> list[str]:
    """Skip GIFs; of the rest, the first nine, in the merchant's order (PROD-4)."""
    return [image["src"] for image in images if not is_gif(image["src"])][:MAX_IMAGES]


METRIC_WEIGHTS = ("kg", "g", "kilogram", "gram")
IMPERIAL_WEIGHTS = ("lb", "oz", "pound", "ounce")
SET_COMMAND = "channelsync products set <product>"


def _reason(field: str, sentence: str) -> dict[str, Any]:
    """One failure reason: ``position`` names TikTok's field for machines, the
    sentence says what the merchant does about it."""
    return {"source": "local", "position": field, "reasons": [sentence], "suggestions": []}


def _names(variants: list[dict[str, Any]]) -> str:
    """ "variant SKU-1" or "variants SKU-1, SKU-2", as a merchant knows them."""
    labels = [str(v.get("sku") or v.get("id")) for v in variants]
    return ("variant " if len(labels) == 1 else "variants ") + ", ".join(labels)


def _have(variants: list[dict[str, Any]]) -> str:
    return "has" if len(variants) == 1 else "have"


def check_product(
    product: dict[str, Any],
    attributes: dict[str, Any] | None = None,
    category_rules: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Every reason the product cannot be sent, in a stable order; empty if it can.

    ``product`` is the Shoplazza product, ``attributes`` what the merchant
    supplied for TikTok alone (PROD-10), ``category_rules`` what the product's
    TikTok category asks for, when known (size chart, certificates)."""
    attributes = attributes or {}
    variants = product.get("variants") or []
    failures: list[dict[str, Any]] = []
    _check_title(product, failures)
    _check_images(product, failures)
    _check_variants(variants, failures)
    _check_dimensions(attributes.get("package_dimensions") or {}, variants, failures)
    _check_category(attributes, category_rules or {}, failures)
    return failures


def _check_title(product: dict[str, Any], failures: list[dict[str, Any]]) -> None:
    title = (product.get("title") or "").strip()
    if not title:
        failures.append(_reason("title", "Add a title to the product in Shoplazza."))
    elif len(title) > MAX_TITLE:
        failures.append(
            _reason(
                "title",
                f"Shorten the title in Shoplazza to {MAX_TITLE} characters or fewer "
                f"(it has {len(title)}).",
            )
        )


def _check_images(product: dict[str, Any], failures: list[dict[str, Any]]) -> None:
    images = product.get("images") or []
    if not images_to_send(images):
        failures.append(
            _reason(
                "main_images",
                "Add a JPG, PNG or WEBP image in Shoplazza: TikTok Shop does not accept GIF, "
                "and GIFs are all the product has."
                if images
                else "Add a JPG, PNG or WEBP image to the product in Shoplazza (it has none).",
            )
        )


def _check_variants(variants: list[dict[str, Any]], failures: list[dict[str, Any]]) -> None:
    if not variants:
        failures.append(_reason("skus", "Add a variant to the product in Shoplazza (it has none)."))
    if len(variants) > MAX_SKUS:
        failures.append(
            _reason(
                "skus",
                f"Keep the product to {MAX_SKUS} variants: TikTok Shop takes no more "
                f"(it has {len(variants)}).",
            )
        )
    weightless = [v for v in variants if not (v.get("weight") or 0) > 0]
    if weightless:
        failures.append(
            _reason(
                "package_weight",
                f"Add the package weight in Shoplazza ({_names(weightless)} "
                f"{_have(weightless)} none).",
            )
        )
    for variant in variants:
        if not price_in_range(variant.get("price")):
            failures.append(
                _reason(
                    "price",
                    f"Set the price of {_names([variant])} in Shoplazza between "
                    f"{MIN_PRICE} and {MAX_PRICE} USD (it is {variant.get('price')}).",
                )
            )
    if len(variants) > 1:
        optionless = [v for v in variants if not v.get("option1")]
        if optionless:
            failures.append(
                _reason(
                    "sales_attributes",
                    f"Give every variant its option values in Shoplazza ({_names(optionless)} "
                    f"{_have(optionless)} none).",
                )
            )


def _check_dimensions(
    dimensions: dict[str, Any], variants: list[dict[str, Any]], failures: list[dict[str, Any]]
) -> None:
    if not all((dimensions.get(side) or 0) > 0 for side in ("length", "width", "height")):
        failures.append(
            _reason(
                "package_dimensions",
                "Add the package size (length, width and height) for TikTok Shop: "
                f"`{SET_COMMAND} --dimensions 20x15x5cm`.",
            )
        )
    else:
        mismatch = _unit_mismatch(dimensions.get("unit") or "CENTIMETER", variants)
        if mismatch:
            failures.append(_reason("package_dimensions", mismatch))


def _check_category(
    attributes: dict[str, Any], rules: dict[str, Any], failures: list[dict[str, Any]]
) -> None:
    if rules.get("size_chart_required") and not attributes.get("size_chart"):
        failures.append(
            _reason(
                "size_chart",
                "The product's TikTok category asks for a size chart: "
                f"`{SET_COMMAND} --size-chart IMAGE_URI`.",
            )
        )
    required = set(rules.get("certifications_required") or [])
    given = {c.get("id") for c in attributes.get("certifications") or [] if isinstance(c, dict)}
    missing = sorted(required - given)
    if missing:
        failures.append(
            _reason(
                "certifications",
                "The product's TikTok category asks for certificates "
                f"({', '.join(missing)}): `{SET_COMMAND} --certification ID`.",
            )
        )


def _unit_mismatch(unit: str, variants: list[dict[str, Any]]) -> str | None:
    """TikTok wants the package size and weight in one system of units."""
    units = {str(v.get("weight_unit") or "kg").lower() for v in variants if v.get("weight")}
    if unit == "CENTIMETER" and units & set(IMPERIAL_WEIGHTS):
        return (
            "Give the package size in inches, like the weight in Shoplazza (pounds or "
            f"ounces): `{SET_COMMAND} --dimensions 8x6x2in`."
        )
    if unit == "INCH" and units & set(METRIC_WEIGHTS):
        return (
            "Give the package size in centimeters, like the weight in Shoplazza (kilograms "
            f"or grams): `{SET_COMMAND} --dimensions 20x15x5cm`."
        )
    return None


def price_in_range(value: Any) -> bool:
    """Whether TikTok Shop (US) takes this price: 0.01 to 7600 USD."""
    price = _decimal(value)
    return price is not None and MIN_PRICE <= price <= MAX_PRICE


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def content_fields(
    product: dict[str, Any], attributes: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Everything of a product that TikTok reviews again when it changes: title,
    description, the images sent, the SKU set with weights and options, and the
    merchant's TikTok attributes. Price, stock and availability are not in it:
    they sync on their own (PROD-6) and never send a product to review."""
    return {
        "title": (product.get("title") or "").strip(),
        "description": product.get("description") or "",
        "main_images": images_to_send(product.get("images") or []),
        "skus": sorted(
            (
                {
                    "id": str(v.get("id")),
                    "sku": v.get("sku") or "",
                    "weight": v.get("weight"),
                    "weight_unit": v.get("weight_unit") or "kg",
                    "options": [v.get(o) for o in ("option1", "option2", "option3")],
                }
                for v in product.get("variants") or []
            ),
            key=lambda sku: sku["id"],
        ),
        "attributes": {key: value for key, value in sorted((attributes or {}).items())},
    }
