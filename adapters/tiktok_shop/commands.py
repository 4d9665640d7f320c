"""Outbox commands carried out against the TikTok Shop API, results as events.

Each handler returns the events the answer stands for, with ids derived from
the command's idempotency key, so a repeated command yields duplicates, not
new facts. Retryable failures raise `RetryLater`; refusals TikTok will repeat
forever become failure events the charts show the merchant.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from adapters.tiktok_shop.client import (
    ALREADY_SHIPPED,
    DUPLICATE_TRACKING,
    ORDER_IS_FBT,
    ORDER_ON_HOLD,
    TRACKING_MISMATCH,
    TikTokClient,
    TikTokError,
)
from engine.outbox import OutboxCommand, RetryLater

Handler = Callable[[OutboxCommand], Awaitable[list[dict[str, Any]]]]


def refused(
    command: OutboxCommand, entity: str, event_type: str, error: TikTokError, **extra: Any
) -> list[dict]:
    """A refusal TikTok will repeat forever, reported as the chart's failure event."""
    return [
        result(
            command,
            entity,
            event_type,
            {**extra, "code": _int(error.code), "message": error.message},
        )
    ]


def result(command: OutboxCommand, entity: str, event_type: str, payload: dict[str, Any]) -> dict:
    return {
        "event_id": f"result:{command.idempotency_key}",
        "type": event_type,
        "source": "tiktok",
        "entity": entity,
        "payload": payload,
    }


ORDER_NOT_FOUND = 21001001
CANNOT_SHIP = 21008001
UPDATE_WINDOW_CLOSED = 21011046
# TikTok documents no code for these two refusals; the sandbox's stand-ins.
BAD_LINE_ITEMS = 21001006
PROVIDER_NOT_OFFERED = 21004016

# What a merchant reads when TikTok refuses a fulfillment push or a tracking
# correction, by TikTok's error code.
SHIPPING_REFUSALS: dict[int, str] = {
    ORDER_ON_HOLD: "TikTok holds the order (On Hold); shipping info goes out when it is released",
    ALREADY_SHIPPED: "the order is already shipped on TikTok",
    DUPLICATE_TRACKING: "TikTok refused the tracking number: another package already uses it",
    TRACKING_MISMATCH: "TikTok refused the tracking number: it does not match the carrier",
    ORDER_IS_FBT: "the order is Fulfilled by TikTok; shipping info is not pushed",
    BAD_LINE_ITEMS: "TikTok refused the package: its items are not items of this order",
    PROVIDER_NOT_OFFERED: "TikTok refused the carrier: the order's delivery option does not "
    "offer it; map the Shoplazza carrier to one the option lists",
    UPDATE_WINDOW_CLOSED: "past TikTok's 72-hour window for shipping info updates",
    ORDER_NOT_FOUND: "TikTok does not know this order",
    CANNOT_SHIP: "TikTok does not accept shipping info for the order in its current status",
}


def shipping_refusal(error: TikTokError) -> str:
    """A merchant-readable sentence for a refused push, with TikTok's code."""
    sentence = SHIPPING_REFUSALS.get(_int(error.code) or 0, f"TikTok refused: {error.message}")
    return f"{sentence} (TikTok error {error.code})"


