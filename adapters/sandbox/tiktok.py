"""A TikTok Shop sandbox: OAuth, signed API calls, product review, orders, webhooks.

The products live in `adapters.sandbox.tiktok_products` (the catalog)."""

from __future__ import annotations

import itertools
import json
import random
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
MASKED = ("UNPAID", "ON_HOLD", "CANCELLED")
SHIPPING_PROVIDERS = [
    {"id": "7117858858072016686", "name": "USPS"},
    {"id": "7117859084333745966", "name": "UPS"},
    {"id": "7129736294883002155", "name": "FedEx"},
    {"id": "7208502187360519982", "name": "DHL eCommerce"},
]


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
        self.codes: dict[str, str] = {}
        self.tokens: dict[str, float] = {}
        self.refresh_tokens: dict[str, float] = {}
        self.catalog = ProductCatalog(
            self.clock, self.envelope, self.send_webhook, self.review_seconds, self.reject_words
        )
        self.products = self.catalog.products
        self.orders: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.package_calls: list[str] = []
        self._window: list[float] = []
        self.app = Starlette(
            routes=[
                Route("/oauth/authorize", self.authorize, methods=["GET"]),
                Route("/api/v2/token/get", self.token, methods=["GET"]),
                Route("/authorization/202309/shops", self.api(self.shops), methods=["GET"]),
                *self.catalog.routes(self.api),
                Route("/order/202309/orders", self.api(self.get_orders), methods=["GET"]),
                Route(
                    "/order/202309/orders/search", self.api(self.search_orders), methods=["POST"]
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
        """Stands in for the seller clicking Authorize: returns the auth code."""
        code = f"code-{next(self._ids)}"
        self.codes[code] = request.query_params.get("state", "")
        return JSONResponse({"code": code, "state": self.codes[code]})

    async def token(self, request: Request) -> Response:
        q = request.query_params
        if q.get("app_key") != self.app_key or q.get("app_secret") != self.app_secret:
            return self.envelope(code=36009004, message="bad credentials")
        if q.get("grant_type") == "authorized_code":
            if self.codes.pop(q.get("auth_code", ""), None) is None:
                return self.envelope(code=36009004, message="auth code used or unknown")
        elif q.get("grant_type") == "refresh_token":
            expiry = self.refresh_tokens.pop(q.get("refresh_token", ""), None)
            if expiry is None or expiry <= self.clock.now():
                return self.envelope(code=36009004, message="refresh token expired")
        else:
            return self.envelope(code=36009004, message="unknown grant_type")
        now = int(self.clock.now())
        access, refresh = f"ROW_{next(self._ids)}", f"RFR_{next(self._ids)}"
        self.tokens[access] = now + 7 * 86400
        self.refresh_tokens[refresh] = now + 60 * 86400
        return self.envelope(
            {
                "access_token": access,
                "access_token_expire_in": now + 7 * 86400,
                "refresh_token": refresh,
                "refresh_token_expire_in": now + 60 * 86400,
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
        self.tick()
        since = int(request.query_params.get("update_time_ge", 0))
        until = int(request.query_params.get("update_time_lt", 2**62))
        size = min(100, int(request.query_params.get("page_size", 100)))
        start = int(request.query_params.get("page_token") or 0)
        matching = sorted(
            (o for o in self.orders.values() if since <= o["update_time"] < until),
            key=lambda o: (o["update_time"], o["id"]),
        )
        page = matching[start : start + size]
        token = str(start + size) if start + size < len(matching) else ""
        return self.envelope(
            {
                "orders": [self._order_view(o) for o in page],
                "next_page_token": token,
                "total_count": len(matching),
            }
        )

    async def ship(self, request: Request, body: dict[str, Any]) -> Response:
        self.tick()
        order = self.orders.get(request.path_params["id"])
        self.package_calls.append(request.path_params["id"])
        if order is None:
            return self.envelope(code=21001001, message="order not found")
        if order["fulfillment_type"] == "FULFILLMENT_BY_TIKTOK":
            return self.envelope(code=21008025, message="order is fulfilled by TikTok")
        if order["status"] == "ON_HOLD":
            return self.envelope(code=21011044, message="the order is on hold")
        if order["status"] in ("IN_TRANSIT", "DELIVERED", "COMPLETED"):
            return self.envelope(code=21008099, message="the order has already shipped")
        if order["status"] != "AWAITING_SHIPMENT":
            return self.envelope(
                code=21008001, message=f"cannot ship an order in {order['status']}"
            )
        if body.get("shipping_provider_id") not in {p["id"] for p in SHIPPING_PROVIDERS}:
            return self.envelope(code=21004015, message="tracking does not match the carrier")
        order["_tracking"] = {**body, "shipped_at": self.clock.now()}
        self._set_status(order, "IN_TRANSIT")
        return self.envelope({"package_id": str(next(self._ids))})

    async def update_tracking(self, request: Request, body: dict[str, Any]) -> Response:
        order = self.orders.get(request.path_params["id"])
        if order is None or "_tracking" not in order:
            return self.envelope(code=21001001, message="order not shipped")
        if self.clock.now() - order["_tracking"]["shipped_at"] > 72 * 3600:
            return self.envelope(
                code=21011046, message="shipping info can only be updated within 72 hours"
            )
        order["_tracking"].update(body)
        return self.envelope({})

    async def providers(self, request: Request, body: Any) -> Response:
        return self.envelope({"shipping_providers": SHIPPING_PROVIDERS})

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
        self, line_items: list[dict[str, Any]], *, fbt: bool = False, order_id: str | None = None
    ) -> dict[str, Any]:
        order_id = order_id or str(next(self._ids))
        now = int(self.clock.now())
        order = {
            "id": order_id,
            "status": "UNPAID",
            "create_time": now,
            "update_time": now - 1,
            "fulfillment_type": "FULFILLMENT_BY_TIKTOK" if fbt else "FULFILLMENT_BY_SELLER",
            "shipping_type": "TIKTOK" if fbt else "SELLER",
            "line_items": [
                {
                    "id": f"{order_id}{n}",
                    "product_id": str(i["product_id"]),
                    "sku_id": str(i.get("sku_id", "")),
                    "seller_sku": i.get("seller_sku", ""),
                    "product_name": i.get("product_name", ""),
                    "quantity": i.get("quantity", 1),
                    "sale_price": str(i.get("sale_price", "19.90")),
                }
                for n, i in enumerate(line_items)
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
        order = self.create_order(
            body["line_items"], fbt=body.get("fbt", False), order_id=body.get("order_id")
        )
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
