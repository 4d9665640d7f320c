"""TikTok Shop webhooks -> the channel's events (docs/tiktok-products.md lists the product types).

A webhook names TikTok's ids; the channel's entities are keyed by the
merchant's store. An `EntityDirectory` answers "which connection has this
TikTok shop?" and "which listing has this TikTok product?" from the read model.
Event ids come from ``tts_notification_id`` (a repeat delivery is then a
duplicate, PLAT-3) or, where the docs' examples omit it, from a hash of the body.
The changes the scheduled pull also finds (an order's status, a product's
review status) take their id from the change itself instead, so that the
webhook and the pull of one change are one event (PLAT-8).
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import from_json

from adapters.ids import tiktok_id
from engine.validation_errors import describe_validation_error
from statecharts.payloads import TikTokId

ORDER_STATUS_CHANGE = 1
RECIPIENT_ADDRESS_UPDATE = 3
PACKAGE_UPDATE = 4
PRODUCT_STATUS_CHANGE = 5
SELLER_DEAUTHORIZATION = 6
UPCOMING_AUTHORIZATION_EXPIRATION = 7
CANCELLATION_STATUS_CHANGE = 11
RETURN_STATUS_CHANGE = 12
PRODUCT_INFORMATION_CHANGE = 15
PRODUCT_CATEGORY_CHANGE = 18
PRODUCT_AUDIT_STATUS_CHANGE = 37


class WebhookRejected(Exception):
    """A body that is not a TikTok webhook: kept as a dead letter by the receiver.
    Its text never quotes the body's values (SEC-2)."""

    quotes_no_input = True


