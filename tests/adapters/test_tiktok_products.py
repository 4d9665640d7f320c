"""The TikTok product API, adapter and strict sandbox, over loopback HTTP.

PROD-6 (price and stock reach TikTok under its SKU ids), PROD-7 (no merchant
category: TikTok's recommendation), PROD-10 (dimensions from the merchant's
attributes), and the sandbox refusing with TikTok's codes what TikTok refuses.
"""

from __future__ import annotations

import itertools

import pytest

from adapters.sandbox import story
from adapters.sandbox.images import SandboxCdn, make_image
from adapters.sandbox.story import Sandboxes, connect_shop
from adapters.tiktok_shop import product_errors as codes
from adapters.tiktok_shop.client import PRODUCT_NOT_FOUND, TikTokError
from adapters.tiktok_shop.commands import TikTokCommands
from engine.outbox import CommandFailed, OutboxCommand
from statecharts.tiktok_request import listing_request

LISTING = f"listing:{story.STORE}:2001"
_ids = itertools.count(1)


def shoplazza_product(title: str = "Linen beach shirt", **variant: object) -> dict:
    """A product as Shoplazza sends it: no TikTok-only fields."""
    return {
        "id": "2001",
        "title": title,
        "description": "<p>Cool linen</p>",
        "published": True,
        "images": [
            {"src": f"https://img.myshoplaza.com/2001/{n}.jpg", "width": 800, "height": 800}
            for n in range(3)
        ],
        "variants": [
            {
                "id": f"2001-{size}",
                "sku": f"SHIRT-{size}",
                "price": "24.00",
                "inventory_quantity": 25,
                "weight": 0.4,
                "weight_unit": "kg",
                "option1": size,
                **variant,
            }
            for size in ("S", "M")
        ],
    }


ATTRIBUTES = {"package_dimensions": {"length": 30, "width": 20, "height": 4, "unit": "CENTIMETER"}}


def command(type_: str, payload: dict) -> OutboxCommand:
    n = next(_ids)
    return OutboxCommand(n, LISTING, type_, payload, f"{LISTING}:{type_}:{n}", 0)


@pytest.fixture
async def box(tmp_path):
    started = await Sandboxes.start(tmp_path / "products.db")
    await connect_shop(started)
    try:
        yield started
    finally:
        await started.stop()


@pytest.fixture
def cdn():
    return SandboxCdn()


@pytest.fixture
def commands(box, cdn):
    return TikTokCommands(box.service.tiktok, images=cdn.source())


async def create(commands, product=None, attributes=ATTRIBUTES, category=None) -> dict:
    request = listing_request(product or shoplazza_product(), attributes, category)
    [event] = await commands.create_listing(
        command("create_listing", {"shop": story.SHOP, "listing": LISTING, "product": request})
    )
    return event


async def call(box, method: str, path: str, body: dict | None = None) -> dict:
    return await box.service.tiktok.call(story.SHOP, method, path, body=body)


async def refused_code(box, method: str, path: str, body: dict) -> int:
    with pytest.raises(TikTokError) as caught:
        await call(box, method, path, body)
    return int(caught.value.code)


async def upload(box, data: bytes, name: str = "a.jpg") -> str:
    answer = await box.service.tiktok.call(
        story.SHOP,
        "POST",
        "/product/202309/images/upload",
        files={"data": (name, data, "image/jpeg")},
        form={"use_case": "MAIN_IMAGE"},
    )
    return answer["uri"]


async def valid_body(box, **changes: object) -> dict:
    warehouses = await call(box, "GET", "/logistics/202309/warehouses")
    body = {
        "title": "Straw sun hat",
        "description": "<p>Hat</p>",
        "category_id": "601741",
        "main_images": [{"uri": await upload(box, make_image("jpeg", 800, 800))}],
        "package_weight": {"value": "0.3", "unit": "KILOGRAM"},
        "package_dimensions": {"length": "30", "width": "30", "height": "15", "unit": "CENTIMETER"},
        "skus": [
            {
                "seller_sku": "HAT-1",
                "price": {"amount": "18.00", "currency": "USD"},
                "inventory": [{"warehouse_id": warehouses["warehouses"][0]["id"], "quantity": 5}],
            }
        ],
    }
    return {**body, **changes}


# ------------------------------------------------------------------ the adapter


async def test_prod7_create_without_a_merchant_category_uses_tiktoks_recommendation(box, commands):
    """PROD-7: no category from the merchant, so the adapter asks Recommend Category
    for the title and creates the product in that leaf category."""
    event = await create(commands)
    assert event["type"] == "listing.submitted"
    product = box.tiktok.products[event["payload"]["product_id"]]
    assert product["category_id"] == "601303"  # the sandbox's leaf for a shirt
    assert event["payload"]["category_id"] == "601303"
    assert ("POST", "/product/202309/categories/recommend") in box.tiktok.calls


