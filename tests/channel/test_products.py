"""Product sync: PROD-1 to PROD-9."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from statecharts.product_checks import check_product, images_to_send
from tests.channel.harness import SHOP, listing, product


async def test_prod1_products_and_collections_are_added_and_adding_again_changes_nothing(connected):
    """PROD-1: products and collections are added and adding again changes nothing."""
    channel = connected
    await channel.add_products(product("p1"), product("p2"))
    await channel.send(
        "products.add_collection",
        SHOP,
        {"collection_id": "summer", "products": [product("p2"), product("p3")]},
    )
    keys = {e.key for e in await channel.engine.entities(chart="product_listing")}
    assert keys == {listing("p1"), listing("p2"), listing("p3")}
    assert len(channel.tiktok.called("create_listing")) == 3, "p2 was sent once"
    before = await channel.engine.entity(listing("p1"))
    await channel.add_products(product("p1", title="Changed"))
    assert await channel.engine.entity(listing("p1")) == before
    [again] = [h for h in await channel.engine.history(listing("p1")) if h["outcome"] == "ignored"]
    assert again["reason"] == "the product is already in sync; adding it again changes nothing"


async def test_prod2_pending_sync_in_review_approved(connected):
    """PROD-2: pending sync in review approved."""
    channel = connected
    await channel.send(
        "listing.added", listing("p1"), {"shop": SHOP, "product": product("p1")}, settle=False
    )
    assert await channel.state(listing("p1")) == "pending_sync"
    await channel.settle()
    assert await channel.state(listing("p1")) == "in_review"
    await channel.approve("p1")
    assert await channel.state(listing("p1")) == "approved"


async def test_prod2_prod5_tiktok_rejection_shows_its_audit_reasons(connected):
    """PROD-2, PROD-5: tiktok rejection shows its audit reasons."""
    channel = connected
    await channel.add_products(product("p1"))
    reasons = [{"position": "main_images", "reasons": ["watermark"], "suggestions": ["remove it"]}]
    await channel.review("p1", "FAILED", reasons)
    data = await channel.data(listing("p1"))
    assert await channel.state(listing("p1")) == "rejected"
    assert data["failure_reasons"] == [
        {
            "position": "main_images",
            "reasons": ["watermark"],
            "suggestions": ["remove it"],
            "source": "tiktok",
        }
    ]


async def test_prod3_missing_required_fields_reject_with_reasons_and_no_api_call(connected):
    """PROD-3: missing required fields reject with reasons and no api call."""
    channel = connected
    bare = product("p1", weight=None, dimensions=False, variants=2)
    for variant in bare["variants"]:
        variant["option1"] = None
    bare["category_rules"] = {"size_chart_required": True, "certifications_required": ["CPC"]}
    await channel.add_products(bare)
    assert await channel.state(listing("p1")) == "rejected"
    positions = [r["position"] for r in (await channel.data(listing("p1")))["failure_reasons"]]
    assert positions == [
        "package_weight",
        "sales_attributes",
        "package_dimensions",
        "size_chart",
        "certifications",
    ]
    assert not [c for c in channel.tiktok.calls if c[1].get("listing") == listing("p1")], (
        "no API call is made for the product"
    )


async def test_prod4_gifs_are_skipped_and_only_the_first_nine_images_are_sent(connected):
    """PROD-4: gifs are skipped and only the first nine images are sent."""
    channel = connected
    await channel.add_products(product("p1", images=12, gif_at=(1, 4)))
    [request] = channel.tiktok.called("create_listing")
    expected = [f"https://cdn.example/p1/{i}.jpg" for i in (0, 2, 3, 5, 6, 7, 8, 9, 10)]
    assert request["product"]["image_srcs"] == expected


async def test_prod4_a_product_left_with_no_image_is_rejected_with_that_reason(connected):
    """PROD-4: a product left with no image is rejected with that reason."""
    channel = connected
    await channel.add_products(product("p1", images=2, gif_at=(0, 1)))
    [reason] = (await channel.data(listing("p1")))["failure_reasons"]
    assert (
        reason["position"] == "main_images"
        and "no image left after skipping GIFs" in reason["reasons"][0]
    )
    assert not channel.tiktok.called("create_listing")


@given(
    st.lists(
        st.tuples(
            st.text("abc", min_size=1, max_size=3),
            st.sampled_from(["jpg", "png", "webp", "gif", "GIF", "gif?v=2"]),
        ),
        max_size=20,
    )
)
def test_prod4_property_images_sent_are_the_first_nine_non_gifs_in_order(images):
    """PROD-4 for any list of images: GIFs never sent, order kept, at most 9."""
    srcs = [f"https://cdn.example/{name}{i}.{ext}" for i, (name, ext) in enumerate(images)]
    sent = images_to_send([{"src": s} for s in srcs])
    non_gif = [s for s in srcs if ".gif" not in s.lower()]
    assert sent == non_gif[:9]
    failures = check_product({**product("x"), "images": [{"src": s} for s in srcs]})
    assert any(f["position"] == "main_images" for f in failures) == (not non_gif)


async def test_prod5_editing_a_rejected_product_sends_it_again(connected):
    """PROD-5: editing a rejected product sends it again."""
    channel = connected
    await channel.add_products(product("p1", weight=None))
    assert await channel.state(listing("p1")) == "rejected"
    await channel.send(
        "listing.product_updated", listing("p1"), {"product": product("p1")}, settle=False
    )
    assert await channel.state(listing("p1")) == "pending_sync"
    await channel.settle()
    assert await channel.state(listing("p1")) == "in_review"
    assert (await channel.data(listing("p1")))["failure_reasons"] == []


async def test_prod5_resubmitting_a_rejected_product_sends_it_again(connected):
    """PROD-5: resubmitting a rejected product sends it again."""
    channel = connected
    await channel.add_products(product("p1"))
    await channel.review("p1", "FAILED", [{"position": "title", "reasons": ["banned word"]}])
    await channel.send("listing.resubmit", listing("p1"))
    assert await channel.state(listing("p1")) == "in_review"
    assert len(channel.tiktok.called("create_listing")) == 1
    assert len(channel.tiktok.called("edit_listing")) == 1, "the existing listing is resubmitted"


async def test_prod6_a_burst_of_price_and_stock_changes_sends_only_the_latest(connected):
    """PROD-6: a burst of price and stock changes sends only the latest."""
    channel = connected
    await channel.add_products(product("p1"))
    await channel.approve("p1")
    for price, stock in [("21.00", 9), ("22.00", 8), ("23.00", 7), ("24.50", 3)]:
        await channel.send(
            "listing.product_updated",
            listing("p1"),
            {"product": product("p1", price=price, stock=stock)},
        )
        await channel.advance(1)
    assert not channel.tiktok.called("update_price"), "nothing sent inside the window"
    await channel.advance(10)
    sku_id = (await channel.data(listing("p1")))["tiktok_skus"]["SKU-p1-0"]
    assert channel.tiktok.called("update_price") == [
        {
            "shop": SHOP,
            "listing": listing("p1"),
            "tiktok_product_id": await channel.tiktok_product_id("p1"),
            "prices": [
                {"id": sku_id, "seller_sku": "SKU-p1-0", "amount": "24.50", "currency": "USD"}
            ],
        }
    ]
    assert [c["inventory"] for c in channel.tiktok.called("update_inventory")] == [
        [{"id": sku_id, "seller_sku": "SKU-p1-0", "quantity": 3}]
    ]
    assert await channel.state(listing("p1")) == "approved", "no new review for price/stock"


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 9999), st.integers(0, 500)), min_size=1, max_size=8))
def test_prod6_property_any_burst_sends_exactly_its_last_values(updates):
    """PROD-6: whatever the burst, one price and one stock update with its last values."""
    import asyncio
    import tempfile
    from pathlib import Path

    from engine import FakeClock
    from tests.channel.harness import Channel

    async def run() -> None:
        with tempfile.TemporaryDirectory() as folder:
            channel = await Channel.open(Path(folder) / "c.db", FakeClock())
            try:
                await channel.connect()
                await channel.add_products(product("p1", price="10.00", stock=5))
                await channel.approve("p1")
                for cents, stock in updates:
                    await channel.send(
                        "listing.product_updated",
                        listing("p1"),
                        {"product": product("p1", price=f"{cents / 100:.2f}", stock=stock)},
                    )
                await channel.advance(60)
                last_price, last_stock = updates[-1]
                prices = channel.tiktok.called("update_price")
                stocks = channel.tiktok.called("update_inventory")
                assert len(prices) <= 1 and len(stocks) <= 1
                expected_price = f"{last_price / 100:.2f}"
                if expected_price != "10.00":
                    [sent] = prices[0]["prices"]
                    assert (sent["seller_sku"], sent["amount"]) == ("SKU-p1-0", expected_price)
                if last_stock != 5:
                    [sent] = stocks[0]["inventory"]
                    assert (sent["seller_sku"], sent["quantity"]) == ("SKU-p1-0", last_stock)
            finally:
                await channel.engine.stop()

    asyncio.run(run())


async def test_prod7_a_category_set_on_tiktok_is_never_overwritten(connected):
    """PROD-7: a category set on tiktok is never overwritten."""
    channel = connected
    await channel.add_products(product("p1"))
    assert (await channel.data(listing("p1")))["category"]["category_id"] == "600001"
    await channel.approve("p1")
    await channel.send("listing.category_changed", listing("p1"), {"category_id": "700123"})
    await channel.send(
        "listing.product_updated", listing("p1"), {"product": product("p1", title="New title")}
    )
    [edit] = channel.tiktok.called("edit_listing")
    assert edit["product"]["category_id"] == "700123" and edit["keep_category"] is True
    await channel.approve("p1")
    assert (await channel.data(listing("p1")))["category"]["category_id"] == "700123"


async def test_prod8_deleted_or_unpublished_products_are_deactivated_on_tiktok(connected):
    """PROD-8: deleted or unpublished products are deactivated on tiktok."""
    channel = connected
    await channel.add_products(product("p1"), product("p2"))
    await channel.approve("p1")
    await channel.approve("p2")
    await channel.send("listing.product_removed", listing("p1"), {"reason": "deleted"})
    await channel.send(
        "listing.product_updated", listing("p2"), {"product": product("p2", published=False)}
    )
    assert await channel.state(listing("p1")) == await channel.state(listing("p2")) == "deactivated"
    deactivated = [c["listing"] for c in channel.tiktok.called("deactivate_listing")]
    assert deactivated == [listing("p1"), listing("p2")]


async def test_prod9_a_product_still_in_review_after_the_timeout_is_polled(connected):
    """PROD-9: a product still in review after the timeout is polled."""
    channel = connected
    await channel.add_products(product("p1"))
    await channel.advance(2 * 3600 - 1)
    assert not channel.tiktok.called("fetch_product_status")
    await channel.advance(1)
    assert len(channel.tiktok.called("fetch_product_status")) == 1
    await channel.advance(3600)
    assert len(channel.tiktok.called("fetch_product_status")) == 2, "polled again while pending"
    channel.tiktok.review[listing("p1")] = "ACTIVATE"
    await channel.advance(3600)
    assert await channel.state(listing("p1")) == "approved"
    await channel.advance(10 * 3600)
    assert len(channel.tiktok.called("fetch_product_status")) == 3, "no polling once approved"


async def test_prod9_the_review_timeout_is_configurable(db_path, clock):
    """PROD-9: the review timeout is configurable."""
    from tests.channel.harness import Channel

    channel = await Channel.open(db_path, clock, review_timeout="30m")
    try:
        await channel.connect()
        await channel.add_products(product("p1"))
        await channel.advance(30 * 60)
        assert len(channel.tiktok.called("fetch_product_status")) == 1
    finally:
        await channel.engine.stop()


async def test_plat6_tiktok_ids_sent_as_json_integers_are_kept_exact(connected):
    """PLAT-6: a product id TikTok sends as a JSON number (576486316948490000) is
    stored digit for digit, never through a float."""
    channel = connected
    await channel.add_products(product("p1"))
    raw = (
        b'{"event_id": "w1", "type": "listing.submitted", "source": "tiktok", '
        b'"entity": "listing:demo-store:p1", "payload": {"product_id": 576486316948490001}}'
    )
    await channel.engine.publish_raw(raw, "tiktok")
    # float(576486316948490001) is 576486316948490000.0: exactness shows in the last digit.
    assert await channel.tiktok_product_id("p1") == "576486316948490001"
    bad = await channel.engine.publish_raw(
        b'{"event_id": "w2", "type": "listing.submitted", "source": "tiktok", '
        b'"entity": "listing:demo-store:p2", "payload": {"product_id": 5.764863169484900e17}}',
        "tiktok",
    )
    assert bad.outcome == "dead_letter" and "float" in bad.reason


async def test_plat7_a_retried_create_listing_carries_the_same_idempotency_key(connected):
    """PLAT-7: the create-product command's key is stable, so a retried call never
    creates a second listing; a resubmission gets a new one."""
    channel = connected
    await channel.add_products(product("p1", weight=None))
    await channel.send("listing.resubmit", listing("p1"))
    rows = await channel.engine.store.fetchall(
        "SELECT command, idempotency_key FROM outbox WHERE entity = ? ORDER BY id", (listing("p1"),)
    )
    assert rows == [], "rejected locally: nothing to send"
    await channel.send("listing.product_updated", listing("p1"), {"product": product("p1")})
    await channel.review("p1", "FAILED")
    await channel.send("listing.resubmit", listing("p1"))
    rows = await channel.engine.store.fetchall(
        "SELECT command, idempotency_key FROM outbox WHERE entity = ? ORDER BY id", (listing("p1"),)
    )
    assert rows == [
        ("create_listing", "listing:demo-store:p1:submit:1"),
        ("edit_listing", "listing:demo-store:p1:submit:2"),
    ]
