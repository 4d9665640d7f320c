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
    ACCESS_TOKEN_EXPIRED,
    ALREADY_SHIPPED,
    BAD_CREDENTIALS,
    BAD_SIGN,
    DUPLICATE_TRACKING,
    ORDER_IS_FBT,
    ORDER_ON_HOLD,
    PRODUCT_NOT_FOUND,
    TRACKING_MISMATCH,
    TikTokClient,
    TikTokError,
)
from adapters.tiktok_shop.images import HttpImageSource, ImageSource, ImageUnavailable
from adapters.tiktok_shop.product_errors import (
    CATEGORY_NOT_RECOMMENDED,
    NO_WAREHOUSE,
    ProductRefused,
    image_unavailable,
    refusal_for,
)
from engine.logs import get_logger, text_digest
from engine.outbox import CommandFailed, OutboxCommand, RetryLater

log = get_logger("channelsync.tiktok")
# US shops list in TikTok's 7-level category tree, which the API calls v2.
CATEGORY_VERSION = "v2"
# Refusals of the call, not of the product: signature, token, app credentials.
CALL_REFUSALS = frozenset({ACCESS_TOKEN_EXPIRED, BAD_SIGN, BAD_CREDENTIALS})

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
    def __init__(self, client: TikTokClient, images: ImageSource | None = None) -> None:
        self.client = client
        self.images = images or HttpImageSource(client.http)
        self._warehouses: dict[str, str] = {}  # shop -> its default sales warehouse id
        self._uploaded: dict[tuple[str, str], str] = {}  # (shop, image src) -> TikTok uri

    def handlers(self) -> dict[str, Handler]:
        return {
            "create_listing": self.create_listing,
            "edit_listing": self.edit_listing,
            "fetch_product_status": self.fetch_product_status,
            "update_price": self.update_price,
            "update_inventory": self.update_inventory,
            "deactivate_listing": self.deactivate_listing,
            "activate_listing": self.activate_listing,
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

    async def _product_call(self, shop: str, method: str, path: str, **kwargs: Any) -> dict:
        """A product call whose failures are typed: waiting helps (`RetryLater`),
        the call itself was refused whatever the product (`CommandFailed`, for an
        operator), or TikTok refuses this product and will again (`ProductRefused`)."""
        try:
            return await self.client.call(shop, method, path, **kwargs)
        except TikTokError as error:
            code = _int(error.code)
            if error.retryable or code is None:  # no code: transport, no credentials yet
                raise RetryLater(str(error)) from error
            if code in CALL_REFUSALS:
                raise CommandFailed(f"TikTok refused the call ({code}): {error.message}") from error
            raise ProductRefused(refusal_for(error), error.message) from error

    async def _warehouse(self, shop: str) -> str:
        """The shop's default sales warehouse, asked once per shop."""
        if shop not in self._warehouses:
            data = await self._product_call(shop, "GET", "/logistics/202309/warehouses")
            sales = [
                w
                for w in data.get("warehouses") or []
                if w.get("type") == "SALES_WAREHOUSE"
                and w.get("effect_status", "ENABLED") == "ENABLED"
            ]
            chosen = next((w for w in sales if w.get("is_default")), sales[0] if sales else None)
            if chosen is None:
                raise ProductRefused(NO_WAREHOUSE)
            self._warehouses[shop] = str(chosen["id"])
        return self._warehouses[shop]

    async def _image_uri(self, shop: str, src: str) -> str:
        """TikTok's uri for a Shoplazza image: uploaded once, then remembered."""
        key = (shop, src)
        if key not in self._uploaded:
            try:
                image = await self.images.fetch(src)
            except ImageUnavailable as error:
                raise ProductRefused(image_unavailable(src), str(error)) from error
            data = await self._product_call(
                shop,
                "POST",
                "/product/202309/images/upload",
                files={"data": (image.name, image.content, image.content_type)},
                form={"use_case": "MAIN_IMAGE"},
            )
            self._uploaded[key] = str(data["uri"])
        return self._uploaded[key]

    async def _recommended_category(self, shop: str, request: dict[str, Any]) -> str:
        """No category from the merchant: TikTok's recommendation for the title."""
        data = await self._product_call(
            shop,
            "POST",
            "/product/202309/categories/recommend",
            body={
                "product_title": request["title"],
                "description": request.get("description") or "",
                "category_version": CATEGORY_VERSION,
            },
        )
        leaf = data.get("leaf_category_id")
        if not leaf:
            raise ProductRefused(
                refusal_for(TikTokError(CATEGORY_NOT_RECOMMENDED, "no category recommended"))
            )
        return str(leaf)

    async def _product_body(
        self,
        shop: str,
        request: dict[str, Any],
        category_id: str,
        sku_ids: dict[str, str],
    ) -> dict[str, Any]:
        """TikTok's Create/Edit Product body from the listing's request."""
        warehouse = await self._warehouse(shop)
        body: dict[str, Any] = {
            "title": request["title"],
            "description": request.get("description") or "",
            "category_id": category_id,
            "category_version": CATEGORY_VERSION,
            "main_images": [
                {"uri": await self._image_uri(shop, src)} for src in request["image_srcs"]
            ],
            "skus": [
                {
                    **({"id": sku_ids[s["seller_sku"]]} if s["seller_sku"] in sku_ids else {}),
                    "seller_sku": s["seller_sku"],
                    "sales_attributes": s["sales_attributes"],
                    "price": s["price"],
                    "inventory": [{"warehouse_id": warehouse, "quantity": s["quantity"]}],
                }
                for s in request["skus"]
            ],
        }
        for optional in ("package_weight", "package_dimensions", "size_chart", "certifications"):
            if request.get(optional):
                body[optional] = request[optional]
        return body

    def _submit_failed(self, command: OutboxCommand, refused: ProductRefused) -> list[dict]:
        refusal = refused.refusal
        log.info(
            "product refused",
            entity=command.payload["listing"],
            command=command.type,
            code=refusal.code,
            # TikTok's message may quote what was sent (a title, an attribute).
            detail_len=len(refused.detail or ""),
            detail_digest=text_digest(refused.detail or ""),
        )
        return [
            result(
                command,
                command.payload["listing"],
                "listing.submit_failed",
                {
                    "code": refusal.code,
                    "message": refusal.reason,
                    "audit_failed_reasons": [refusal.as_audit_reason()],
                },
            )
        ]

    async def _created_before(self, shop: str, request: dict[str, Any]) -> dict[str, Any] | None:
        """A product TikTok already holds with exactly this request's seller SKUs:
        the create an earlier attempt made before its answer was lost (PLAT-7).
        TikTok's honouring of ``idempotency_key`` is not confirmed, so a retried
        create looks first."""
        wanted = sorted(s["seller_sku"] for s in request["skus"])
        data = await self._product_call(
            shop,
            "POST",
            "/product/202309/products/search",
            query={"page_size": 20},
            body={"seller_skus": wanted},
        )
        for found in data.get("products") or []:
            skus = sorted(str(s.get("seller_sku", "")) for s in found.get("skus") or [])
            if skus == wanted and found.get("status") != "DELETED":
                return await self._product_call(
                    shop, "GET", f"/product/202309/products/{found['id']}"
                )
        return None

    async def create_listing(self, command: OutboxCommand) -> list[dict]:
        p = command.payload
        request = p["product"]
        try:
            if command.attempts and (earlier := await self._created_before(p["shop"], request)):
                log.info("create already done", entity=p["listing"], product_id=str(earlier["id"]))
                data = {"product_id": earlier["id"], "skus": earlier.get("skus") or []}
                return [self._submitted(command, data, _leaf_category(earlier))]
            category = request.get("category_id") or await self._recommended_category(
                p["shop"], request
            )
            body = await self._product_body(p["shop"], request, category, {})
            body["idempotency_key"] = command.idempotency_key[-128:]
            data = await self._product_call(
                p["shop"], "POST", "/product/202309/products", body=body
            )
        except ProductRefused as refused:
            return self._submit_failed(command, refused)
        return [self._submitted(command, data, category)]

    async def edit_listing(self, command: OutboxCommand) -> list[dict]:
        """An edit names the SKU ids TikTok already has (so they stay the same)
        and, with no category asked for, keeps the product's current one."""
        p = command.payload
        request, product_id = p["product"], p["tiktok_product_id"]
        path = f"/product/202309/products/{product_id}"
        try:
            current = await self._product_call(p["shop"], "GET", path)
            sku_ids = {
                str(s.get("seller_sku", "")): str(s["id"]) for s in current.get("skus") or []
            }
            category = (
                request.get("category_id")
                or _leaf_category(current)
                or await self._recommended_category(p["shop"], request)
            )
            body = await self._product_body(p["shop"], request, category, sku_ids)
            data = await self._product_call(p["shop"], "PUT", path, body=body)
        except ProductRefused as refused:
            return self._submit_failed(command, refused)
        return [self._submitted(command, {"product_id": product_id, **data}, category)]

    def _submitted(
        self, command: OutboxCommand, data: dict[str, Any], category: str | None
    ) -> dict:
        return result(
            command,
            command.payload["listing"],
            "listing.submitted",
            {
                "product_id": str(data["product_id"]),
                "category_id": category,
                "skus": [
                    {"id": str(s["id"]), "seller_sku": str(s.get("seller_sku") or "")}
                    for s in data.get("skus") or []
                ],
            },
        )

    async def fetch_product_status(self, command: OutboxCommand) -> list[dict]:
        p = command.payload
        try:
            data = await self._product_call(
                p["shop"], "GET", f"/product/202309/products/{p['tiktok_product_id']}"
            )
        except ProductRefused as refused:
            if refused.refusal.code != PRODUCT_NOT_FOUND:
                raise CommandFailed(str(refused)) from refused
            data = {"status": "DELETED"}  # TikTok has no such product any more
        return [
            result(
                command,
                p["listing"],
                "listing.review_result",
                {
                    "status": data["status"],
                    "audit_failed_reasons": [
                        {
                            "position": r.get("position", ""),
                            "reasons": r.get("reasons") or [],
                            "suggestions": r.get("suggestions") or [],
                        }
                        for r in data.get("audit_failed_reasons") or []
                    ],
                    "update_time": data.get("update_time"),
                },
            )
        ]

    async def _resolve_sku_ids(
        self, shop: str, product_id: str, entries: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Entries without TikTok's SKU id (a listing synced before ids were kept)
        get it from Get Product, by seller SKU; one TikTok does not know is refused."""
        if all(e.get("id") for e in entries):
            return entries
        data = await self._product_call(shop, "GET", f"/product/202309/products/{product_id}")
        known = {str(s.get("seller_sku", "")): str(s["id"]) for s in data.get("skus") or []}
        resolved = []
        for entry in entries:
            sku_id = entry.get("id") or known.get(str(entry.get("seller_sku", "")))
            if not sku_id:
                raise CommandFailed(
                    f"TikTok Shop has no variant {entry.get('seller_sku')!r} under product "
                    f"{product_id}: sync the product again"
                )
            resolved.append({**entry, "id": sku_id})
        return resolved

    async def update_price(self, command: OutboxCommand) -> list[dict]:
        p = command.payload
        try:
            prices = await self._resolve_sku_ids(p["shop"], p["tiktok_product_id"], p["prices"])
            await self._product_call(
                p["shop"],
                "POST",
                f"/product/202309/products/{p['tiktok_product_id']}/prices/update",
                body={
                    "skus": [
                        {
                            "id": e["id"],
                            "price": {
                                "amount": e["amount"],
                                "currency": e.get("currency") or "USD",
                            },
                        }
                        for e in prices
                    ]
                },
            )
        except ProductRefused as refused:
            raise CommandFailed(str(refused)) from refused
        return []

    async def update_inventory(self, command: OutboxCommand) -> list[dict]:
        p = command.payload
        try:
            stock = await self._resolve_sku_ids(p["shop"], p["tiktok_product_id"], p["inventory"])
            warehouse = await self._warehouse(p["shop"])
            await self._product_call(
                p["shop"],
                "POST",
                f"/product/202309/products/{p['tiktok_product_id']}/inventory/update",
                body={
                    "skus": [
                        {
                            "id": e["id"],
                            "inventory": [{"warehouse_id": warehouse, "quantity": e["quantity"]}],
                        }
                        for e in stock
                    ]
                },
            )
        except ProductRefused as refused:
            raise CommandFailed(str(refused)) from refused
        return []

    async def deactivate_listing(self, command: OutboxCommand) -> list[dict]:
        p = command.payload
        try:
            await self._product_call(
                p["shop"],
                "POST",
                "/product/202309/products/deactivate",
                body={"product_ids": [p["tiktok_product_id"]]},
            )
        except ProductRefused as refused:
            if refused.refusal.code != PRODUCT_NOT_FOUND:  # gone already: nothing to take down
                raise CommandFailed(str(refused)) from refused
        return []

    async def activate_listing(self, command: OutboxCommand) -> list[dict]:
        p = command.payload
        try:
            await self._product_call(
                p["shop"],
                "POST",
                "/product/202309/products/activate",
                body={"product_ids": [p["tiktok_product_id"]]},
            )
        except ProductRefused as refused:
            raise CommandFailed(str(refused)) from refused
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


def _leaf_category(product: dict[str, Any]) -> str | None:
    """The leaf of Get Product's category chain: the category the product has now."""
    leaves = [c for c in product.get("category_chains") or [] if c.get("is_leaf")]
    return str(leaves[-1]["id"]) if leaves else None


def _int(code: Any) -> int | None:
    try:
        return int(code)
    except (TypeError, ValueError):
        return None


__all__ = ["ALREADY_SHIPPED", "ORDER_ON_HOLD", "TikTokCommands"]
