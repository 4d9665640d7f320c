"""A contract test: the adapter's product requests, the sandbox's answers and its
product webhooks (types 5, 15, 18, 37) read against a second, independent
reading of TikTok's docs - the typed models of `tiktok-shop-api` (generated
from TikTok Shop's Partner Center docs).

The models are attrs classes whose ``from_dict`` only checks that required
keys are there; `strict` adds what a contract needs: no field the model does
not define (anywhere in the tree), enums by value, and JSON types as declared
(a ``str`` amount is not a number). docs/tiktok-products.md says where the
models and our notes disagree and which was followed.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable
from typing import Any

import attrs
import httpx
import pytest
from tiktok_shop_api.generated import models
from tiktok_shop_api.generated.types import Unset

from adapters.sandbox import story
from adapters.sandbox.images import SandboxCdn
from adapters.sandbox.story import Sandboxes, connect_shop
from adapters.tiktok_shop.commands import TikTokCommands
from engine.outbox import OutboxCommand
from statecharts.tiktok_request import listing_request
from tests.adapters.test_tiktok_products import ATTRIBUTES, LISTING, shoplazza_product

_PRIMITIVES = {"str": str, "int": int, "float": float, "bool": bool}


class ContractBroken(AssertionError):
    pass


def strict(model: type, data: Any) -> Any:
    """``model.from_dict(data)``, refusing anything the model does not define."""
    try:
        parsed = model.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ContractBroken(f"{model.__name__}: {type(error).__name__} {error}") from error
    _walk(parsed, model.__name__)
    return parsed


def _walk(value: Any, path: str) -> None:
    if isinstance(value, list):
        for n, item in enumerate(value):
            _walk(item, f"{path}[{n}]")
        return
    if not attrs.has(type(value)):
        return
    extra = getattr(value, "additional_properties", {})
    if extra:
        raise ContractBroken(f"{path}: fields the model does not define: {sorted(extra)}")
    for field in attrs.fields(type(value)):
        if field.name == "additional_properties":
            continue
        item = getattr(value, field.name)
        if isinstance(item, Unset):
            continue
        _check_type(item, str(field.type), f"{path}.{field.name}")
        _walk(item, f"{path}.{field.name}")


def _check_type(value: Any, declared: str, path: str) -> None:
    items = value if isinstance(value, list) else [value]
    for item in items:
        if attrs.has(type(item)) or isinstance(item, enum.Enum | list | dict):
            continue
        allowed = {name for name in _PRIMITIVES if re.search(rf"\b{name}\b", declared)}
        if "Any" in declared or not allowed:
            continue
        if type(item).__name__ not in allowed:
            raise ContractBroken(f"{path}: {item!r} is {type(item).__name__}, not {declared}")


# (method, path pattern) -> (request model or None, response model)
OPERATIONS: list[tuple[str, str, type | None, type]] = [
    ("POST", r"/product/202309/images/upload", None, models.UploadProductImageResponse),
    (
        "POST",
        r"/product/202309/categories/recommend",
        models.RecommendCategoryRequest,
        models.RecommendCategoryResponse,
    ),
    ("GET", r"/logistics/202309/warehouses", None, models.GetWarehouseListResponse),
    (
        "POST",
        r"/product/202309/products",
        models.CreateProductRequest,
        models.CreateProductResponse,
    ),
    (
        "POST",
        r"/product/202309/products/activate",
        models.ActivateProductsRequest,
        models.ActivateProductsResponse,
    ),
    (
        "POST",
        r"/product/202309/products/deactivate",
        models.DeactivateProductsRequest,
        models.DeactivateProductsResponse,
    ),
    (
        "POST",
        r"/product/202309/products/search",
        models.SearchProductsRequest,
        models.SearchProductsResponse,
    ),
    ("GET", r"/product/202309/products/\d+", None, models.GetProductResponse),
    ("PUT", r"/product/202309/products/\d+", models.EditProductRequest, models.EditProductResponse),
    (
        "POST",
        r"/product/202309/products/\d+/prices/update",
        models.UpdatePriceRequest,
        models.UpdatePriceResponse,
    ),
    (
        "POST",
        r"/product/202309/products/\d+/inventory/update",
        models.UpdateInventoryRequest,
        models.UpdateInventoryResponse,
    ),
]
WEBHOOKS: dict[int, type] = {
    5: models.ProductStatusChangeWebhook,
    15: models.ProductInformationChangeWebhook,
    18: models.ProductCategoryChangeWebhook,
    37: models.ProductAuditStatusChangeWebhook,
}


def operation(method: str, path: str) -> tuple[type | None, type] | None:
    for op_method, pattern, request, response in OPERATIONS:
        if op_method == method and re.fullmatch(pattern, path):
            return request, response
    return None


class Recorder:
    """Every product call the adapter makes and what the sandbox answers."""

    def __init__(self) -> None:
        self.exchanges: list[tuple[httpx.Request, httpx.Response]] = []

    @staticmethod
    async def on_request(request: httpx.Request) -> None:
        await request.aread()  # a multipart body is a stream: keep its bytes to look at

    async def on_response(self, response: httpx.Response) -> None:
        await response.aread()
        self.exchanges.append((response.request, response))


@pytest.fixture
async def box(tmp_path):
    started = await Sandboxes.start(tmp_path / "contract.db")
    await connect_shop(started)
    try:
        yield started
    finally:
        await started.stop()


async def run_product_lifecycle(box: Sandboxes) -> tuple[Recorder, list[bytes]]:
    """Create (recommended category), review, price, stock, edit, deactivate,
    activate, a status fetch, a retried create, and TikTok-side changes
    (category, Seller Center edit)."""
    recorder, webhooks = Recorder(), []
    box.service.tiktok.http.event_hooks["request"].append(recorder.on_request)
    box.service.tiktok.http.event_hooks["response"].append(recorder.on_response)
    enqueue = box.tiktok.webhooks.enqueue

    def keep(body: bytes) -> None:
        webhooks.append(body)
        enqueue(body)

    box.tiktok.webhooks.enqueue = keep  # type: ignore[method-assign]
    commands = TikTokCommands(box.service.tiktok, images=SandboxCdn().source())
    ids = iter(range(1, 100))

    def command(type_: str, attempts: int = 0, **payload: Any) -> OutboxCommand:
        n = next(ids)
        body = {"shop": story.SHOP, "listing": LISTING, **payload}
        return OutboxCommand(n, LISTING, type_, body, f"contract:{n}", attempts)

    request = listing_request(shoplazza_product(), ATTRIBUTES, None)
    [created] = await commands.create_listing(command("create_listing", product=request))
    product_id = created["payload"]["product_id"]
    sku = created["payload"]["skus"][0]
    box.clock.advance(box.tiktok.review_seconds + 1)
    box.tiktok.tick()
    await commands.update_price(
        command(
            "update_price",
            tiktok_product_id=product_id,
            prices=[{**sku, "amount": "21.00", "currency": "USD"}],
        )
    )
    await commands.update_inventory(
        command(
            "update_inventory", tiktok_product_id=product_id, inventory=[{**sku, "quantity": 7}]
        )
    )
    edited = listing_request(shoplazza_product("Linen beach shirt, relaxed"), ATTRIBUTES, None)
    await commands.edit_listing(
        command("edit_listing", tiktok_product_id=product_id, product=edited)
    )
    await commands.deactivate_listing(command("deactivate_listing", tiktok_product_id=product_id))
    await commands.activate_listing(command("activate_listing", tiktok_product_id=product_id))
    await commands.fetch_product_status(
        command("fetch_product_status", tiktok_product_id=product_id)
    )
    # A retried create looks the product up by seller SKU first (Search Products).
    await commands.create_listing(command("create_listing", attempts=1, product=edited))
    box.tiktok.catalog.change_category(product_id, "601226")
    box.tiktok.catalog.seller_center_edit(product_id, title="Linen shirt")
    return recorder, webhooks


async def test_the_adapters_requests_and_the_sandboxs_answers_match_tiktoks_models(box):
    recorder, _ = await run_product_lifecycle(box)
    seen: set[str] = set()
    for request, response in recorder.exchanges:
        known = operation(request.method, request.url.path)
        if known is None:
            continue
        request_model, response_model = known
        seen.add(response_model.__name__)
        if request_model is not None:
            strict(request_model, json.loads(request.content))
        else:
            assert not request.content or request.url.path.endswith("/images/upload")
        answer = response.json()
        assert answer["code"] == 0, answer
        strict(response_model, answer)
    assert seen == {response.__name__ for *_, response in OPERATIONS}, "every operation ran"


async def test_image_uploads_are_multipart_with_a_file_and_its_use_case(box):
    recorder, _ = await run_product_lifecycle(box)
    uploads = [r for r, _ in recorder.exchanges if r.url.path.endswith("/images/upload")]
    assert uploads
    for upload in uploads:
        assert upload.headers["content-type"].startswith("multipart/form-data")
        assert b'name="data"' in upload.content and b'name="use_case"' in upload.content
        assert b"MAIN_IMAGE" in upload.content


async def test_the_sandboxs_product_webhooks_match_tiktoks_models(box):
    _, webhooks = await run_product_lifecycle(box)
    types: set[int] = set()
    for body in webhooks:
        webhook = json.loads(body)
        if webhook["type"] in WEBHOOKS:
            types.add(webhook["type"])
            strict(WEBHOOKS[webhook["type"]], webhook)
    assert types == set(WEBHOOKS)


@pytest.mark.parametrize(
    ("model", "body"),
    [
        # The old adapter's create: a bare price string, stock as a number.
        (
            models.CreateProductRequest,
            {
                "title": "Hat",
                "description": "",
                "category_id": "601741",
                "main_images": [{"uri": "u"}],
                "skus": [{"seller_sku": "S", "price": "24.00", "inventory": 25}],
            },
        ),
        # The old adapter's price update: keyed by seller SKU, no TikTok SKU id.
        (
            models.UpdatePriceRequest,
            {"skus": [{"seller_sku_variant": "S", "price": {"amount": "1", "currency": "USD"}}]},
        ),
        # The old adapter's dimensions: numbers, where TikTok's are strings.
        (
            models.PackageDimension,
            {"length": 20, "width": 15, "height": 5, "unit": "CENTIMETER"},
        ),
        # The old sandbox's type 18: `category_id`, which TikTok does not send.
        (
            models.ProductCategoryChangeWebhook,
            {"type": 18, "shop_id": "1", "data": {"product_id": "1", "category_id": "2"}},
        ),
    ],
)
def test_the_old_shapes_break_the_contract(model: type, body: dict) -> None:
    """The check is strict enough to catch what the adapter used to send."""
    with pytest.raises(ContractBroken):
        strict(model, body)


def test_strict_accepts_the_documented_category_change() -> None:
    check: Callable[[type, Any], Any] = strict
    check(
        models.ProductCategoryChangeWebhook,
        {
            "type": 18,
            "tts_notification_id": "1",
            "shop_id": "7495540735365777507",
            "timestamp": 1,
            "data": {
                "product_id": "1",
                "previous_category_id": "2",
                "current_category_id": "3",
                "update_time": 1,
            },
        },
    )
