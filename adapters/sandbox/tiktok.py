"""A TikTok Shop sandbox: OAuth, signed API calls, product review, orders, webhooks.

The products live in `adapters.sandbox.tiktok_products` (the catalog)."""

from __future__ import annotations

import itertools
import json
import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import from_json, to_json
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.sandbox.tiktok_products import ProductCatalog
from adapters.sandbox.webhooks import Faults, WebhookSender
from adapters.tiktok_shop.signing import sign_request, webhook_signature
from engine.clock import Clock

ON_HOLD_SECONDS = 3600
BAD_CREDENTIALS = 36009004
ACCESS_TOKEN_LIFE = 7 * 86400  # absolute expiries are handed out (CONN-5)
REFRESH_TOKEN_LIFE = 60 * 86400
AUTH_CODE_LIFE = 30 * 60  # an OAuth code is traded once, within 30 minutes
MASKED = ("UNPAID", "ON_HOLD", "CANCELLED")
USPS = {"id": "7117858858072016686", "name": "USPS"}
UPS = {"id": "7117859084333745966", "name": "UPS"}
FEDEX = {"id": "7129736294883002155", "name": "FedEx"}
DHL_ECOMMERCE = {"id": "7208502187360519982", "name": "DHL eCommerce"}
SHIPPING_PROVIDERS = [USPS, UPS, FEDEX, DHL_ECOMMERCE]
# One sales warehouse with two delivery options; each option lists its own
# shipping providers, and a package may only name a provider of the option
# the order's products use.
WAREHOUSE = {
    "id": "7068517275539719942",
    "name": "Springfield warehouse",
    "type": "SALES_WAREHOUSE",
    "is_default": True,
}
STANDARD = {"id": "7091146663229769477", "name": "Standard shipping", "type": "STANDARD"}
ECONOMY = {"id": "7091146663229769478", "name": "Economy shipping", "type": "ECONOMY"}
DELIVERY_OPTIONS = {STANDARD["id"]: STANDARD, ECONOMY["id"]: ECONOMY}
PROVIDERS_BY_OPTION = {
    STANDARD["id"]: [USPS, UPS, FEDEX],
    ECONOMY["id"]: [USPS, DHL_ECOMMERCE],
}
TRACKING_UPDATE_WINDOW = 72 * 3600
# Refusals of Mark Package As Shipped / Update Shipping Info. The first five
# are TikTok's documented codes; TikTok documents none for a wrong line item
# or a provider outside the delivery option, so the sandbox names its own.
CODE_ORDER_NOT_FOUND = 21001001
CODE_CANNOT_SHIP = 21008001
CODE_ON_HOLD = 21011044
CODE_ALREADY_SHIPPED = 21008099
CODE_DUPLICATE_TRACKING = 21011025
CODE_TRACKING_MISMATCH = 21004015
CODE_FBT = 21008025
CODE_BAD_LINE_ITEMS = 21001006
CODE_PROVIDER_NOT_OFFERED = 21004016
CODE_DELIVERY_OPTION_NOT_FOUND = 21004017
CODE_UPDATE_WINDOW_CLOSED = 21011046


@dataclass
class SandboxShop:
    id: str = "7495540735365777507"
    name: str = "Demo TikTok Shop"
    region: str = "US"
    cipher: str = "GCP_XF90igAAAABh00qsWgtvOiGFNqyubMt3"