class TikTokCommands:
    def __init__(self, client: TikTokClient) -> None:
        self.client = client

    def handlers(self) -> dict[str, Handler]:
        return {
            "create_listing": self.create_listing,
            "edit_listing": self.edit_listing,
            "fetch_product_status": self.fetch_product_status,
            "update_price": self.update_price,
            "update_inventory": self.update_inventory,
            "deactivate_listing": self.deactivate_listing,
            "fetch_order_detail": self.fetch_order_detail,
            "push_shipping": self.push_shipping,
            "update_shipping_info": self.update_shipping_info,
            "refresh_access_token": self.refresh_access_token,
            "fetch_shipping_providers": self.fetch_shipping_providers,
        }

    async def _call(self, shop: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return await self.client.call(shop, method, path, **kwargs)
        except TikTokError as error:
            if error.retryable:
                raise RetryLater(str(error)) from error
            raise

    async def _shop_of_order(self, command: OutboxCommand) -> str:
        credentials = await self.client.credentials.by_tiktok_shop(command.payload["shop_id"])
        if credentials is None:
            raise RetryLater(f"no credentials yet for TikTok shop {command.payload['shop_id']}")
        return credentials.shop

    # ------------------------------------------------------------- products

    async def create_listing(self, command: OutboxCommand) -> list[dict]:
        p = command.payload
        body = {**_product_body(p["product"]), "idempotency_key": command.idempotency_key[-128:]}
        try:
            data = await self._call(p["shop"], "POST", "/product/202309/products", body=body)
        except TikTokError as error:
            return refused(command, p["listing"], "listing.submit_failed", error)
        return [
            result(
                command,
                p["listing"],
                "listing.submitted",
                {"product_id": data["product_id"], "category_id": data.get("category_id")},
            )
        ]

    async def edit_listing(self, command: OutboxCommand) -> list[dict]:
        p = command.payload
        body = _product_body(p["product"])
        if p.get("keep_category"):
            body["category_id"] = p["product"].get("category_id")  # PROD-7: the merchant's
        try:
            await self._call(
                p["shop"], "PUT", f"/product/202309/products/{p['tiktok_product_id']}", body=body
            )
        except TikTokError as error:
            return refused(command, p["listing"], "listing.submit_failed", error)
        return [
            result(
                command, p["listing"], "listing.submitted", {"product_id": p["tiktok_product_id"]}
            )
        ]

    async def fetch_product_status(self, command: OutboxCommand) -> list[dict]:
        p = command.payload
        data = await self._call(
            p["shop"], "GET", f"/product/202309/products/{p['tiktok_product_id']}"
        )
        return [
            result(
                command,
                p["listing"],
                "listing.review_result",
                {
                    "status": data["status"],
                    "audit_failed_reasons": data.get("audit_failed_reasons", []),
                    "update_time": data.get("update_time"),
                },
            )
        ]

    async def update_price(self, command: OutboxCommand) -> list[dict]:
        p = command.payload
        await self._call(
            p["shop"],
            "POST",
            f"/product/202309/products/{p['tiktok_product_id']}/prices/update",
            body={
                "skus": [
                    {"seller_sku_variant": k, "price": {"amount": v, "currency": "USD"}}
                    for k, v in p["prices"].items()
                ]
            },
        )
        return []

    async def update_inventory(self, command: OutboxCommand) -> list[dict]:
        p = command.payload
        await self._call(
            p["shop"],
            "POST",
            f"/product/202309/products/{p['tiktok_product_id']}/inventory/update",
            body={
                "skus": [
                    {"seller_sku_variant": k, "inventory": [{"quantity": v}]}
                    for k, v in p["inventory"].items()
                ]
            },
        )
        return []

    async def deactivate_listing(self, command: OutboxCommand) -> list[dict]:
        p = command.payload
        await self._call(
            p["shop"],
            "POST",
            "/product/202309/products/deactivate",
            body={"product_ids": [p["tiktok_product_id"]]},
        )
        return []

    # ------------------------------------------------------------- orders

    async def fetch_order_detail(self, command: OutboxCommand) -> list[dict]:
        p = command.payload
        shop = await self._shop_of_order(command)
        data = await self._call(shop, "GET", "/order/202309/orders", query={"ids": p["order_id"]})
        orders = data.get("orders") or []
        if len(orders) != 1:
            # A webhook can outrun the order API: ask again later rather than fail.
            raise RetryLater(f"TikTok returned {len(orders)} orders for {p['order_id']}")
        [order] = orders
        if not p["include_recipient"]:
            order.pop("recipient_address", None)  # ORD-5: not fetched into our hands
        return [result(command, p["order"], "order.detail_fetched", order)]

    async def push_shipping(self, command: OutboxCommand) -> list[dict]:
        """Mark Package As Shipped with TikTok's own line item ids and a provider
        of the order's delivery option (the chart chose both)."""
        p = command.payload
        shop = await self._shop_of_order(command)
        try:
            data = await self._call(
                shop,
                "POST",
                f"/fulfillment/202309/orders/{p['order_id']}/packages",
                body={
                    "tracking_number": p["tracking_number"],
                    "shipping_provider_id": p["shipping_provider_id"],
                    "order_line_item_ids": list(p["order_line_item_ids"]),
                },
            )
        except TikTokError as error:
            return _push_refused(command, error, "ship")
        return [
            result(
                command, p["order"], "order.shipping_pushed", {"package_id": data.get("package_id")}
            )
        ]

    async def update_shipping_info(self, command: OutboxCommand) -> list[dict]:
        p = command.payload
        shop = await self._shop_of_order(command)
        try:
            await self._call(
                shop,
                "POST",
                f"/fulfillment/202309/orders/{p['order_id']}/shipping_info/update",
                body={
                    "tracking_number": p["tracking_number"],
                    "shipping_provider_id": p["shipping_provider_id"],
                },
            )
        except TikTokError as error:
            return _push_refused(command, error, "correction")
        return [result(command, p["order"], "order.shipping_pushed", {"purpose": "correction"})]

    # ------------------------------------------------------------- shop

    async def refresh_access_token(self, command: OutboxCommand) -> list[dict]:
        shop = command.payload["shop"]
        try:
            renewed = await self.client.refresh(shop)
        except TikTokError as error:
            if error.retryable:
                raise RetryLater(str(error)) from error
            return [
                result(
                    command, shop, "connection.refresh_token_expired", {"message": error.message}
                )
            ]
        return [
            result(
                command,
                shop,
                "connection.token_refreshed",
                {
                    "access_token_expire_in": renewed.access_token_expire_in,
                    "refresh_token_expire_in": renewed.refresh_token_expire_in,
                },
            )
        ]

    async def fetch_shipping_providers(self, command: OutboxCommand) -> list[dict]:
        """The providers of each delivery option of the shop's warehouses (or of
        the one option asked for): one `logistics.providers_listed` per option,
        so the connection keeps which option lists which provider."""
        shop = command.payload["shop"]
        wanted = command.payload.get("delivery_option_id")
        if wanted:
            options = [{"id": wanted, "name": command.payload.get("delivery_option_name", "")}]
        else:
            options = await self._delivery_options(shop)
        events = []
        for option in options:
            data = await self._call(
                shop,
                "GET",
                f"/logistics/202309/delivery_options/{option['id']}/shipping_providers",
            )
            event = result(
                command,
                shop,
                "logistics.providers_listed",
                {
                    "delivery_option_id": option["id"],
                    "delivery_option_name": option.get("name", ""),
                    "shipping_providers": [
                        {"id": str(sp["id"]), "name": sp["name"]}
                        for sp in data.get("shipping_providers", [])
                    ],
                },
            )
            event["event_id"] += f">{option['id']}"
            events.append(event)
        return events

    async def _delivery_options(self, shop: str) -> list[dict[str, str]]:
        """Every delivery option of every warehouse, once each."""
        data = await self._call(shop, "GET", "/logistics/202309/warehouses")
        options: dict[str, dict[str, str]] = {}
        for warehouse in data.get("warehouses", []):
            listed = await self._call(
                shop, "GET", f"/logistics/202309/warehouses/{warehouse['id']}/delivery_options"
            )
            for option in listed.get("delivery_options", []):
                options.setdefault(
                    str(option["id"]), {"id": str(option["id"]), "name": option.get("name", "")}
                )
        return list(options.values())


def _push_refused(command: OutboxCommand, error: TikTokError, purpose: str) -> list[dict]:
    """A refused push becomes `order.shipping_push_failed` with a reason the merchant reads."""
    return [
        result(
            command,
            command.payload["order"],
            "order.shipping_push_failed",
            {"purpose": purpose, "code": _int(error.code), "message": shipping_refusal(error)},
        )
    ]


def _product_body(product: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": product["title"],
        "description": product.get("description") or "",
        "main_images": [{"uri": src} for src in product.get("main_images", [])],
        "category_id": product.get("category_id"),
        "package_dimensions": product.get("package_dimensions"),
        "skus": product.get("skus", []),
        "size_chart": product.get("size_chart"),
        "certifications": product.get("certifications", []),
    }


def _int(code: Any) -> int | None:
    try:
        return int(code)
    except (TypeError, ValueError):
        return None


__all__ = ["ALREADY_SHIPPED", "ORDER_ON_HOLD", "TikTokCommands"]
