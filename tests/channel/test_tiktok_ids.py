"""TikTok's own ids stored and used: SKU ids for price and stock (PROD-6) and
the category a merchant set on TikTok, from a real type-18 delivery (PROD-7)."""

from __future__ import annotations

import json

from adapters.tiktok_shop.webhooks import translate
from tests.channel.harness import TIKTOK_SHOP_ID, listing, product


class Directory:
    """The read model's answer: which listing has this TikTok product."""

    def __init__(self, products: dict[str, str]) -> None:
        self.products = products

    async def shop_key(self, tiktok_shop_id: str) -> str | None:
        return None

    async def listing_key(self, tiktok_product_id: str) -> str | None:
        return self.products.get(tiktok_product_id)


def category_change(product_id: str, current: str, previous: str, at: int) -> bytes:
    """Webhook type 18 as TikTok sends it."""
    return json.dumps(
        {
            "type": 18,
            "tts_notification_id": f"n-{current}-{at}",
            "shop_id": TIKTOK_SHOP_ID,
            "timestamp": at,
            "data": {
                "product_id": product_id,
                "previous_category_id": previous,
                "current_category_id": current,
                "update_time": at,
            },
        }
    ).encode()


async def deliver(channel, body: bytes, directory: Directory) -> None:
    for event in await translate(body, directory):
        made = channel.engine.make_event(
            event["type"],
            event["entity"],
            event["payload"],
            event_id=event["event_id"],
            source=event["source"],
        )
        await channel.engine.publish(made)
    await channel.settle()


async def test_prod7_a_category_changed_on_tiktok_reaches_the_listing_and_is_kept(connected):
    """PROD-7: TikTok's type-18 webhook names the new category current_category_id;
    the listing keeps it, and the next edit sends it instead of TikTok's first pick."""
    channel = connected
    await channel.add_products(product("p1"))
    await channel.approve("p1")
    product_id = await channel.tiktok_product_id("p1")
    directory = Directory({product_id: listing("p1")})
    await deliver(
        channel, category_change(product_id, "601226", "600001", 1_700_000_100), directory
    )
    category = (await channel.data(listing("p1")))["category"]
    assert (category["category_id"], category["locked"]) == ("601226", True)
    assert category["previous_category_id"] == "600001"
    await channel.send(
        "listing.product_updated", listing("p1"), {"product": product("p1", title="New title")}
    )
    [edit] = channel.tiktok.called("edit_listing")
    assert edit["product"]["category_id"] == "601226"


async def test_prod7_a_late_older_category_change_does_not_undo_a_newer_one(connected):
    """PROD-7: deliveries come in any order; the newest change is the one kept."""
    channel = connected
    await channel.add_products(product("p1"))
    await channel.approve("p1")
    product_id = await channel.tiktok_product_id("p1")
    directory = Directory({product_id: listing("p1")})
    await deliver(channel, category_change(product_id, "601303", "601226", 200), directory)
    await deliver(channel, category_change(product_id, "601226", "600001", 100), directory)
    assert (await channel.data(listing("p1")))["category"]["category_id"] == "601303"


async def test_prod6_price_and_stock_go_out_under_tiktoks_sku_ids(connected):
    """PROD-6: the create answer's SKU ids are kept, and a later price or stock
    change names them (TikTok refuses a price keyed by the seller SKU alone)."""
    channel = connected
    await channel.add_products(product("p1", variants=2, price="10.00", stock=4))
    await channel.approve("p1")
    tiktok_skus = (await channel.data(listing("p1")))["tiktok_skus"]
    assert set(tiktok_skus) == {"SKU-p1-0", "SKU-p1-1"}
    changed = product("p1", variants=2, price="10.00", stock=4)
    changed["variants"][1]["price"] = "12.00"
    changed["variants"][0]["inventory_quantity"] = 1
    await channel.send("listing.product_updated", listing("p1"), {"product": changed})
    await channel.advance(60)
    [price] = channel.tiktok.called("update_price")
    assert price["prices"] == [
        {
            "id": tiktok_skus["SKU-p1-1"],
            "seller_sku": "SKU-p1-1",
            "amount": "12.00",
            "currency": "USD",
        }
    ]
    [stock] = channel.tiktok.called("update_inventory")
    assert stock["inventory"] == [
        {"id": tiktok_skus["SKU-p1-0"], "seller_sku": "SKU-p1-0", "quantity": 1}
    ]
