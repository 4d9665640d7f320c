"""The TikTok Shop sandbox's products: as strict as TikTok about what it takes.

Images are uploaded first and named by the ``uri`` handed out here; a
product names a leaf category, its package weight and size in one system of
units, and SKUs whose price and stock TikTok accepts; price and stock
updates name the SKU ids this catalog gave at create. Whatever TikTok would
refuse is refused with its code in TikTok's envelope (docs/tiktok-products.md).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.sandbox.images import sniff
from adapters.tiktok_shop import product_errors as codes
from adapters.tiktok_shop.client import PRODUCT_NOT_FOUND
from engine.clock import Clock

Envelope = Callable[..., Response]
SendWebhook = Callable[[int, dict[str, Any]], None]

MAX_IMAGE_BYTES = 5 * 1024 * 1024
MIN_SIDE, MAX_SIDE = 300, 4000
MAX_IMAGES, MAX_SKUS, MAX_TITLE, MAX_DESCRIPTION = 9, 300, 255, 10_000
MIN_PRICE, MAX_PRICE = Decimal("0.01"), Decimal("7600")
MAX_STOCK = 99_999
WEIGHT_DECIMALS = {"KILOGRAM": 3, "POUND": 2}
SYSTEM = {"KILOGRAM": "metric", "POUND": "imperial", "CENTIMETER": "metric", "INCH": "imperial"}
WAREHOUSE_ID = "7068517275539719942"

# A sliver of TikTok's US category tree: id -> (name, parent id, is leaf).
CATEGORIES: dict[str, tuple[str, str, bool]] = {
    "601152": ("Womenswear & Underwear", "0", False),
    "601226": ("Women's Tops", "601152", True),
    "824328": ("Menswear & Underwear", "0", False),
    "601303": ("Men's Shirts", "824328", True),
    "605248": ("Fashion Accessories", "0", False),
    "601741": ("Hats & Caps", "605248", True),
    "601753": ("Sunglasses", "605248", True),
    "604968": ("Sports & Outdoor", "0", False),
    "605196": ("Fitness Equipment", "604968", True),
    "600001": ("Home Supplies", "0", False),
    "600942": ("Home Organizers", "600001", True),
}
_RECOMMEND = (
    ("shirt", "601303"),
    ("tee", "601226"),
    ("hat", "601741"),
    ("cap", "601741"),
    ("sunglasses", "601753"),
    ("dumbbell", "605196"),
)
FALLBACK_CATEGORY = "600942"


class Refusal(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _decimal(value: Any) -> Decimal | None:
    if not isinstance(value, str):
        return None  # TikTok's amounts and weights are strings
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _decimals(number: Decimal) -> int:
    """How many digits a finite decimal has after its point (as written)."""
    exponent = number.as_tuple().exponent
    return -exponent if isinstance(exponent, int) else 0


def category_chain(category_id: str) -> list[dict[str, Any]]:
    chain: list[dict[str, Any]] = []
    current = category_id
    while current in CATEGORIES:
        name, parent, leaf = CATEGORIES[current]
        chain.insert(0, {"id": current, "parent_id": parent, "local_name": name, "is_leaf": leaf})
        current = parent
    return chain


@dataclass
class ProductCatalog:
    clock: Clock
    envelope: Envelope
    send_webhook: SendWebhook
    # Read at each submission, so a test can change the sandbox's review time
    # after it started.
    review_seconds: Callable[[], float]
    reject_words: tuple[str, ...]
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: dict[str, str] = field(default_factory=dict)
    warehouses: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {
                "id": WAREHOUSE_ID,
                "name": "Springfield warehouse",
                "effect_status": "ENABLED",
                "type": "SALES_WAREHOUSE",
                "sub_type": "DOMESTIC_WAREHOUSE",
                "is_default": True,
                "address": {"region_code": "US", "state": "Illinois", "city": "Springfield"},
            }
        ]
    )

    def __post_init__(self) -> None:
        self._ids = itertools.count(1729382256910270000, 13)
        self._uris = itertools.count(1)

    def routes(self, api: Callable[[Any], Any]) -> list[Route]:
        products = "/product/202309/products"
        return [
            Route("/product/202309/images/upload", api(self.upload_image), methods=["POST"]),
            Route("/product/202309/categories/recommend", api(self.recommend), methods=["POST"]),
            Route(products, api(self.create_product), methods=["POST"]),
            Route(f"{products}/activate", api(self.activate), methods=["POST"]),
            Route(f"{products}/deactivate", api(self.deactivate), methods=["POST"]),
            Route(f"{products}/{{id}}", api(self.get_product), methods=["GET"]),
            Route(f"{products}/{{id}}", api(self.edit_product), methods=["PUT"]),
            Route(f"{products}/{{id}}/prices/update", api(self.update_prices), methods=["POST"]),
            Route(
                f"{products}/{{id}}/inventory/update", api(self.update_inventory), methods=["POST"]
            ),
        ]

    # ------------------------------------------------------------ answers

    def _refused(self, refusal: Refusal) -> Response:
        return self.envelope(code=refusal.code, message=refusal.message)

    async def upload_image(self, request: Request, body: Any) -> Response:
        form = await request.form()
        upload = form.get("data")
        if upload is None or isinstance(upload, str):
            return self.envelope(code=codes.INVALID_PARAMETER, message="data: a file is required")
        content = await upload.read()
        use_case = str(form.get("use_case") or "MAIN_IMAGE")
        seen = sniff(content)
        if not content or seen is None or seen[0] == "gif":
            kind = seen[0].upper() if seen else "unknown"
            return self.envelope(
                code=codes.IMAGE_FORMAT_UNSUPPORTED,
                message=f"image format {kind} is not supported: use JPG, PNG or WEBP",
            )
        _, width, height = seen
        if len(content) > MAX_IMAGE_BYTES or (
            use_case == "MAIN_IMAGE"
            and not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE)
        ):
            return self.envelope(
                code=codes.IMAGE_SIZE_OUT_OF_RANGE,
                message=f"image {width}x{height} px is outside 300x300 to 4000x4000 px",
            )
        uri = f"tos-maliva-i-o3syd03w52-us/{next(self._uris):032x}"
        url = f"https://p16-oec-va.ibyteimg.com/{uri}~tplv-o3syd03w52-origin-jpeg.jpeg"
        self.images[uri] = {"uri": uri, "url": url, "width": width, "height": height}
        return self.envelope(
            {"uri": uri, "url": url, "width": width, "height": height, "use_case": use_case}
        )

    async def recommend(self, request: Request, body: dict[str, Any]) -> Response:
        title = body.get("product_title")
        if not isinstance(title, str) or not title.strip():
            return self.envelope(code=codes.INVALID_PARAMETER, message="product_title is required")
        words = title.lower()
        leaf = next((cid for word, cid in _RECOMMEND if word in words), FALLBACK_CATEGORY)
        chain = category_chain(leaf)
        return self.envelope(
            {
                "leaf_category_id": leaf,
                "categories": [
                    {
                        "id": c["id"],
                        "name": c["local_name"],
                        "level": level,
                        "is_leaf": c["is_leaf"],
                        "permission_statuses": ["AVAILABLE"],
                    }
                    for level, c in enumerate(chain, start=1)
                ],
            }
        )

    async def create_product(self, request: Request, body: dict[str, Any]) -> Response:
        key = body.get("idempotency_key")
        if key and key in self.idempotency:  # PLAT-7: a retried create is the same product
            return self.envelope(self._created(self.products[self.idempotency[key]]))
        try:
            checked = self._check_product(body, known_skus={})
        except Refusal as refusal:
            return self._refused(refusal)
        product_id = str(next(self._ids))
        if key:
            self.idempotency[key] = product_id
        product = {"id": product_id, "create_time": int(self.clock.now()), **checked}
        self._to_review(product)
        self.products[product_id] = product
        return self.envelope(self._created(product))

    async def edit_product(self, request: Request, body: dict[str, Any]) -> Response:
        product = self.products.get(request.path_params["id"])
        if product is None:
            return self.envelope(code=PRODUCT_NOT_FOUND, message="product not found")
        try:
            checked = self._check_product(body, known_skus=product["skus"])
        except Refusal as refusal:
            return self._refused(refusal)
        product.update(checked)
        self._to_review(product)
        return self.envelope(self._created(product))

    async def get_product(self, request: Request, body: Any) -> Response:
        self.tick()  # a review due by now has ended
        product = self.products.get(request.path_params["id"])
        if product is None:
            return self.envelope(code=PRODUCT_NOT_FOUND, message="product not found")
        return self.envelope(self.view(product))

    async def update_prices(self, request: Request, body: dict[str, Any]) -> Response:
        try:
            product, skus = self._own_skus(request, body)
            prices = [self._price(entry.get("price")) for entry in skus]
        except Refusal as refusal:
            return self._refused(refusal)
        for entry, price in zip(skus, prices, strict=True):
            product["skus"][entry["id"]]["price"] = price
        self.touch(product)
        return self.envelope({})

    async def update_inventory(self, request: Request, body: dict[str, Any]) -> Response:
        try:
            product, skus = self._own_skus(request, body)
            stocks = [self._inventory(entry.get("inventory"), update=True) for entry in skus]
        except Refusal as refusal:
            return self._refused(refusal)
        for entry, inventory in zip(skus, stocks, strict=True):
            product["skus"][entry["id"]]["inventory"] = inventory
        self.touch(product)
        return self.envelope({})

    async def activate(self, request: Request, body: dict[str, Any]) -> Response:
        return self._switch(body, "ACTIVATE")

    async def deactivate(self, request: Request, body: dict[str, Any]) -> Response:
        return self._switch(body, "SELLER_DEACTIVATED")

    def _switch(self, body: dict[str, Any], status: str) -> Response:
        ids = body.get("product_ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            return self.envelope(
                code=codes.INVALID_PARAMETER, message="product_ids: a list of ids is required"
            )
        unknown = [i for i in ids if i not in self.products]
        if unknown:
            return self.envelope(
                code=PRODUCT_NOT_FOUND, message=f"product not found: {', '.join(unknown)}"
            )
        for product_id in ids:
            self.set_status(product_id, status)
        return self.envelope({})

    # ------------------------------------------------------------ what TikTok checks

    def _check_product(
        self, body: dict[str, Any], known_skus: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        title = body.get("title")
        if not isinstance(title, str) or not 1 <= len(title) <= MAX_TITLE:
            raise Refusal(codes.TITLE_LENGTH, "title must be 1 to 255 characters")
        description = body.get("description")
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            raise Refusal(codes.INVALID_PARAMETER, "description must be up to 10000 characters")
        category_id = body.get("category_id")
        if not isinstance(category_id, str) or not CATEGORIES.get(category_id, ("", "", False))[2]:
            raise Refusal(
                codes.CATEGORY_NOT_LEAF, f"category_id {category_id!r} is not a leaf category"
            )
        images = body.get("main_images")
        if not isinstance(images, list) or not 1 <= len(images) <= MAX_IMAGES:
            raise Refusal(codes.MAIN_IMAGES_COUNT, "main_images must hold 1 to 9 images")
        for image in images:
            uri = image.get("uri") if isinstance(image, dict) else None
            if uri not in self.images:
                raise Refusal(
                    codes.IMAGE_URI_UNKNOWN,
                    f"main_images uri {uri!r} was not uploaded with Upload Product Image",
                )
        weight_unit = self._weight(body.get("package_weight"))
        self._dimensions(body.get("package_dimensions"), weight_unit)
        skus = self._skus(body.get("skus"), known_skus)
        return {
            "title": title,
            "description": description,
            "category_id": category_id,
            "main_images": [dict(self.images[i["uri"]]) for i in images],
            "package_weight": body["package_weight"],
            "package_dimensions": body["package_dimensions"],
            "size_chart": body.get("size_chart"),
            "certifications": body.get("certifications") or [],
            "skus": skus,
        }

    @staticmethod
    def _weight(weight: Any) -> str:
        if not isinstance(weight, dict):
            raise Refusal(codes.PACKAGE_WEIGHT_INVALID, "package_weight is required")
        unit = weight.get("unit")
        value = _decimal(weight.get("value"))
        if unit not in WEIGHT_DECIMALS:
            raise Refusal(codes.PACKAGE_WEIGHT_INVALID, "package_weight.unit: KILOGRAM or POUND")
        if value is None or value <= 0 or _decimals(value) > WEIGHT_DECIMALS[unit]:
            raise Refusal(
                codes.PACKAGE_WEIGHT_INVALID,
                f"package_weight.value must be positive with at most "
                f"{WEIGHT_DECIMALS[unit]} decimals in {unit}",
            )
        return unit

    @staticmethod
    def _dimensions(dimensions: Any, weight_unit: str) -> None:
        if not isinstance(dimensions, dict):
            raise Refusal(codes.PACKAGE_DIMENSIONS_INVALID, "package_dimensions is required")
        for side in ("length", "width", "height"):
            value = dimensions.get(side)
            if not isinstance(value, str) or not re.fullmatch(r"[1-9][0-9]*", value):
                raise Refusal(
                    codes.PACKAGE_DIMENSIONS_INVALID,
                    f"package_dimensions.{side} must be a positive whole number",
                )
        unit = dimensions.get("unit")
        if unit not in ("CENTIMETER", "INCH"):
            raise Refusal(
                codes.PACKAGE_DIMENSIONS_INVALID, "package_dimensions.unit: CENTIMETER or INCH"
            )
        if SYSTEM[unit] != SYSTEM[weight_unit]:
            raise Refusal(
                codes.PACKAGE_DIMENSIONS_INVALID,
                f"package_dimensions in {unit} and package_weight in {weight_unit}"
                " are not one system of measurement",
            )

    def _skus(self, skus: Any, known: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if not isinstance(skus, list) or not 1 <= len(skus) <= MAX_SKUS:
            raise Refusal(codes.INVALID_PARAMETER, "skus must hold 1 to 300 SKUs")
        names: set[str] = set()
        checked: dict[str, dict[str, Any]] = {}
        for sku in skus:
            if not isinstance(sku, dict):
                raise Refusal(codes.INVALID_PARAMETER, "a SKU must be an object")
            sku_id = sku.get("id")
            if sku_id is not None and sku_id not in known:
                raise Refusal(codes.SKU_NOT_IN_PRODUCT, f"sku id {sku_id!r} is not this product's")
            attributes = sku.get("sales_attributes") or []
            if len(skus) > 1 and not attributes:
                raise Refusal(
                    codes.INVALID_PARAMETER, "sales_attributes are required with several SKUs"
                )
            names |= {str(a.get("name") or a.get("id")) for a in attributes}
            seller_sku = sku.get("seller_sku", "")
            if not isinstance(seller_sku, str) or len(seller_sku) > 50 or " " in seller_sku:
                raise Refusal(codes.INVALID_PARAMETER, f"seller_sku {seller_sku!r} is not valid")
            new_id = sku_id or str(next(self._ids))
            checked[new_id] = {
                "id": new_id,
                "seller_sku": seller_sku,
                "sales_attributes": attributes,
                "price": self._price(sku.get("price")),
                "inventory": self._inventory(sku.get("inventory"), update=False),
            }
        if len(names) > 3:
            raise Refusal(
                codes.TOO_MANY_SALES_ATTRIBUTES, "at most 3 types of sales attributes per product"
            )
        return checked

    @staticmethod
    def _price(price: Any) -> dict[str, str]:
        if not isinstance(price, dict) or price.get("currency") != "USD":
            raise Refusal(codes.INVALID_PARAMETER, "price needs an amount and currency USD")
        amount = _decimal(price.get("amount"))
        if amount is None or not MIN_PRICE <= amount <= MAX_PRICE:
            raise Refusal(
                codes.PRICE_OUT_OF_RANGE, f"price.amount {price.get('amount')!r} is not 0.01-7600"
            )
        return {"amount": price["amount"], "currency": "USD"}

    def _inventory(self, inventory: Any, *, update: bool) -> list[dict[str, Any]]:
        if not isinstance(inventory, list) or not inventory:
            raise Refusal(codes.INVALID_PARAMETER, "inventory: one entry per warehouse")
        ours = {w["id"] for w in self.warehouses}
        stocked: list[dict[str, Any]] = []
        for entry in inventory:
            warehouse = entry.get("warehouse_id") if isinstance(entry, dict) else None
            if warehouse is None and update and len(ours) == 1:
                warehouse = next(iter(ours))  # optional in an update when there is one
            if warehouse not in ours:
                raise Refusal(codes.INVALID_PARAMETER, f"warehouse_id {warehouse!r} is unknown")
            quantity = entry.get("quantity")
            if isinstance(quantity, bool) or not isinstance(quantity, int):
                raise Refusal(codes.STOCK_OUT_OF_RANGE, "quantity must be a whole number")
            if not 0 <= quantity <= MAX_STOCK:
                raise Refusal(codes.STOCK_OUT_OF_RANGE, f"quantity {quantity} is not 0-99999")
            stocked.append({"warehouse_id": warehouse, "quantity": quantity})
        return stocked

    def _own_skus(
        self, request: Request, body: dict[str, Any]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        product = self.products.get(request.path_params["id"])
        if product is None:
            raise Refusal(PRODUCT_NOT_FOUND, "product not found")
        skus = body.get("skus")
        if not isinstance(skus, list) or not skus:
            raise Refusal(codes.INVALID_PARAMETER, "skus is required")
        for entry in skus:
            sku_id = entry.get("id") if isinstance(entry, dict) else None
            if sku_id not in product["skus"]:
                raise Refusal(
                    codes.SKU_NOT_IN_PRODUCT,
                    f"sku id {sku_id!r} does not belong to product {product['id']}",
                )
        return product, skus

    # ------------------------------------------------------------ views and review

    @staticmethod
    def _created(product: dict[str, Any]) -> dict[str, Any]:
        return {
            "product_id": product["id"],
            "skus": [
                {
                    "id": sku["id"],
                    "seller_sku": sku["seller_sku"],
                    "sales_attributes": [
                        {"id": str(n), "value_id": str(n)}
                        for n, _ in enumerate(sku["sales_attributes"], start=1)
                    ],
                }
                for sku in product["skus"].values()
            ],
            "warnings": [],
        }

    def view(self, product: dict[str, Any]) -> dict[str, Any]:
        """Get Product's answer."""
        return {
            "id": product["id"],
            "title": product["title"],
            "description": product["description"],
            "status": product["status"],
            "category_chains": category_chain(product["category_id"]),
            "main_images": [
                {
                    "uri": i["uri"],
                    "urls": [i["url"]],
                    "thumb_urls": [i["url"]],
                    "width": i["width"],
                    "height": i["height"],
                }
                for i in product["main_images"]
            ],
            "package_weight": product["package_weight"],
            "package_dimensions": product["package_dimensions"],
            "skus": [
                {
                    "id": sku["id"],
                    "seller_sku": sku["seller_sku"],
                    "price": {"currency": "USD", "sale_price": sku["price"]["amount"]},
                    "inventory": sku["inventory"],
                    "sales_attributes": [
                        {"name": a.get("name", ""), "value_name": a.get("value_name", "")}
                        for a in sku["sales_attributes"]
                    ],
                }
                for sku in product["skus"].values()
            ],
            "audit_failed_reasons": product["audit_failed_reasons"],
            "create_time": product["create_time"],
            "update_time": product["update_time"],
        }

    def _to_review(self, product: dict[str, Any]) -> None:
        product.update(
            status="PENDING",
            audit_failed_reasons=[],
            review_due=self.clock.now() + self.review_seconds(),
        )
        self.touch(product)

    def touch(self, product: dict[str, Any]) -> None:
        """A product's update_time moves with every change, and only forward:
        Search Products filters on it and the webhooks carry the same value."""
        product["update_time"] = max(int(self.clock.now()), product.get("update_time", 0) + 1)

    def tick(self) -> None:
        now = self.clock.now()
        for product in self.products.values():
            if product["status"] == "PENDING" and product["review_due"] <= now:
                self._review(product)

    def _review(self, product: dict[str, Any]) -> None:
        words = [w for w in self.reject_words if w in product["title"].lower()]
        self.touch(product)
        if words:
            product["status"] = "FAILED"
            product["audit_failed_reasons"] = [
                {
                    "position": "title",
                    "reasons": [f"the title contains a restricted word: {words[0]}"],
                    "suggestions": ["remove restricted words from the title"],
                }
            ]
            audit: dict[str, Any] = {"status": "FAILED"}
        else:
            product["status"] = "ACTIVATE"
            audit = {"status": "APPROVED", "pre_approved_reasons": []}
        self.send_webhook(
            37,
            {
                "product_id": int(product["id"]),
                "audit": audit,
                "update_time": product["update_time"],
            },
        )

    # ------------------------------------------------------------ TikTok's side of things

    def set_status(self, product_id: str, status: str) -> None:
        """A status change on TikTok's side, announced by webhook type 5."""
        product = self.products[product_id]
        product["status"] = status
        self.touch(product)
        self.send_webhook(
            5,
            {
                "product_id": int(product_id),
                "status": "PRODUCT_STATUS_CHANGED",
                "suspended_reason": "",
                "update_time": product["update_time"],
            },
        )

    def change_category(self, product_id: str, category_id: str) -> None:
        """The seller moves the product to another category in Seller Center (type 18)."""
        product = self.products[product_id]
        previous = product["category_id"]
        product["category_id"] = category_id
        self.touch(product)
        self.send_webhook(
            18,
            {
                "product_id": product_id,
                "previous_category_id": previous,
                "current_category_id": category_id,
                "update_time": product["update_time"],
            },
        )

    def seller_center_edit(self, product_id: str, **changes: Any) -> None:
        """The seller edits the product in Seller Center (type 15)."""
        product = self.products[product_id]
        product.update(changes)
        self.touch(product)
        self.send_webhook(
            15,
            {
                "product_id": product_id,
                "change_source": "SELLER_CENTER",
                "changed_fields": sorted(changes),
                "update_time": product["update_time"],
            },
        )