async def test_prod10_the_product_is_created_with_uploaded_images_and_tiktoks_shapes(
    box, commands, cdn
):
    """PROD-10: every image is uploaded first and named by TikTok's uri, weight is
    product-level with its unit, dimensions come from the merchant's attributes,
    and each SKU carries price{amount, currency} and stock per warehouse."""
    event = await create(commands, category="601226")
    stored = box.tiktok.products[event["payload"]["product_id"]]
    assert cdn.fetched == [f"https://img.myshoplaza.com/2001/{n}.jpg" for n in range(3)]
    assert all(image["uri"] in box.tiktok.catalog.images for image in stored["main_images"])
    assert stored["package_weight"] == {"value": "0.4", "unit": "KILOGRAM"}
    assert stored["package_dimensions"]["length"] == "30"
    by_seller_sku = {s["seller_sku"]: s for s in stored["skus"].values()}
    assert by_seller_sku["SHIRT-M"]["price"] == {"amount": "24.00", "currency": "USD"}
    assert by_seller_sku["SHIRT-M"]["inventory"][0]["quantity"] == 25
    answered = {s["seller_sku"]: s["id"] for s in event["payload"]["skus"]}
    assert answered == {seller_sku: s["id"] for seller_sku, s in by_seller_sku.items()}


async def test_prod6_price_and_stock_updates_reach_tiktok_under_its_sku_ids(box, commands):
    """PROD-6: after create, a price and a stock change go out keyed by the SKU ids
    TikTok answered with, and TikTok's stored price and stock change."""
    event = await create(commands, category="601226")
    product_id = event["payload"]["product_id"]
    sku_ids = {s["seller_sku"]: s["id"] for s in event["payload"]["skus"]}
    base = {"shop": story.SHOP, "listing": LISTING, "tiktok_product_id": product_id}
    await commands.update_price(
        command(
            "update_price",
            {
                **base,
                "prices": [
                    {"id": sku_ids["SHIRT-M"], "seller_sku": "SHIRT-M", "amount": "19.50"},
                ],
            },
        )
    )
    await commands.update_inventory(
        command(
            "update_inventory",
            {
                **base,
                "inventory": [{"id": sku_ids["SHIRT-S"], "seller_sku": "SHIRT-S", "quantity": 0}],
            },
        )
    )
    view = await call(box, "GET", f"/product/202309/products/{product_id}")
    skus = {s["seller_sku"]: s for s in view["skus"]}
    assert skus["SHIRT-M"]["price"]["sale_price"] == "19.50"
    assert skus["SHIRT-S"]["inventory"][0]["quantity"] == 0
    assert skus["SHIRT-S"]["price"]["sale_price"] == "24.00", "the other SKU keeps its price"


async def test_an_edit_keeps_tiktoks_sku_ids_and_category(box, commands):
    """An edit names the SKU ids TikTok has, so they stay; with no category asked
    for it keeps the product's current one rather than asking again."""
    created = await create(commands)
    product_id = created["payload"]["product_id"]
    box.tiktok.catalog.change_category(product_id, "601226")
    request = listing_request(shoplazza_product("Linen beach shirt, new cut"), ATTRIBUTES, None)
    [event] = await commands.edit_listing(
        command(
            "edit_listing",
            {
                "shop": story.SHOP,
                "listing": LISTING,
                "tiktok_product_id": product_id,
                "product": request,
            },
        )
    )
    assert event["type"] == "listing.submitted"
    assert event["payload"]["skus"] == created["payload"]["skus"]
    assert box.tiktok.products[product_id]["category_id"] == "601226"


async def test_a_refused_create_becomes_a_merchant_readable_failure(box, commands):
    """A non-leaf category is TikTok's refusal 12052007; the merchant reads a sentence."""
    event = await create(commands, category="601152")
    assert event["type"] == "listing.submit_failed"
    assert event["payload"]["code"] == codes.CATEGORY_NOT_LEAF
    assert "leaf" in event["payload"]["message"] and ":" not in event["payload"]["message"]
    [reason] = event["payload"]["audit_failed_reasons"]
    assert reason["position"] == "category_id" and reason["suggestions"]


async def test_a_gif_only_product_is_refused_at_upload(box, commands):
    product = shoplazza_product()
    product["images"] = [{"src": "https://img.myshoplaza.com/2001/spin.gif"}]
    request = listing_request(product, ATTRIBUTES, "601226")
    request["image_srcs"] = ["https://img.myshoplaza.com/2001/spin.gif"]  # past the local check
    [event] = await commands.create_listing(
        command("create_listing", {"shop": story.SHOP, "listing": LISTING, "product": request})
    )
    assert event["type"] == "listing.submit_failed"
    assert event["payload"]["code"] == codes.IMAGE_FORMAT_UNSUPPORTED