@dataclass
class TikTokSandbox:
    app_key: str
    app_secret: str
    clock: Clock
    webhook_url: str | None = None
    faults: Faults = field(default_factory=Faults)
    review_seconds: float = 90 * 60
    reject_words: tuple[str, ...] = ("replica",)
    seed: int = 7
    shop: SandboxShop = field(default_factory=SandboxShop)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.webhooks = WebhookSender(self.webhook_url, self._sign, self.faults, self.rng)
        self._ids = itertools.count(576486316948490000, 7)
        self._notification = itertools.count(7380066284010030890)
        self.codes: dict[str, float] = {}  # auth code -> when it expires
        self.tokens: dict[str, float] = {}
        self.refresh_tokens: dict[str, float] = {}
        self.token_calls: list[tuple[str, str]] = []  # (route, grant_type)
        self.catalog = ProductCatalog(
            self.clock,
            self.envelope,
            self.send_webhook,
            lambda: self.review_seconds,
            self.reject_words,
            warehouses=[WAREHOUSE],
        )
        self.products = self.catalog.products
        self.orders: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.package_calls: list[str] = []
        self._window: list[float] = []
        self.app = Starlette(
            routes=[
                Route("/oauth/authorize", self.authorize, methods=["GET"]),
                Route("/api/v2/token/get", self.token_get, methods=["GET"]),
                Route("/api/v2/token/refresh", self.token_refresh, methods=["GET"]),
                Route("/authorization/202309/shops", self.api(self.shops), methods=["GET"]),
                *self.catalog.routes(self.api),
                Route("/order/202309/orders", self.api(self.get_orders), methods=["GET"]),
                Route(
                    "/order/202309/orders/search", self.api(self.search_orders), methods=["POST"]
                ),
                Route(
                    "/product/202309/products/search",
                    self.api(self.search_products),
                    methods=["POST"],
                ),
                Route(
                    "/fulfillment/202309/orders/{id}/packages",
                    self.api(self.ship),
                    methods=["POST"],
                ),
                Route(
                    "/fulfillment/202309/orders/{id}/shipping_info/update",
                    self.api(self.update_tracking),
                    methods=["POST"],
                ),
                Route(
                    "/logistics/202309/delivery_options/{id}/shipping_providers",
                    self.api(self.providers),
                    methods=["GET"],
                ),
                Route("/logistics/202309/warehouses", self.api(self.warehouses), methods=["GET"]),
                Route(
                    "/logistics/202309/warehouses/{id}/delivery_options",
                    self.api(self.delivery_options),
                    methods=["GET"],
                ),
                Route("/sandbox/orders", self.admin_create_order, methods=["POST"]),
                Route("/sandbox/orders/{id}/{action}", self.admin_order_action, methods=["POST"]),
                Route("/sandbox/tick", self.admin_tick, methods=["POST"]),
            ]
        )

    # ---------------------------------------------------------------- plumbing

    def _sign(self, body: bytes) -> dict[str, str]:
        return {
            "Authorization": webhook_signature(self.app_key, self.app_secret, body),
            "content-type": "application/json",
        }

    def send_webhook(self, type_: int, data: dict[str, Any], *, notification: bool = True) -> None:
        envelope: dict[str, Any] = {"type": type_}
        if notification:
            envelope["tts_notification_id"] = str(next(self._notification))
        envelope |= {"shop_id": self.shop.id, "timestamp": int(self.clock.now()), "data": data}
        self.webhooks.enqueue(json.dumps(envelope, separators=(",", ":")).encode())

    @staticmethod
    def envelope(
        data: Any = None, code: int = 0, message: str = "Success", status: int = 200
    ) -> Response:
        body = {"code": code, "message": message, "data": data or {}, "request_id": "sandbox"}
        return Response(to_json(body), status_code=status, media_type="application/json")

    def api(self, handler: Any) -> Any:
        """Check what TikTok checks before any signed call: signature, timestamp, token."""

        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            query = dict(request.query_params)
            self.calls.append((request.method, request.url.path))
            if query.get("app_key") != self.app_key:
                return self.envelope(code=36009004, message="invalid app_key")
            # A multipart body (Upload Product Image) is left out of the signature.
            multipart = request.headers.get("content-type", "").startswith("multipart/")
            expected = sign_request(
                self.app_secret, request.url.path, query, raw, multipart=multipart
            )
            if query.get("sign") != expected:
                return self.envelope(code=106001, message="invalid sign")
            stamp = int(query.get("timestamp", 0))
            now = self.clock.now()
            if not now - 300 <= stamp <= now + 30:
                return self.envelope(code=36009004, message="timestamp outside the window")
            token = request.headers.get("x-tts-access-token", "")
            if token not in self.tokens:
                return self.envelope(code=36009004, message="invalid access token")
            if self.tokens[token] <= now:
                return self.envelope(code=105002, message="access token expired")
            if self._rate_limited():
                return self.envelope(code=36009002, message="rate limited", status=429)
            if self.rng.random() < self.faults.api_failure:
                return self.envelope(code=50000, message="injected failure", status=500)
            if multipart:
                return await handler(request, {})
            try:
                body = from_json(raw) if raw else {}
            except ValueError:
                return self.envelope(code=12052001, message="the body is not JSON")
            return await handler(request, body)

        return endpoint

    def _rate_limited(self) -> bool:
        wall = time.monotonic()
        self._window = [t for t in self._window if wall - t < 1.0]
        if len(self._window) >= self.faults.rate_limit_per_second:
            return True
        self._window.append(wall)
        return False

    # ---------------------------------------------------------------- OAuth

    async def authorize(self, request: Request) -> Response:
        """Stands in for the seller clicking Authorize: returns the auth code and
        the state it was asked with (TikTok redirects with both). Like TikTok's,
        the code is opaque, bound to this app, lives 30 minutes and works once."""
        q = request.query_params
        if q.get("app_key") != self.app_key:
            return JSONResponse({"error": "unknown app_key"}, status_code=400)
        state = q.get("state", "")
        if not state:
            return JSONResponse({"error": "state is required"}, status_code=400)
        code = secrets.token_urlsafe(24)
        self.codes[code] = self.clock.now() + AUTH_CODE_LIFE
        return JSONResponse({"code": code, "state": state})

    def _app_credentials_ok(self, request: Request) -> bool:
        q = request.query_params
        return q.get("app_key") == self.app_key and q.get("app_secret") == self.app_secret

    def _token_call_refused(
        self, request: Request, grant_type: str, wrong_grant: str
    ) -> Response | None:
        """Both token endpoints record the call, then refuse bad app credentials
        and a grant_type that is not theirs (``wrong_grant`` says which it takes)."""
        q = request.query_params
        self.token_calls.append((request.url.path, q.get("grant_type", "")))
        if not self._app_credentials_ok(request):
            return self.envelope(code=BAD_CREDENTIALS, message="bad credentials")
        if q.get("grant_type") != grant_type:
            return self.envelope(code=BAD_CREDENTIALS, message=wrong_grant)
        return None

    async def token_get(self, request: Request) -> Response:
        """Trade an auth code (once, within its life) for a token pair. A refresh
        does not belong here: TikTok refreshes on /api/v2/token/refresh."""
        refused = self._token_call_refused(
            request,
            "authorized_code",
            "token/get takes grant_type=authorized_code; refresh on /api/v2/token/refresh",
        )
        if refused is not None:
            return refused
        q = request.query_params
        expiry = self.codes.pop(q.get("auth_code", ""), None)
        if expiry is None or expiry <= self.clock.now():
            return self.envelope(code=BAD_CREDENTIALS, message="auth code expired, used or unknown")
        now = int(self.clock.now())
        return self._token_pair(now + REFRESH_TOKEN_LIFE)

    async def token_refresh(self, request: Request) -> Response:
        """A new access token for a live refresh token. The refresh token is
        rotated (the one sent stops working) and keeps its absolute expiry: a
        refresh does not lengthen the seller's authorization."""
        refused = self._token_call_refused(
            request, "refresh_token", "token/refresh takes grant_type=refresh_token"
        )
        if refused is not None:
            return refused
        expiry = self.refresh_tokens.pop(request.query_params.get("refresh_token", ""), None)
        if expiry is None or expiry <= self.clock.now():
            return self.envelope(code=BAD_CREDENTIALS, message="refresh token expired or unknown")
        return self._token_pair(int(expiry))

    def _token_pair(self, refresh_expiry: int) -> Response:
        now = int(self.clock.now())
        access, refresh = f"ROW_{next(self._ids)}", f"RFR_{next(self._ids)}"
        self.tokens[access] = now + ACCESS_TOKEN_LIFE
        self.refresh_tokens[refresh] = refresh_expiry
        return self.envelope(
            {
                "access_token": access,
                "access_token_expire_in": now + ACCESS_TOKEN_LIFE,
                "refresh_token": refresh,
                "refresh_token_expire_in": refresh_expiry,
                "seller_base_region": self.shop.region,
                "granted_scopes": ["seller"],
            }
        )

    async def shops(self, request: Request, body: Any) -> Response:
        return self.envelope(
            {
                "shops": [
                    {
                        "id": self.shop.id,
                        "name": self.shop.name,
                        "region": self.shop.region,
                        "cipher": self.shop.cipher,
                    }
                ]
            }
        )

    # ---------------------------------------------------------------- orders

    def _order_view(self, order: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in order.items() if not k.startswith("_")}
        if order["status"] in MASKED:
            view.pop("recipient_address", None)  # ORD-5: TikTok masks it
        return view

    def _set_status(self, order: dict[str, Any], status: str) -> None:
        order["status"] = status
        # TikTok's update_time only moves forward, even within one second.
        order["update_time"] = max(int(self.clock.now()), order.get("update_time", 0) + 1)
        self.send_webhook(
            1,
            {
                "order_id": order["id"],
                "order_status": status,
                "is_on_hold_order": order["_on_hold"],
                "update_time": order["update_time"],
            },
        )

    async def get_orders(self, request: Request, body: Any) -> Response:
        self.tick()
        ids = request.query_params.get("ids", "").split(",")
        return self.envelope(
            {"orders": [self._order_view(self.orders[i]) for i in ids if i in self.orders]}
        )

    async def search_orders(self, request: Request, body: dict[str, Any]) -> Response:
        """Search Orders: paging and sorting in the query, the filters in the JSON body."""
        self.tick()
        paging = _search_paging(request, body, ORDER_SEARCH_QUERY, ORDER_SEARCH_BODY)
        if isinstance(paging, Response):
            return paging
        size, start = paging
        status = body.get("order_status")

        def wanted(order: dict[str, Any]) -> bool:
            return (
                _in_range(order["update_time"], body, "update_time", upper="lt")
                and _in_range(order["create_time"], body, "create_time", upper="lt")
                and (status is None or order["status"] == status)
            )

        field = request.query_params.get("sort_field", "create_time")
        if field not in ("create_time", "update_time"):
            return self.envelope(code=INVALID_PARAMETER, message=f"sort_field {field!r}")
        order_by = request.query_params.get("sort_order", "DESC")
        if order_by not in ("ASC", "DESC"):
            return self.envelope(code=INVALID_PARAMETER, message=f"sort_order {order_by!r}")
        matching = sorted(
            (o for o in self.orders.values() if wanted(o)),
            key=lambda o: (o[field], o["id"]),
            reverse=order_by == "DESC",
        )
        page, token = _page(matching, start, size)
        return self.envelope(
            {
                "orders": [
                    {**self._order_view(o), "is_on_hold_order": o["_on_hold"]} for o in page
                ],
                "next_page_token": token,
                "total_count": len(matching),
            }
        )

    async def search_products(self, request: Request, body: dict[str, Any]) -> Response:
        """Search Products: page_size and page_token in the query, filters in the
        body (update times are inclusive at both ends here: ``_ge`` and ``_le``)."""
        self.tick()
        paging = _search_paging(request, body, PRODUCT_SEARCH_QUERY, PRODUCT_SEARCH_BODY)
        if isinstance(paging, Response):
            return paging
        size, start = paging
        status = body.get("status", "ALL")
        seller_skus = set(body.get("seller_skus") or [])

        def wanted(product: dict[str, Any]) -> bool:
            stamp = product.get("update_time", 0)
            own_skus = {sku["seller_sku"] for sku in product["skus"].values()}
            return (
                _in_range(stamp, body, "update_time", upper="le")
                and _in_range(product.get("create_time", stamp), body, "create_time", upper="le")
                and status in ("ALL", product["status"])
                and (not seller_skus or bool(seller_skus & own_skus))
            )

        matching = sorted(
            (p for p in self.products.values() if wanted(p)),
            key=lambda p: (p.get("update_time", 0), p["id"]),
        )
        page, token = _page(matching, start, size)
        return self.envelope(
            {
                "products": [
                    {
                        "id": p["id"],
                        "title": p["title"],
                        "status": p["status"],
                        "skus": [
                            {
                                "id": sku["id"],
                                "seller_sku": sku["seller_sku"],
                                "price": {"currency": "USD", "sale_price": sku["price"]["amount"]},
                                "inventory": sku["inventory"],
                            }
                            for sku in p["skus"].values()
                        ],
                        "create_time": p.get("create_time", p.get("update_time", 0)),
                        "update_time": p.get("update_time", 0),
                    }
                    for p in page
                ],
                "next_page_token": token,
                "total_count": len(matching),
            }
        )

    async def ship(self, request: Request, body: dict[str, Any]) -> Response:
        """Mark Package As Shipped, refusing what TikTok refuses."""
        self.tick()
        order = self.orders.get(request.path_params["id"])
        self.package_calls.append(request.path_params["id"])
        if order is None:
            return self.envelope(code=CODE_ORDER_NOT_FOUND, message="order not found")
        if order["fulfillment_type"] == "FULFILLMENT_BY_TIKTOK":
            return self.envelope(code=CODE_FBT, message="order is fulfilled by TikTok")
        if order["status"] == "ON_HOLD":
            return self.envelope(code=CODE_ON_HOLD, message="the order is on hold")
        if order["status"] in ("IN_TRANSIT", "DELIVERED", "COMPLETED"):
            return self.envelope(code=CODE_ALREADY_SHIPPED, message="the order has already shipped")
        if order["status"] not in ("AWAITING_SHIPMENT", "PARTIALLY_SHIPPING"):
            return self.envelope(
                code=CODE_CANNOT_SHIP, message=f"cannot ship an order in {order['status']}"
            )
        wanted = body.get("order_line_item_ids")
        own = {item["id"]: item for item in order["line_items"]}
        if (
            not isinstance(wanted, list)
            or not wanted
            or any(not isinstance(i, str) or i not in own for i in wanted)
        ):
            return self.envelope(
                code=CODE_BAD_LINE_ITEMS,
                message="order_line_item_ids must be line item ids of this order",
            )
        if any(own[i].get("package_id") for i in wanted):
            return self.envelope(code=CODE_ALREADY_SHIPPED, message="the order has already shipped")
        refusal = self._check_tracking(order, body, own_package=None)
        if refusal is not None:
            return refusal
        package_id = str(next(self._ids))
        provider = self._provider(body["shipping_provider_id"])
        for item_id in wanted:
            own[item_id].update(
                package_id=package_id,
                tracking_number=body["tracking_number"],
                shipping_provider_id=provider["id"],
                shipping_provider_name=provider["name"],
            )
        order.setdefault("packages", []).append({"id": package_id})
        order["_tracking"] = {**body, "shipped_at": self.clock.now(), "package_id": package_id}
        shipped_all = all(item.get("package_id") for item in order["line_items"])
        self._set_status(order, "IN_TRANSIT" if shipped_all else "PARTIALLY_SHIPPING")
        return self.envelope({"package_id": package_id})

    def _provider(self, provider_id: Any) -> dict[str, str]:
        return next((p for p in SHIPPING_PROVIDERS if p["id"] == provider_id), {})

    def _check_tracking(
        self, order: dict[str, Any], body: dict[str, Any], *, own_package: str | None
    ) -> Response | None:
        """The provider must be one the order's delivery option lists; the tracking
        number must be new and look like the provider's."""
        number = body.get("tracking_number")
        if not isinstance(number, str) or not number.strip():
            return self.envelope(code=CODE_TRACKING_MISMATCH, message="tracking_number is required")
        offered = PROVIDERS_BY_OPTION.get(order["delivery_option_id"], [])
        provider_id = body.get("shipping_provider_id")
        if provider_id not in {p["id"] for p in offered}:
            return self.envelope(
                code=CODE_PROVIDER_NOT_OFFERED,
                message=f"shipping_provider_id {provider_id!r} is not offered by the delivery "
                f"option {order['delivery_option_id']} of this order",
            )
        # UPS numbers start with 1Z, and only UPS's do.
        if (self._provider(provider_id)["name"] == "UPS") != number.upper().startswith("1Z"):
            return self.envelope(
                code=CODE_TRACKING_MISMATCH, message="tracking does not match the carrier"
            )
        for other in self.orders.values():
            for item in other["line_items"]:
                if item.get("tracking_number") == number and item.get("package_id") != own_package:
                    return self.envelope(
                        code=CODE_DUPLICATE_TRACKING,
                        message="the tracking number is already used by another package",
                    )
        return None

    async def update_tracking(self, request: Request, body: dict[str, Any]) -> Response:
        """Update Shipping Info: within 72 hours of shipping, same checks as shipping."""
        order = self.orders.get(request.path_params["id"])
        if order is None:
            return self.envelope(code=CODE_ORDER_NOT_FOUND, message="order not found")
        if order["fulfillment_type"] == "FULFILLMENT_BY_TIKTOK":
            return self.envelope(code=CODE_FBT, message="order is fulfilled by TikTok")
        if order["status"] == "ON_HOLD":
            return self.envelope(code=CODE_ON_HOLD, message="the order is on hold")
        if "_tracking" not in order:
            return self.envelope(code=CODE_CANNOT_SHIP, message="order not shipped")
        if self.clock.now() - order["_tracking"]["shipped_at"] > TRACKING_UPDATE_WINDOW:
            return self.envelope(
                code=CODE_UPDATE_WINDOW_CLOSED,
                message="shipping info can only be updated within 72 hours",
            )
        package = order["_tracking"]["package_id"]
        refusal = self._check_tracking(order, body, own_package=package)
        if refusal is not None:
            return refusal
        provider = self._provider(body["shipping_provider_id"])
        for item in order["line_items"]:
            if item.get("package_id") == package:
                item.update(
                    tracking_number=body["tracking_number"],
                    shipping_provider_id=provider["id"],
                    shipping_provider_name=provider["name"],
                )
        order["_tracking"].update(
            tracking_number=body["tracking_number"], shipping_provider_id=provider["id"]
        )
        return self.envelope({})

    async def providers(self, request: Request, body: Any) -> Response:
        offered = PROVIDERS_BY_OPTION.get(request.path_params["id"])
        if offered is None:
            return self.envelope(
                code=CODE_DELIVERY_OPTION_NOT_FOUND, message="delivery option not found"
            )
        return self.envelope({"shipping_providers": offered})

    async def warehouses(self, request: Request, body: Any) -> Response:
        return self.envelope({"warehouses": [WAREHOUSE]})

    async def delivery_options(self, request: Request, body: Any) -> Response:
        if request.path_params["id"] != WAREHOUSE["id"]:
            return self.envelope(code=CODE_DELIVERY_OPTION_NOT_FOUND, message="warehouse not found")
        return self.envelope({"delivery_options": list(DELIVERY_OPTIONS.values())})

    # ---------------------------------------------------------------- time

    def tick(self) -> None:
        """Let sandbox time do its work: reviews finish, holds end."""
        now = self.clock.now()
        self.catalog.tick()
        for order in self.orders.values():
            if order["status"] == "ON_HOLD" and order["_hold_until"] <= now:
                self._set_status(order, "AWAITING_SHIPMENT")

    # ---------------------------------------------------------------- admin (the buyer's side)

    def create_order(
        self,
        line_items: list[dict[str, Any]],
        *,
        fbt: bool = False,
        order_id: str | None = None,
        delivery_option_id: str = STANDARD["id"],
    ) -> dict[str, Any]:
        if delivery_option_id not in DELIVERY_OPTIONS:
            raise ValueError(f"unknown delivery option {delivery_option_id!r}")
        order_id = order_id or str(next(self._ids))
        now = int(self.clock.now())
        option = DELIVERY_OPTIONS[delivery_option_id]
        order = {
            "id": order_id,
            "status": "UNPAID",
            "create_time": now,
            "update_time": now - 1,
            "fulfillment_type": "FULFILLMENT_BY_TIKTOK" if fbt else "FULFILLMENT_BY_SELLER",
            "shipping_type": "TIKTOK" if fbt else "SELLER",
            "delivery_option_id": option["id"],
            "delivery_option_name": option["name"],
            "warehouse_id": WAREHOUSE["id"],
            # TikTok's line items carry their own ids; packages name them.
            "line_items": [
                {
                    "id": str(next(self._ids)),
                    "product_id": str(i["product_id"]),
                    "sku_id": str(i.get("sku_id", "")),
                    "seller_sku": i.get("seller_sku", ""),
                    "product_name": i.get("product_name", ""),
                    "quantity": i.get("quantity", 1),
                    "sale_price": str(i.get("sale_price", "19.90")),
                    "delivery_option_id": option["id"],
                }
                for i in line_items
            ],
            "payment": {"total_amount": "19.90", "currency": "USD"},
            "recipient_address": {
                "name": "Ada Lovelace",
                "phone_number": "(+1)555-0100",
                "full_address": "1 Main St, Springfield, IL 62701",
                "postal_code": "62701",
                "region_code": "US",
            },
            "buyer_email": "v8z@scs.tiktokw.us",
            "_on_hold": True,
            "_hold_until": 0.0,
        }
        self.orders[order_id] = order
        self._set_status(order, "UNPAID")
        return order

    def order_action(self, order_id: str, action: str) -> dict[str, Any]:
        order = self.orders[order_id]
        if action == "pay":
            order["paid_time"] = int(self.clock.now())
            order["_hold_until"] = self.clock.now() + ON_HOLD_SECONDS
            self._set_status(order, "ON_HOLD")
        elif action == "cancel":
            order["cancel_reason"] = "Buyer changed their mind"
            self._set_status(order, "CANCELLED")
        elif action == "deliver":
            self._set_status(order, "DELIVERED")
        elif action == "complete":
            self._set_status(order, "COMPLETED")
        elif action == "refund":
            self.send_webhook(
                12,
                {
                    "order_id": order_id,
                    "return_role": "BUYER",
                    "return_type": "REFUND",
                    "return_status": "RETURN_OR_REFUND_REQUEST_COMPLETE",
                    "return_id": f"r{order_id}",
                    "create_time": int(self.clock.now()),
                    "update_time": int(self.clock.now()),
                },
            )
        else:
            raise ValueError(f"unknown order action {action!r}")
        return self._order_view(order)

    async def admin_create_order(self, request: Request) -> Response:
        body = from_json(await request.body())
        try:
            order = self.create_order(
                body["line_items"],
                fbt=body.get("fbt", False),
                order_id=body.get("order_id"),
                delivery_option_id=body.get("delivery_option_id", STANDARD["id"]),
            )
        except (KeyError, ValueError) as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse(self._order_view(order))

    async def admin_order_action(self, request: Request) -> Response:
        try:
            view = self.order_action(request.path_params["id"], request.path_params["action"])
        except (KeyError, ValueError) as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse(view)

    async def admin_tick(self, request: Request) -> Response:
        self.tick()
        return JSONResponse({"ok": True})