class TikTokWebhook(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: int
    tts_notification_id: str | None = None
    shop_id: TikTokId
    timestamp: int | None = None
    data: dict[str, Any]


class EntityDirectory(Protocol):
    async def shop_key(self, tiktok_shop_id: str) -> str | None: ...

    async def listing_key(self, tiktok_product_id: str) -> str | None: ...


def _id(value: Any, what: str = "TikTok id") -> str:
    """An id as exact text (PLAT-6), in TikTok's format: digits only (SEC-5).
    `InvalidId` otherwise; the inbound adapter makes it a dead letter."""
    return tiktok_id(value, what)


# Webhook 37's audit status, as the product status Search Products reports for it.
AUDIT_TO_PRODUCT_STATUS = {"APPROVED": "ACTIVATE", "FAILED": "FAILED", "AUDITING": "PENDING"}


def order_status_event_id(order_id: str, status: str, update_time: int) -> str:
    """One order status change, however it arrives (webhook 1 or Search Orders)."""
    status = "CANCELLED" if status == "CANCEL" else status  # webhook and API spellings
    return f"tiktok:order:{order_id}:{status}:{update_time}"


def product_status_event_id(product_id: str, status: str, update_time: int) -> str:
    """One product status change, however it arrives (webhook 37 or Search Products)."""
    return f"tiktok:product:{product_id}:{status}:{update_time}"


def product_status_events(listing: str, status: str, update_time: int) -> list[dict[str, Any]]:
    """What a product status means for its listing: Approved is final news; any
    other status is fetched (the search and the webhook carry no reasons)."""
    if status == "ACTIVATE":
        payload = {"status": status, "update_time": update_time}
        return [{"type": "listing.review_result", "entity": listing, "payload": payload}]
    return [{"type": "listing.status_notified", "entity": listing, "payload": {}}]


def event_id_for(webhook: TikTokWebhook, body: bytes) -> str:
    if webhook.tts_notification_id:
        return f"tiktok:{webhook.tts_notification_id}"
    return "tiktok:sha256:" + hashlib.sha256(body).hexdigest()


async def translate(body: bytes, directory: EntityDirectory) -> list[dict[str, Any]]:
    """The events a verified webhook body stands for (possibly none)."""
    try:
        webhook = TikTokWebhook.model_validate(from_json(body))
    except ValidationError as err:
        raise WebhookRejected(f"not a TikTok webhook: {describe_validation_error(err)}") from None
    except ValueError:
        raise WebhookRejected("not a TikTok webhook: the body is not JSON") from None
    _id(webhook.shop_id, "shop_id")
    hook = _Hook(webhook, event_id_for(webhook, body))
    kind = webhook.type
    if kind in (
        ORDER_STATUS_CHANGE,
        RECIPIENT_ADDRESS_UPDATE,
        CANCELLATION_STATUS_CHANGE,
        RETURN_STATUS_CHANGE,
    ):
        return _order_events(hook)
    if kind in (SELLER_DEAUTHORIZATION, UPCOMING_AUTHORIZATION_EXPIRATION):
        return await _shop_events(hook, directory)
    if kind in (
        PRODUCT_STATUS_CHANGE,
        PRODUCT_INFORMATION_CHANGE,
        PRODUCT_CATEGORY_CHANGE,
        PRODUCT_AUDIT_STATUS_CHANGE,
    ):
        return await _listing_events(hook, directory)
    return []  # PACKAGE_UPDATE and types this channel does not follow: acknowledged, no event


class _Hook:
    """A parsed webhook and what every event it stands for shares."""

    def __init__(self, webhook: TikTokWebhook, base_id: str) -> None:
        self.webhook = webhook
        self.kind = webhook.type
        self.data = webhook.data
        self.base_id = base_id

    def event(
        self,
        type_: str,
        entity: str,
        payload: dict[str, Any],
        suffix: str = "",
        *,
        event_id: str | None = None,
    ) -> dict[str, Any]:
        return {
            "event_id": event_id or self.base_id + suffix,
            "type": type_,
            "source": "tiktok",
            "entity": entity,
            "occurred_at": self.webhook.timestamp,
            "payload": payload,
        }


def _order_events(hook: _Hook) -> list[dict[str, Any]]:
    data, kind = hook.data, hook.kind
    order_id = _id(data.get("order_id"), "order_id")
    if kind == ORDER_STATUS_CHANGE:
        return [
            hook.event(
                "order.status_changed",
                f"order:{order_id}",
                {
                    "order_id": order_id,
                    "shop_id": hook.webhook.shop_id,
                    "order_status": data["order_status"],
                    "update_time": data["update_time"],
                    "is_on_hold_order": bool(data.get("is_on_hold_order", False)),
                },
                event_id=order_status_event_id(order_id, data["order_status"], data["update_time"]),
            )
        ]
    if kind == RECIPIENT_ADDRESS_UPDATE:
        return [hook.event("order.address_updated", f"order:{order_id}", {})]
    return [
        hook.event(
            "order.tiktok_return_changed",
            f"order:{order_id}",
            {
                "return_id": str(data.get("return_id") or data.get("cancel_id") or ""),
                "return_type": data.get("return_type", "CANCELLATION" if kind == 11 else ""),
                "return_status": data.get("return_status", ""),
                "cancel_status": data.get("cancel_status", ""),
                "update_time": data.get("update_time") or data.get("create_time"),
            },
        )
    ]


async def _shop_events(hook: _Hook, directory: EntityDirectory) -> list[dict[str, Any]]:
    shop = await directory.shop_key(hook.webhook.shop_id)
    if shop is None:
        raise WebhookRejected(f"no connection for TikTok shop {hook.webhook.shop_id}")
    message = hook.data.get("message", "")
    if hook.kind == SELLER_DEAUTHORIZATION:
        return [hook.event("connection.deauthorized", shop, {"message": message})]
    return [
        hook.event(
            "connection.authorization_expiring",
            shop,
            {"message": message, "expiration_time": hook.data["expiration_time"]},
        )
    ]


async def _listing_events(hook: _Hook, directory: EntityDirectory) -> list[dict[str, Any]]:
    data = hook.data
    product_id = _id(data.get("product_id"), "product_id")
    listing = await directory.listing_key(product_id)
    if listing is None:
        raise WebhookRejected(f"no listing for TikTok product {product_id}")
    if hook.kind == PRODUCT_CATEGORY_CHANGE:
        # PROD-7: the category now on TikTok is `current_category_id`.
        current = data.get("current_category_id")
        if not current:
            raise WebhookRejected("a category change without current_category_id")
        previous = data.get("previous_category_id")
        return [
            hook.event(
                "listing.category_changed",
                listing,
                {
                    "category_id": _id(current, "current_category_id"),
                    "previous_category_id": (
                        _id(previous, "previous_category_id") if previous else None
                    ),
                    "update_time": data.get("update_time"),
                },
            )
        ]
    if hook.kind == PRODUCT_AUDIT_STATUS_CHANGE:
        status = AUDIT_TO_PRODUCT_STATUS.get((data.get("audit") or {}).get("status", ""))
        if status is not None and data.get("update_time") is not None:
            change_id = product_status_event_id(product_id, status, data["update_time"])
            return [
                hook.event(e["type"], e["entity"], e["payload"], event_id=change_id)
                for e in product_status_events(listing, status, data["update_time"])
            ]
        if (data.get("audit") or {}).get("status") == "APPROVED":
            return [
                hook.event(
                    "listing.review_result",
                    listing,
                    {"status": "ACTIVATE", "update_time": data.get("update_time")},
                )
            ]
    # The others carry no usable status (or, for FAILED, no reasons): fetch the product.
    return [hook.event("listing.status_notified", listing, {})]
