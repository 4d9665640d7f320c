"""A Shoplazza sandbox: products, collections, orders, carriers, signed webhooks.

Like Shoplazza, it answers 404 for a product that was deleted and 401 for an
access token once the app is uninstalled (the token is revoked, and no more
webhooks are sent to the app); a reinstall issues a new token. The channel
confirms products/delete and app/uninstalled against exactly these answers
(PLAT-9)."""

from __future__ import annotations

import base64
import itertools
import json
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic_core import from_json
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.sandbox.webhooks import Faults, WebhookSender
from adapters.shoplazza.signing import webhook_signature
from engine.clock import Clock

PREFIX = "/openapi/2026-01"
CARRIERS = [
    {"code": "usps", "en_name": "USPS"},
    {"code": "ups", "en_name": "UPS"},
    {"code": "fedex", "en_name": "FedEx"},
    {"code": "dhl", "en_name": "DHL"},
]


# What a Shoplazza product and its variants have, as the OpenAPI returns them.
# Shoplazza has no package size, size chart or certificates: TikTok asks for
# those, and the merchant supplies them to the channel.
PRODUCT_FIELDS = frozenset({"title", "description", "published", "images", "collection_ids"})
VARIANT_FIELDS = frozenset(
    {"sku", "price", "inventory_quantity", "weight", "weight_unit", "option1", "option2", "option3"}
)


# Shoplazza's fulfillment statuses in the order an order moves through them.
FULFILLMENT_ORDER = [
    "initialled",
    "waiting",
    "partially_shipped",
    "shipped",
    "partially_finished",
    "finished",
    "returning",
    "partially_returned",
    "returned",
    "cancelled",
]
FINANCIAL_STATUSES = frozenset(
    {
        "waiting",
        "paying",
        "authorized",
        "partially_paid",
        "paid",
        "cancelled",
        "failed",
        "refunding",
        "refund_failed",
        "refunded",
        "partially_refunded",
    }
)
# Payment statuses from which "payment success" may still be marked.
UNPAID = frozenset({"waiting", "paying", "authorized", "partially_paid", "failed"})


def _unprocessable(message: str) -> Response:
    return JSONResponse({"errors": message}, status_code=422)


def demo_catalog(
    updated_at: str = "2026-05-01T10:00:00+08:00",
) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    """A small store: a summer collection with four products, one of them
    missing its weight and one with twelve images of which two are GIFs."""

    def product(
        pid: str,
        title: str,
        *,
        images: int = 3,
        gifs: tuple[int, ...] = (),
        weight: float | None = 0.4,
        price: str = "24.00",
    ) -> dict[str, Any]:
        return {
            "id": pid,
            "title": title,
            "description": f"<p>{title}</p>",
            "published": True,
            "images": [
                {
                    "src": f"https://img.myshoplaza.com/{pid}/{n}.{'gif' if n in gifs else 'jpg'}",
                    "width": 800,
                    "height": 800,
                }
                for n in range(images)
            ],
            "variants": [
                {
                    "id": f"{pid}-1",
                    "sku": f"SKU-{pid}",
                    "price": price,
                    "inventory_quantity": 25,
                    "weight": weight if weight is not None else 0,
                    "weight_unit": "kg",
                    "option1": None,
                    "option2": None,
                    "option3": None,
                }
            ],
            "collection_ids": ["summer"],
            "updated_at": updated_at,
        }

    products = {
        p["id"]: p
        for p in (
            product("1001", "Linen beach shirt"),
            product("1002", "Straw sun hat", images=12, gifs=(2, 7)),
            product("1003", "Cast iron dumbbell", weight=None),
            product("1004", "Replica designer sunglasses"),
        )
    }
    return products, {"summer": list(products)}