# ---------------------------------------------------------------- search requests

# What TikTok's search endpoints take where. TikTok itself ignores a filter sent
# in the wrong place and answers unfiltered; the sandbox refuses it instead, so
# that a client putting a filter in the query fails a test rather than
# silently pulling every order.
INVALID_PARAMETER = 36009003
PAGING_QUERY = frozenset({"page_size", "page_token"})
SIGNING_QUERY = frozenset({"app_key", "timestamp", "sign", "shop_cipher", "access_token"})
ORDER_SEARCH_QUERY = PAGING_QUERY | {"sort_field", "sort_order"}
ORDER_SEARCH_BODY = frozenset(
    {
        "order_status",
        "create_time_ge",
        "create_time_lt",
        "update_time_ge",
        "update_time_lt",
        "shipping_type",
        "buyer_user_id",
        "is_buyer_request_cancel",
        "warehouse_ids",
    }
)
PRODUCT_SEARCH_QUERY = PAGING_QUERY
PRODUCT_SEARCH_BODY = frozenset(
    {
        "status",
        "seller_skus",
        "create_time_ge",
        "create_time_le",
        "update_time_ge",
        "update_time_le",
        "category_version",
    }
)


def _refusal(message: str) -> Response:
    return TikTokSandbox.envelope(code=INVALID_PARAMETER, message=message, status=400)