async def test_a_price_for_a_sku_tiktok_does_not_know_parks_the_command(box, commands):
    created = await create(commands, category="601226")
    with pytest.raises(CommandFailed, match="not known to TikTok"):
        await commands.update_price(
            command(
                "update_price",
                {
                    "shop": story.SHOP,
                    "listing": LISTING,
                    "tiktok_product_id": created["payload"]["product_id"],
                    "prices": [{"id": "1", "seller_sku": "SHIRT-M", "amount": "9.00"}],
                },
            )
        )


async def test_status_of_a_product_tiktok_deleted_reads_deleted(box, commands):
    [event] = await commands.fetch_product_status(
        command(
            "fetch_product_status",
            {"shop": story.SHOP, "listing": LISTING, "tiktok_product_id": "123"},
        )
    )
    assert event["payload"]["status"] == "DELETED"


async def test_deactivate_then_activate(box, commands):
    created = await create(commands, category="601226")
    product_id = created["payload"]["product_id"]
    payload = {"shop": story.SHOP, "listing": LISTING, "tiktok_product_id": product_id}
    await commands.deactivate_listing(command("deactivate_listing", payload))
    assert box.tiktok.products[product_id]["status"] == "SELLER_DEACTIVATED"
    await commands.activate_listing(command("activate_listing", payload))
    assert box.tiktok.products[product_id]["status"] == "ACTIVATE"


# ------------------------------------------------------------------ the sandbox refuses


async def test_the_sandbox_accepts_a_well_formed_product(box):
    answer = await call(box, "POST", "/product/202309/products", await valid_body(box))
    assert answer["product_id"] in box.tiktok.products and answer["skus"][0]["id"]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"category_id": None}, codes.CATEGORY_NOT_LEAF),
        ({"category_id": "605248"}, codes.CATEGORY_NOT_LEAF),  # Fashion Accessories: not a leaf
        (
            {"main_images": [{"uri": "https://img.myshoplaza.com/2001/0.jpg"}]},
            codes.IMAGE_URI_UNKNOWN,
        ),
        ({"main_images": []}, codes.MAIN_IMAGES_COUNT),
        ({"package_weight": None}, codes.PACKAGE_WEIGHT_INVALID),
        ({"package_weight": {"value": "0.3", "unit": "kg"}}, codes.PACKAGE_WEIGHT_INVALID),
        (
            {"package_dimensions": {"length": "30", "width": "0", "height": "1", "unit": "INCH"}},
            codes.PACKAGE_DIMENSIONS_INVALID,
        ),
        (
            {"package_dimensions": {"length": "30", "width": "3", "height": "1", "unit": "INCH"}},
            codes.PACKAGE_DIMENSIONS_INVALID,  # inches with kilograms
        ),
        ({"title": "x" * 256}, codes.TITLE_LENGTH),
    ],
)
async def test_the_sandbox_refuses_what_tiktok_refuses(box, changes, code):
    body = await valid_body(box)
    body.update(changes)
    body = {k: v for k, v in body.items() if v is not None}
    assert await refused_code(box, "POST", "/product/202309/products", body) == code


@pytest.mark.parametrize(
    ("sku_changes", "code"),
    [
        ({"price": {"amount": "7600.01", "currency": "USD"}}, codes.PRICE_OUT_OF_RANGE),
        ({"price": {"amount": "0.00", "currency": "USD"}}, codes.PRICE_OUT_OF_RANGE),
        (
            {
                "sales_attributes": [
                    {"name": n, "value_name": "x"} for n in ("Size", "Color", "Fit", "Length")
                ]
            },
            codes.TOO_MANY_SALES_ATTRIBUTES,
        ),
    ],
)
async def test_the_sandbox_refuses_skus_tiktok_refuses(box, sku_changes, code):
    body = await valid_body(box)
    body["skus"][0].update(sku_changes)
    assert await refused_code(box, "POST", "/product/202309/products", body) == code


async def test_the_sandbox_refuses_stock_out_of_range_and_gif_uploads(box):
    body = await valid_body(box)
    body["skus"][0]["inventory"][0]["quantity"] = 100_000
    assert await refused_code(box, "POST", "/product/202309/products", body) == (
        codes.STOCK_OUT_OF_RANGE
    )
    with pytest.raises(TikTokError) as caught:
        await upload(box, make_image("gif", 800, 800), "spin.gif")
    assert caught.value.code == codes.IMAGE_FORMAT_UNSUPPORTED
    with pytest.raises(TikTokError) as caught:
        await upload(box, make_image("png", 120, 120), "thumb.png")
    assert caught.value.code == codes.IMAGE_SIZE_OUT_OF_RANGE


