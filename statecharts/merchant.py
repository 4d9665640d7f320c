"""The merchant's product buttons as a library API.

Each function publishes one merchant event to the engine and returns its
receipt. Input is validated before anything is published: a bad value raises
`InvalidAttributes` naming every problem in words a merchant can act on, and
nothing is recorded (the CLI maps it to exit code 2).
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from engine import Engine
from engine.bus import Receipt
from statecharts.payloads import AttributesSet

log = structlog.get_logger(__name__)

UNSET: Any = object()  # a keyword left out: that attribute keeps its value

_FIELD_NAMES = {
    "category_id": "category",
    "package_dimensions": "package size",
    "size_chart": "size chart",
    "certifications": "certificates",
}


class InvalidAttributes(ValueError):
    """The attributes given cannot be used; ``problems`` says why, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _problem(error: ErrorDetails) -> str:
    location = [str(part) for part in error["loc"]]
    field = _FIELD_NAMES.get(location[0], location[0]) if location else "attributes"
    detail = location[1:]
    kind = error["type"]
    if location[:1] == ["category_id"]:
        return "category: give TikTok's leaf category id, digits only (e.g. 600001)"
    if location[:1] == ["package_dimensions"] and detail:
        side = detail[0]
        if side == "unit":
            return "package size: the unit is CENTIMETER or INCH"
        if kind in ("int_type", "int_parsing", "greater_than", "less_than_equal"):
            return f"package size: the {side} must be a whole number from 1 to 100000"
        if kind == "missing":
            return f"package size: the {side} is missing"
        if kind == "extra_forbidden":
            return f"package size: {side!r} is not one of length, width, height, unit"
    if kind == "extra_forbidden":
        return (
            f"{location[0]!r} is not a TikTok attribute (category_id, package_dimensions, "
            "size_chart, certifications)"
        )
    where = ".".join(detail)
    return f"{field}{' ' + where if where else ''}: {error['msg']}"


def attributes_payload(
    *,
    category_id: Any = UNSET,
    package_dimensions: Any = UNSET,
    size_chart: Any = UNSET,
    certifications: Any = UNSET,
) -> dict[str, Any]:
    """The ``listing.attributes_set`` payload for the keywords given (None
    clears an attribute), validated; raises `InvalidAttributes`."""
    given = {
        key: value
        for key, value in (
            ("category_id", category_id),
            ("package_dimensions", package_dimensions),
            ("size_chart", size_chart),
            ("certifications", certifications),
        )
        if value is not UNSET
    }
    if not given:
        raise InvalidAttributes(["give at least one attribute to set or clear"])
    try:
        return AttributesSet.model_validate(given).changes()
    except ValidationError as error:
        raise InvalidAttributes([_problem(e) for e in error.errors(include_url=False)]) from None


def _listing_key(key: str) -> str:
    if not key.startswith("listing:") or key.count(":") < 2:
        raise InvalidAttributes(
            [f"{key!r} is not a product listing key (listing:<store>:<product id>)"]
        )
    return key


async def _publish(engine: Engine, event_type: str, key: str, payload: dict[str, Any]) -> Receipt:
    event_id = f"merchant:{uuid.uuid4()}"
    receipt = await engine.publish(
        engine.make_event(event_type, key, payload, event_id=event_id, source="merchant")
    )
    log.info("merchant_product_action", entity=key, event_id=event_id, outcome=receipt.outcome)
    return receipt


async def set_product_attributes(
    engine: Engine,
    listing_key: str,
    *,
    category_id: Any = UNSET,
    package_dimensions: Any = UNSET,
    size_chart: Any = UNSET,
    certifications: Any = UNSET,
) -> Receipt:
    """Set (or, with None, clear) the TikTok-only attributes of a product
    (PROD-10): ``category_id`` a leaf category id; ``package_dimensions``
    ``{"length", "width", "height"}`` whole numbers with ``"unit"`` CENTIMETER
    (default) or INCH; ``size_chart`` ``{"image_uri"}``; ``certifications``
    ``[{"id", "images"}]``. A keyword left out keeps its attribute. They may
    be set before the product is added to sync."""
    payload = attributes_payload(
        category_id=category_id,
        package_dimensions=package_dimensions,
        size_chart=size_chart,
        certifications=certifications,
    )
    return await _publish(engine, "listing.attributes_set", _listing_key(listing_key), payload)


async def resubmit_product(engine: Engine, listing_key: str) -> Receipt:
    """Send a Rejected (or TikTok-deactivated or -deleted) product again (PROD-5)."""
    return await _publish(engine, "listing.resubmit", _listing_key(listing_key), {})


async def reactivate_product(engine: Engine, listing_key: str) -> Receipt:
    """Sell again a product deactivated in TikTok Seller Center (PROD-11)."""
    return await _publish(engine, "listing.reactivate", _listing_key(listing_key), {})


async def refresh_product_status(engine: Engine, listing_key: str) -> Receipt:
    """Ask TikTok for the product's status now (webhooks can be lost)."""
    return await _publish(engine, "listing.status_notified", _listing_key(listing_key), {})