def _misplaced(
    request: Request, body: Any, query_names: frozenset[str], body_names: frozenset[str]
) -> Response | None:
    """A refusal naming the first parameter sent where this endpoint does not take it."""
    for name in request.query_params:
        if name in SIGNING_QUERY or name in query_names:
            continue
        where = "the JSON body" if name in body_names else "nowhere: unknown parameter"
        return _refusal(f"{name} is not a query parameter here (it belongs in {where})")
    if not isinstance(body, dict):
        return _refusal("the body must be a JSON object")
    for name in body:
        if name not in body_names:
            where = "the query" if name in query_names else "nowhere: unknown parameter"
            return _refusal(f"{name} is not a body field here (it belongs in {where})")
        if name.endswith(("_ge", "_lt", "_le")) and not isinstance(body[name], int):
            return _refusal(f"{name} must be a unix time in seconds (an integer)")
    return None


def _paging(request: Request) -> tuple[int, int] | Response:
    """``page_size`` (required, 1..100) and the offset a ``page_token`` stands for."""
    raw = request.query_params.get("page_size")
    if raw is None or not raw.isdigit() or not 1 <= int(raw) <= 100:
        return _refusal("page_size is required, between 1 and 100")
    token = request.query_params.get("page_token") or "0"
    if not token.isdigit():
        return _refusal("page_token is not one this search handed out")
    return int(raw), int(token)


def _search_paging(
    request: Request, body: Any, query_names: frozenset[str], body_names: frozenset[str]
) -> tuple[int, int] | Response:
    """A search's page size and offset, once every parameter is where TikTok takes it."""
    refused = _misplaced(request, body, query_names, body_names)
    if refused is not None:
        return refused
    return _paging(request)


def _page(
    matching: list[dict[str, Any]], start: int, size: int
) -> tuple[list[dict[str, Any]], str]:
    """One page of a search and the token for the next ("" on the last page)."""
    end = start + size
    return matching[start:end], str(end) if end < len(matching) else ""


def _in_range(value: int, body: dict[str, Any], name: str, *, upper: str) -> bool:
    low, high = body.get(f"{name}_ge"), body.get(f"{name}_{upper}")
    if low is not None and value < low:
        return False
    if high is None:
        return True
    return value < high if upper == "lt" else value <= high