@dataclass
class ShoplazzaSandbox:
    store: str
    client_secret: str
    access_token: str
    clock: Clock
    webhook_url: str | None = None
    faults: Faults = field(default_factory=lambda: Faults(rate_limit_per_second=2.0))
    seed: int = 11

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.webhooks = WebhookSender(self.webhook_url, self._sign, self.faults, self.rng)
        self.products, self.collections = demo_catalog(updated_at=self._now())
        self.orders: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self._ids = itertools.count(30001)
        self._window: list[float] = []
        self.installed = True
        self.revoked_tokens: set[str] = set()
        self._installs = itertools.count(2)
        self.app = Starlette(
            routes=[
                Route(f"{PREFIX}/products", self.api(self.list_products), methods=["GET"]),
                Route(f"{PREFIX}/products/{{id}}", self.api(self.get_product), methods=["GET"]),
                Route(
                    f"{PREFIX}/collections/{{id}}/products",
                    self.api(self.collection_products),
                    methods=["GET"],
                ),
                Route(f"{PREFIX}/tracking/carriers", self.api(self.carriers), methods=["GET"]),
                Route(f"{PREFIX}/shop", self.api(self.shop), methods=["GET"]),
                Route(f"{PREFIX}/orders", self.api(self.list_orders), methods=["GET"]),
                Route(f"{PREFIX}/orders", self.api(self.create_order), methods=["POST"]),
                Route(f"{PREFIX}/orders/{{id}}", self.api(self.update_order), methods=["PUT"]),
                Route(
                    f"{PREFIX}/orders/{{id}}/fulfillments",
                    self.api(self.list_fulfillments),
                    methods=["GET"],
                ),
                Route(
                    f"{PREFIX}/orders/{{id}}/payment/success",
                    self.api(self.mark_paid),
                    methods=["POST"],
                ),
                Route(f"{PREFIX}/orders/{{id}}/cancel", self.api(self.cancel), methods=["POST"]),
                Route("/sandbox/orders/{id}/{action}", self.admin_order_action, methods=["POST"]),
                Route(
                    "/sandbox/products/{id}/{action}", self.admin_product_action, methods=["POST"]
                ),
                Route("/sandbox/app/{action}", self.admin_app_action, methods=["POST"]),
            ]
        )

    @property
    def domain(self) -> str:
        return f"{self.store}.myshoplaza.com"

    def _sign(self, body: bytes) -> dict[str, str]:
        return {
            "X-Shoplazza-Hmac-Sha256": webhook_signature(self.client_secret, body),
            "X-Shoplazza-Shop-Domain": self.domain,
            "X-Shoplazza-Api-Version": "2026-01",
            "content-type": "application/json",
        }

    def send_webhook(self, topic: str, doc: dict[str, Any]) -> None:
        """Send a webhook to the app, as long as it is installed."""
        if not self.installed:
            return
        self.webhooks.enqueue(
            json.dumps(doc, separators=(",", ":")).encode(), {"X-Shoplazza-Topic": topic}
        )

    def uninstall(self) -> None:
        """The merchant uninstalls the app: its access token stops working at
        once, app/uninstalled is its last webhook, and no more follow."""
        if not self.installed:
            return
        stamp = self._now()
        self.send_webhook(
            "app/uninstalled", {"id": self.store, "domain": self.domain, "uninstalled_at": stamp}
        )
        self.installed = False
        self.revoked_tokens.add(self.access_token)

    def install(self) -> str:
        """The merchant installs the app again: a new access token, returned
        (the channel is configured with it, as an operator would)."""
        if not self.installed:
            self.access_token = f"{self.access_token.split('~')[0]}~{next(self._installs)}"
            self.installed = True
        return self.access_token

    def api(self, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            self.calls.append((request.method, request.url.path))
            token = request.headers.get("Access-Token")
            if token in self.revoked_tokens:
                return JSONResponse(
                    {"errors": "access token revoked: the app was uninstalled"}, status_code=401
                )
            if token != self.access_token or not self.installed:
                return JSONResponse({"errors": "invalid access token"}, status_code=401)
            wall = time.monotonic()
            self._window = [t for t in self._window if wall - t < 1.0]
            if len(self._window) >= self.faults.rate_limit_per_second:
                return JSONResponse({"errors": "too many requests"}, status_code=429)
            self._window.append(wall)
            if self.rng.random() < self.faults.api_failure:
                return JSONResponse({"errors": "injected failure"}, status_code=500)
            raw = await request.body()
            return await handler(request, from_json(raw) if raw else {})

        return endpoint

    def _now(self) -> str:
        return datetime.fromtimestamp(self.clock.now(), UTC).isoformat()

    def _stamp(self, previous: str | None) -> str:
        """A change's ``updated_at``: now, but always after the previous change.
        Shoplazza stamps each change with its own second; a test's clock may
        stand still across several edits, and two versions of one product under
        one time would look like one change to whoever deduplicates by it."""
        now = self.clock.now()
        if previous:
            moment = _moment(previous)
            before = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
            now = max(now, before + 1)
        return datetime.fromtimestamp(now, UTC).isoformat()

    async def get_product(self, request: Request, body: Any) -> Response:
        product = self.products.get(request.path_params["id"])
        if product is None:
            return JSONResponse({"errors": "not found"}, status_code=404)
        return JSONResponse({"product": product})

    async def collection_products(self, request: Request, body: Any) -> Response:
        ids = self.collections.get(request.path_params["id"])
        if ids is None:
            return JSONResponse({"errors": "not found"}, status_code=404)
        return JSONResponse({"products": [self.products[i] for i in ids if i in self.products]})

    async def carriers(self, request: Request, body: Any) -> Response:
        return JSONResponse({"tracking_carriers": CARRIERS})

    async def shop(self, request: Request, body: Any) -> Response:
        """The store the token belongs to (Shoplazza's Shop API)."""
        return JSONResponse({"shop": {"id": self.store, "domain": self.domain}})

    async def list_orders(self, request: Request, body: Any) -> Response:
        """Order List: page by ``page`` (from 1) and ``limit`` (up to 250), oldest
        change first; ``updated_at_min``/``_max`` are inclusive ISO 8601 times."""
        query = request.query_params
        window = _time_window(query, {"tag", "ids", "limit", "page"})
        if isinstance(window, Response):
            return window
        limit, page = _int(query, "limit", 50, 1, 250), _int(query, "page", 1, 1, 10**6)
        if limit is None or page is None:
            return _bad("limit is 1..250 and page a positive integer")
        tag, ids = query.get("tag"), _ids(query)
        found = sorted(
            (
                o
                for o in self.orders.values()
                if (not tag or tag in o["tags"].split(","))
                and (ids is None or o["id"] in ids)
                and _within(o.get("updated_at", o["created_at"]), window)
            ),
            key=lambda o: (_moment(o.get("updated_at", o["created_at"])), o["id"]),
        )
        return JSONResponse({"orders": found[(page - 1) * limit : page * limit]})

    async def list_fulfillments(self, request: Request, body: Any) -> Response:
        """An order's fulfillments, ``updated_at_min``/``_max`` inclusive."""
        order = self.orders.get(request.path_params["id"])
        if order is None:
            return JSONResponse({"errors": "not found"}, status_code=404)
        window = _time_window(request.query_params, {"limit", "page"})
        if isinstance(window, Response):
            return window
        return JSONResponse(
            {"fulfillments": [f for f in order["fulfillments"] if _within(f["updated_at"], window)]}
        )

    async def list_products(self, request: Request, body: Any) -> Response:
        """Product List: cursor paging (``per_page`` up to 250, the answer's
        ``cursor`` for the next page, empty on the last); oldest change first."""
        query = request.query_params
        window = _time_window(query, {"ids", "per_page", "cursor", "fields"})
        if isinstance(window, Response):
            return window
        size = _int(query, "per_page", 20, 1, 250)
        start = _decode_cursor(query.get("cursor", ""))
        if size is None or start is None:
            return _bad("per_page is 1..250 and cursor one this list handed out")
        ids = _ids(query)
        found = sorted(
            (
                p
                for p in self.products.values()
                if (ids is None or p["id"] in ids) and _within(p["updated_at"], window)
            ),
            key=lambda p: (_moment(p["updated_at"]), p["id"]),
        )
        page = found[start : start + size]
        more = start + size < len(found)
        return JSONResponse(
            {"products": page, "cursor": _encode_cursor(start + size) if more else ""}
        )

    async def create_order(self, request: Request, body: dict[str, Any]) -> Response:
        """Create an order; Shoplazza refuses line items of variants it does not have."""
        order = dict(body.get("order") or {})
        variants = {
            str(v["id"]): str(p["id"]) for p in self.products.values() for v in p["variants"]
        }
        items = order.get("line_items")
        if not isinstance(items, list) or not items:
            return _unprocessable("line_items is required")
        for item in items:
            if variants.get(str(item.get("variant_id"))) != str(item.get("product_id")):
                return _unprocessable(
                    f"variant {item.get('variant_id')} of product {item.get('product_id')} "
                    "does not exist"
                )
        if order.get("financial_status", "waiting") not in FINANCIAL_STATUSES:
            return _unprocessable(f"unknown financial_status {order.get('financial_status')!r}")
        order["line_items"] = [
            {**item, "id": str(next(self._ids))} for item in order.get("line_items", [])
        ]
        order.update(
            id=str(next(self._ids)),
            created_at=self._now(),
            updated_at=self._now(),
            status="opened",
            fulfillment_status="initialled",
            fulfillments=[],
        )
        order.setdefault("financial_status", "waiting")
        self.orders[order["id"]] = order
        return JSONResponse({"order": order})

    async def update_order(self, request: Request, body: dict[str, Any]) -> Response:
        order = self.orders.get(request.path_params["id"])
        if order is None:
            return JSONResponse({"errors": "not found"}, status_code=404)
        change = body.get("order", {})
        wanted = change.get("fulfillment_status")
        rank = FULFILLMENT_ORDER.index
        if wanted is not None and (
            wanted not in FULFILLMENT_ORDER
            or order["status"] == "cancelled"
            or rank(wanted) < rank(order["fulfillment_status"])
        ):
            return _unprocessable(
                f"fulfillment_status cannot go from {order['fulfillment_status']} to {wanted}"
            )
        order.update(change)
        order["updated_at"] = self._now()
        return JSONResponse({"order": order})

    async def mark_paid(self, request: Request, body: Any) -> Response:
        order = self.orders.get(request.path_params["id"])
        if order is None:
            return JSONResponse({"errors": "not found"}, status_code=404)
        if order["status"] == "cancelled" or order["financial_status"] not in UNPAID:
            return _unprocessable(f"the order is {order['financial_status']}, not awaiting payment")
        order["financial_status"] = "paid"
        order["updated_at"] = self._now()
        return JSONResponse({"order": order})

    async def cancel(self, request: Request, body: Any) -> Response:
        order = self.orders.get(request.path_params["id"])
        if order is None:
            return JSONResponse({"errors": "not found"}, status_code=404)
        if order["status"] == "cancelled":
            return _unprocessable("the order is already cancelled")
        order["status"] = "cancelled"
        order["updated_at"] = self._now()
        return JSONResponse({"order": order})

    # ---------------------------------------------------------------- the merchant's side

    def fulfill(
        self, order_id: str, tracking_number: str, tracking_company_code: str
    ) -> dict[str, Any]:
        order = self.orders[order_id]
        order["updated_at"] = self._now()
        order["fulfillments"].append(
            {
                "id": f"{order_id}-f{len(order['fulfillments']) + 1}",
                "order_id": order_id,
                "status": "success",
                "created_at": order["updated_at"],
                "updated_at": order["updated_at"],
                "tracking_number": tracking_number,
                "tracking_company_code": tracking_company_code,
                "line_items": [
                    {
                        "id": i["id"],
                        "variant_id": i.get("variant_id"),
                        "quantity": i.get("quantity", 1),
                    }
                    for i in order["line_items"]
                ],
            }
        )
        order["fulfillment_status"] = "shipped"
        self.send_webhook("orders/update", {"order": order})
        return order

    def order_action(self, order_id: str, action: str) -> dict[str, Any]:
        order = self.orders[order_id]
        order["updated_at"] = self._now()
        if action == "refund":
            order["financial_status"] = "refunded"
            self.send_webhook("orders/update", {"order": {**order, "fulfillments": []}})
        elif action == "cancel":
            order["status"] = "cancelled"
            self.send_webhook("orders/cancelled", {"order": {**order, "fulfillments": []}})
        else:
            raise ValueError(f"unknown order action {action!r}")
        return order

    def product_action(self, product_id: str, action: str, **changes: Any) -> dict[str, Any]:
        """The merchant edits a product in the Shoplazza admin (variant fields
        apply to its first variant); Shoplazza then sends products/update with
        the whole product. A field Shoplazza products do not have is refused."""
        product = self.products[product_id]
        if action == "update":
            unknown = sorted(set(changes) - PRODUCT_FIELDS - VARIANT_FIELDS)
            if unknown:
                raise ValueError(f"not a Shoplazza product field: {', '.join(unknown)}")
            for key, value in changes.items():
                if key in VARIANT_FIELDS:
                    product["variants"][0][key] = value
                else:
                    product[key] = value
            product["updated_at"] = self._stamp(product.get("updated_at"))
            self.send_webhook("products/update", {"product": product})
        elif action == "delete":
            del self.products[product_id]
            self.send_webhook("products/delete", {"product": {"id": product_id}})
        else:
            raise ValueError(f"unknown product action {action!r}")
        return product

    def adjust_inventory(self, product_id: str, variant_id: str, quantity: int) -> dict[str, Any]:
        """Stock moved outside a product edit (a sale, a warehouse count): the
        variant changes, the product's ``updated_at`` does not, and no
        products/update is sent. Only a look at the stock itself finds it."""
        product = self.products[product_id]
        variant = next(v for v in product["variants"] if v["id"] == variant_id)
        variant["inventory_quantity"] = quantity
        variant["updated_at"] = self._stamp(variant.get("updated_at"))
        return product

    async def admin_order_action(self, request: Request) -> Response:
        raw = await request.body()
        body = from_json(raw) if raw else {}
        order_id, action = request.path_params["id"], request.path_params["action"]
        try:
            if action == "fulfill":
                return JSONResponse(
                    self.fulfill(order_id, body["tracking_number"], body["tracking_company_code"])
                )
            return JSONResponse(self.order_action(order_id, action))
        except (KeyError, ValueError) as error:
            return JSONResponse({"error": str(error)}, status_code=400)

    async def admin_app_action(self, request: Request) -> Response:
        """The merchant uninstalls or installs the app (``uninstall``, ``install``)."""
        action = request.path_params["action"]
        if action == "uninstall":
            self.uninstall()
            return JSONResponse({"installed": False})
        if action == "install":
            return JSONResponse({"installed": True, "access_token": self.install()})
        return JSONResponse({"error": f"unknown app action {action!r}"}, status_code=400)

    async def admin_product_action(self, request: Request) -> Response:
        raw = await request.body()
        body = from_json(raw) if raw else {}
        try:
            return JSONResponse(
                self.product_action(
                    request.path_params["id"], request.path_params["action"], **body
                )
            )
        except (KeyError, ValueError) as error:
            return JSONResponse({"error": str(error)}, status_code=400)


# ---------------------------------------------------------------- list requests

_TIME_FILTERS = ("updated_at_min", "updated_at_max", "created_at_min", "created_at_max")


def _bad(message: str) -> Response:
    return JSONResponse({"errors": message}, status_code=400)


def _unknown(query: Any, known: set[str]) -> Response | None:
    for name in query:
        if name not in known:
            return _bad(f"unknown query parameter {name!r}")
    return None


def _time_window(query: Any, other_params: set[str]) -> dict[str, datetime] | Response:
    """The time filters as datetimes, once every parameter is one this list takes
    (``other_params`` or a time filter); a value that is not ISO 8601 is refused."""
    refused = _unknown(query, {*other_params, *_TIME_FILTERS})
    if refused is not None:
        return refused
    window = {}
    for name in _TIME_FILTERS:
        if name in query:
            try:
                stamp = datetime.fromisoformat(query[name])
            except ValueError:
                return _bad(f"{name} is not an ISO 8601 time: {query[name]!r}")
            if stamp.tzinfo is None:
                return _bad(f"{name} needs a UTC offset: {query[name]!r}")
            window[name] = stamp
    return window


def _moment(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def _within(stamp: str, window: dict[str, datetime]) -> bool:
    """``updated_at`` within the ``updated_at_*`` filters (at or after min, at or before max)."""
    moment = _moment(stamp)
    low, high = window.get("updated_at_min"), window.get("updated_at_max")
    return (low is None or moment >= low) and (high is None or moment <= high)


def _int(query: Any, name: str, default: int, low: int, high: int) -> int | None:
    raw = query.get(name)
    if raw is None:
        return default
    return int(raw) if raw.isdigit() and low <= int(raw) <= high else None


def _ids(query: Any) -> set[str] | None:
    raw = query.get("ids")
    return None if raw is None else {i.strip() for i in raw.split(",") if i.strip()}


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _decode_cursor(cursor: str) -> int | None:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    kind, _, offset = text.partition(":")
    return int(offset) if kind == "offset" and offset.isdigit() else None