async def test_the_sandbox_refuses_sku_ids_that_are_not_the_products(box):
    created = await call(box, "POST", "/product/202309/products", await valid_body(box))
    other = await call(
        box, "POST", "/product/202309/products", await valid_body(box, title="Other hat")
    )
    path = f"/product/202309/products/{created['product_id']}/prices/update"
    foreign = other["skus"][0]["id"]
    body = {"skus": [{"id": foreign, "price": {"amount": "10.00", "currency": "USD"}}]}
    assert await refused_code(box, "POST", path, body) == codes.SKU_NOT_IN_PRODUCT
    path = f"/product/202309/products/{created['product_id']}/inventory/update"
    body = {"skus": [{"id": foreign, "inventory": [{"quantity": 3}]}]}
    assert await refused_code(box, "POST", path, body) == codes.SKU_NOT_IN_PRODUCT


async def test_the_sandbox_refuses_unknown_product_ids(box):
    body = {"product_ids": ["1729382256910270999"]}
    assert await refused_code(box, "POST", "/product/202309/products/deactivate", body) == (
        PRODUCT_NOT_FOUND
    )
    assert await refused_code(box, "POST", "/product/202309/products/activate", body) == (
        PRODUCT_NOT_FOUND
    )


async def test_the_old_adapter_shapes_are_refused(box):
    """What the adapter sent before: outside image URLs, no leaf category, a bare
    price string, and price/stock keyed by seller SKU instead of TikTok's SKU id."""
    old_create = {
        "title": "Straw sun hat",
        "description": "",
        "main_images": [{"uri": "https://img.myshoplaza.com/1002/0.jpg"}],
        "category_id": None,
        "package_dimensions": {"length": 20, "width": 15, "height": 5, "unit": "CENTIMETER"},
        "skus": [{"seller_sku": "SKU-1002", "price": "24.00", "inventory": 25}],
        "size_chart": None,
        "certifications": [],
    }
    assert await refused_code(box, "POST", "/product/202309/products", old_create) in (
        codes.CATEGORY_NOT_LEAF,
        codes.IMAGE_URI_UNKNOWN,
    )
    created = await call(box, "POST", "/product/202309/products", await valid_body(box))
    old_price = {
        "skus": [{"seller_sku_variant": "HAT-1", "price": {"amount": "1", "currency": "USD"}}]
    }
    path = f"/product/202309/products/{created['product_id']}/prices/update"
    assert await refused_code(box, "POST", path, old_price) == codes.SKU_NOT_IN_PRODUCT


async def test_plat7_a_retried_create_whose_answer_was_lost_finds_the_product(box, commands):
    """PLAT-7: TikTok created the product but its answer never arrived; the retry
    (a second attempt of the same command) looks the product up by its seller SKUs
    instead of creating a second one, and answers with TikTok's ids."""
    request = listing_request(shoplazza_product(), ATTRIBUTES, "601226")
    payload = {"shop": story.SHOP, "listing": LISTING, "product": request}
    first = OutboxCommand(90, LISTING, "create_listing", payload, "lost-answer", 0)
    [created] = await commands.create_listing(first)
    box.tiktok.catalog.idempotency.clear()  # TikTok does not promise to honour the key
    retried = OutboxCommand(90, LISTING, "create_listing", payload, "lost-answer", 1)
    [again] = await commands.create_listing(retried)
    assert len(box.tiktok.products) == 1
    assert again["payload"]["product_id"] == created["payload"]["product_id"]
    assert again["payload"]["skus"] == created["payload"]["skus"]
    assert again["payload"]["category_id"] == "601226"


async def test_a_refused_call_is_not_a_rejected_product(box, commands):
    """A bad signature is the call's fault, not the product's: the command is
    parked for an operator and the product is not shown Rejected; a network
    failure is retried later."""
    from engine.outbox import RetryLater

    box.service.tiktok.app_secret = "wrong"
    with pytest.raises(CommandFailed, match="106001"):
        await create(commands, category="601226")
    box.service.tiktok.app_secret = story.APP_SECRET
    box.service.tiktok.base_url = "http://127.0.0.1:9"  # nothing listens there
    box.service.tiktok.attempts, box.service.tiktok.base_delay = 1, 0.0
    with pytest.raises(RetryLater):
        await create(commands, category="601226")


async def test_the_sandbox_refuses_more_than_nine_images(box):
    uris = [await upload(box, make_image("png", 600, 600), f"{n}.png") for n in range(10)]
    body = await valid_body(box, main_images=[{"uri": uri} for uri in uris])
    assert await refused_code(box, "POST", "/product/202309/products", body) == (
        codes.MAIN_IMAGES_COUNT
    )
    body["main_images"] = body["main_images"][:9]
    assert (await call(box, "POST", "/product/202309/products", body))["product_id"]
