"""Product sync: PROD-1 to PROD-12."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.charts.configuration import is_active
from statecharts.product_checks import check_product, images_to_send
from tests.channel.harness import PACKAGE, SHOP, listing, product

if TYPE_CHECKING:
    from engine import ChartSet


async def test_prod1_products_and_collections_are_added_and_adding_again_changes_nothing(connected):
    """PROD-1: products and collections are added and adding again changes nothing."""
    channel = connected
    await channel.add_products(product("p1"), product("p2"))
    await channel.add_collection("summer", product("p2"), product("p3"))
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
    await channel.set_attributes("p1", package_dimensions=PACKAGE)
    await channel.send(
        "listing.added", listing("p1"), {"shop": SHOP, "product": product("p1")}, settle=False
    )
    assert await channel.state(listing("p1")) == "pending_sync.sending"
    await channel.settle()
    assert await channel.state(listing("p1")) == "in_review.reviewing"
    await channel.approve("p1")
    assert await channel.state(listing("p1")) == "approved.selling"


async def test_prod2_prod5_tiktok_rejection_shows_its_audit_reasons(connected):
    """PROD-2, PROD-5: tiktok rejection shows its audit reasons."""
    channel = connected
    await channel.add_products(product("p1"))
    reasons = [{"position": "main_images", "reasons": ["watermark"], "suggestions": ["remove it"]}]
    await channel.review("p1", "FAILED", reasons)
    data = await channel.data(listing("p1"))
    assert await channel.state(listing("p1")) == "rejected.by_tiktok"
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
    bare = product("p1", weight=None, variants=2)
    for variant in bare["variants"]:
        variant["option1"] = None
    await channel.add_products(bare, package=None)
    assert await channel.state(listing("p1")) == "rejected.failing_checks"
    positions = [r["position"] for r in (await channel.data(listing("p1")))["failure_reasons"]]
    assert positions == ["package_weight", "sales_attributes", "package_dimensions"]
    assert not [c for c in channel.tiktok.calls if c[1].get("listing") == listing("p1")], (
        "no API call is made for the product"
    )


def test_prod3_a_category_asking_for_a_size_chart_and_certificates_is_checked():
    """PROD-3: a size chart and certificates where the category requires them,
    supplied through the merchant's TikTok attributes."""
    rules = {"size_chart_required": True, "certifications_required": ["CPC", "FCC"]}
    attributes = {"package_dimensions": PACKAGE, "certifications": [{"id": "CPC", "images": []}]}
    failures = check_product(product("p1"), attributes, rules)
    assert [f["position"] for f in failures] == ["size_chart", "certifications"]
    assert "(FCC)" in failures[1]["reasons"][0], "only the missing certificate is named"
    attributes |= {"size_chart": {"image_uri": "tos-maliva-i-o3syd03w52-us/abc"}}
    attributes["certifications"].append({"id": "FCC", "images": ["tos-x"]})
    assert check_product(product("p1"), attributes, rules) == []


async def test_prod3_failure_reasons_read_as_sentences_for_the_merchant(connected):
    """PROD-3, PROD-5: a failure reason tells the merchant what to do and where,
    not a field path."""
    channel = connected
    await channel.add_products(product("p1", weight=None), package=None)
    reasons = [r["reasons"][0] for r in (await channel.data(listing("p1")))["failure_reasons"]]
    assert reasons == [
        "Add the package weight in Shoplazza (variant SKU-p1-0 has none).",
        "Add the package size (length, width and height) for TikTok Shop: "
        "`channelsync products set <product> --dimensions 20x15x5cm`.",
    ]
    for reason in reasons:
        assert reason[0].isupper() and reason.endswith(".") and ":" not in reason.split()[0]


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
    assert reason["position"] == "main_images"
    assert "TikTok Shop does not accept GIF" in reason["reasons"][0]
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
    attributes = {"package_dimensions": PACKAGE}
    failures = check_product({**product("x"), "images": [{"src": s} for s in srcs]}, attributes)
    assert any(f["position"] == "main_images" for f in failures) == (not non_gif)


async def test_prod5_editing_a_rejected_product_sends_it_again(connected):
    """PROD-5: editing a rejected product sends it again."""
    channel = connected
    await channel.add_products(product("p1", weight=None))
    assert await channel.state(listing("p1")) == "rejected.failing_checks"
    await channel.send(
        "listing.product_updated", listing("p1"), {"product": product("p1")}, settle=False
    )
    assert await channel.state(listing("p1")) == "pending_sync.sending"
    await channel.settle()
    assert await channel.state(listing("p1")) == "in_review.reviewing"
    assert (await channel.data(listing("p1")))["failure_reasons"] == []


async def test_prod5_resubmitting_a_rejected_product_sends_it_again(connected):
    """PROD-5: resubmitting a rejected product sends it again."""
    channel = connected
    await channel.add_products(product("p1"))
    await channel.review("p1", "FAILED", [{"position": "title", "reasons": ["banned word"]}])
    await channel.send("listing.resubmit", listing("p1"))
    assert await channel.state(listing("p1")) == "in_review.reviewing"
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
    assert await channel.state(listing("p1")) == "approved.selling", "no new review for price/stock"


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
    assert await channel.state(listing("p1")) == "approved.selling"
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


# ---------------------------------------------------------------- PROD-10: edits never erase


async def approved_listing(channel, pid: str = "p1", **shape) -> str:
    await channel.add_products(product(pid, **shape))
    await channel.approve(pid)
    assert await channel.state(listing(pid)) == "approved.selling"
    return listing(pid)


async def test_prod10_a_products_update_keeps_the_package_size_and_its_price_reaches_tiktok(
    connected,
):
    """PROD-10: a Shoplazza products/update (which has no package size) leaves
    an Approved product Approved, and its new price reaches TikTok. Before, the
    update replaced the product and it turned Rejected ("size is missing")."""
    channel = connected
    key = await approved_listing(channel)
    await channel.send("listing.product_updated", key, {"product": product("p1", price="24.00")})
    await channel.advance(60)
    data = await channel.data(key)
    assert await channel.state(key) == "approved.selling"
    assert data["failure_reasons"] == [] and "edit_failure" not in data
    assert data["attributes"] == {"package_dimensions": PACKAGE}
    assert "24.00" in str(channel.tiktok.called("update_price")), "the new price went out"
    assert not channel.tiktok.called("edit_listing"), "a price change needs no new review"


async def test_prod10_a_partial_products_update_is_merged_into_the_stored_product(connected):
    """PROD-10: fields a webhook leaves out keep their stored values; a variant
    sent with its stock only keeps its sku, price and weight."""
    channel = connected
    key = await approved_listing(channel)
    partial = {"id": "p1", "variants": [{"id": "p1-v0", "inventory_quantity": 3}]}
    await channel.send("listing.product_updated", key, {"product": partial})
    await channel.advance(60)
    stored = (await channel.data(key))["product"]
    assert stored["title"] == "Product p1" and len(stored["images"]) == 2
    assert stored["variants"][0] | {"inventory_quantity": 10} == product("p1")["variants"][0]
    assert stored["variants"][0]["inventory_quantity"] == 3
    assert await channel.state(key) == "approved.selling"
    assert "3" in str(channel.tiktok.called("update_inventory"))


async def test_prod10_only_shoplazza_fields_are_kept_in_the_product(connected):
    """PROD-10: a field that is not Shoplazza's (a channel-made package size in
    an old payload) never enters data.product; the merchant's attributes hold it."""
    channel = connected
    key = await approved_listing(channel)
    odd = {**product("p1"), "package_dimensions": {"length": 1, "width": 1, "height": 1}}
    await channel.send("listing.product_updated", key, {"product": odd})
    data = await channel.data(key)
    assert "package_dimensions" not in data["product"]
    assert data["attributes"]["package_dimensions"] == PACKAGE


async def test_prod10_an_older_products_update_arriving_late_is_not_applied(connected):
    """PROD-10: webhooks can arrive out of order; Shoplazza's updated_at says
    which version is newer, and an older one never overwrites a newer one."""
    channel = connected
    key = await approved_listing(channel)
    newer = product("p1", price="30.00", updated_at="2026-05-01T10:00:05+08:00")
    older = product("p1", price="25.00", updated_at="2026-05-01T10:00:01+08:00")
    await channel.send("listing.product_updated", key, {"product": newer})
    stale = await channel.send("listing.product_updated", key, {"product": older})
    assert stale.outcome == "ignored" and "older version" in stale.reason
    await channel.advance(60)
    assert (await channel.data(key))["product"]["variants"][0]["price"] == "30.00"
    assert "25.00" not in str(channel.tiktok.called("update_price"))


async def test_prod10_attributes_set_through_the_library_are_validated_with_clear_errors(
    connected,
):
    """PROD-10: `set_product_attributes` refuses bad values, naming each
    problem, and records nothing."""
    from statecharts.merchant import InvalidAttributes, set_product_attributes

    channel = connected
    key = await approved_listing(channel)
    before = await channel.engine.entity(key)
    with pytest.raises(InvalidAttributes) as refused:
        await set_product_attributes(
            channel.engine,
            key,
            category_id="shoes",
            package_dimensions={"length": 20, "width": 0, "height": 2.5, "unit": "MM"},
        )
    assert refused.value.problems == [
        "category: give TikTok's leaf category id, digits only (e.g. 600001)",
        "package size: the width must be a whole number from 1 to 100000",
        "package size: the height must be a whole number from 1 to 100000",
        "package size: the unit is CENTIMETER or INCH",
    ]
    assert await channel.engine.entity(key) == before
    with pytest.raises(InvalidAttributes, match="not a product listing key"):
        await set_product_attributes(channel.engine, "order:1", category_id="600001")
    with pytest.raises(InvalidAttributes, match="at least one attribute"):
        await set_product_attributes(channel.engine, key)


async def test_prod10_attributes_survive_every_webhook_and_a_null_clears_one(connected):
    """PROD-10: what the merchant set stays through Shoplazza updates; an
    attribute given as None is cleared, the others stay."""
    from statecharts.merchant import set_product_attributes

    channel = connected
    key = await approved_listing(channel)
    chart = {"image_uri": "tos-maliva-i-o3syd03w52-us/chart"}
    receipt = await set_product_attributes(
        channel.engine, key, category_id="600001", size_chart=chart
    )
    assert receipt.outcome == "transitioned"
    await channel.settle()
    for price in ("20.00", "21.00"):
        await channel.send("listing.product_updated", key, {"product": product("p1", price=price)})
    await set_product_attributes(channel.engine, key, size_chart=None)
    await channel.settle()
    assert (await channel.data(key))["attributes"] == {
        "package_dimensions": PACKAGE,
        "category_id": "600001",
    }


async def test_prod10_attributes_set_on_a_rejected_product_whose_checks_now_pass_resubmit_it(
    connected,
):
    """PROD-10, PROD-5: the package size was missing; once the merchant gives
    it, the product is sent."""
    channel = connected
    await channel.add_products(product("p1"), package=None)
    assert await channel.state(listing("p1")) == "rejected.failing_checks"
    assert not channel.tiktok.called("create_listing")
    await channel.set_attributes("p1", package_dimensions=PACKAGE)
    assert await channel.state(listing("p1")) == "in_review.reviewing"
    assert len(channel.tiktok.called("create_listing")) == 1


async def test_prod10_attributes_set_on_an_approved_product_go_out_as_an_edit(connected):
    """PROD-10: a new package size for a live product is an edit TikTok reviews."""
    channel = connected
    key = await approved_listing(channel)
    bigger = {**PACKAGE, "length": 30}
    await channel.set_attributes("p1", package_dimensions=bigger)
    assert await channel.state(key) == "in_review.reviewing"
    [edit] = channel.tiktok.called("edit_listing")
    assert edit["tiktok_product_id"] == await channel.tiktok_product_id("p1")
    await channel.set_attributes("p1", package_dimensions=bigger)
    assert len(channel.tiktok.called("edit_listing")) == 1, "the same values again change nothing"


# ---------------------------------------------------------------- PROD-11: ways out


async def test_prod11_a_product_republished_in_shoplazza_is_reactivated_on_tiktok(connected):
    """PROD-11: deactivated (unpublished in Shoplazza), then published again:
    TikTok is asked to activate the same product, and it shows Approved again."""
    channel = connected
    key = await approved_listing(channel)
    tiktok_id = await channel.tiktok_product_id("p1")
    await channel.send(
        "listing.product_updated", key, {"product": {"id": "p1", "published": False}}
    )
    assert await channel.state(key) == "deactivated"
    await channel.send("listing.product_updated", key, {"product": {"id": "p1", "published": True}})
    assert channel.tiktok.called("activate_listing") == [
        {"shop": SHOP, "listing": key, "tiktok_product_id": tiktok_id}
    ]
    assert await channel.state(key) == "in_review.reviewing"
    assert not channel.tiktok.called("create_listing")[1:], "no second product on TikTok"
    await channel.advance(2 * 3600)  # TikTok's status, by the review poll
    assert await channel.state(key) == "approved.selling"


async def test_prod8_a_create_answered_after_the_product_was_unpublished_is_taken_down(
    connected,
):
    """PROD-8, PROD-11: the merchant unpublished the product while its create was
    in flight; the product TikTok made is deactivated too, and republishing
    reactivates that same product."""
    channel = connected
    key = listing("p1")
    await channel.set_attributes("p1", package_dimensions=PACKAGE)
    await channel.send("listing.added", key, {"shop": SHOP, "product": product("p1")}, settle=False)
    await channel.send(
        "listing.product_updated", key, {"product": {"id": "p1", "published": False}}, settle=False
    )
    assert await channel.state(key) == "deactivated"
    await channel.settle()
    tiktok_id = await channel.tiktok_product_id("p1")
    assert channel.tiktok.called("deactivate_listing") == [
        {"shop": SHOP, "listing": key, "tiktok_product_id": tiktok_id}
    ]
    assert await channel.state(key) == "deactivated"
    await channel.send("listing.product_updated", key, {"product": {"id": "p1", "published": True}})
    assert [c["tiktok_product_id"] for c in channel.tiktok.called("activate_listing")] == [
        tiktok_id
    ]


async def test_prod11_a_republished_product_tiktok_never_had_is_created(connected):
    """PROD-11: a product deactivated before TikTok had it is created when
    republished, not activated."""
    channel = connected
    await channel.add_products(product("p1", weight=None))
    key = listing("p1")
    await channel.send(
        "listing.product_updated", key, {"product": {"id": "p1", "published": False}}
    )
    assert await channel.state(key) == "deactivated"
    await channel.send("listing.product_updated", key, {"product": product("p1")})
    assert not channel.tiktok.called("activate_listing")
    assert len(channel.tiktok.called("create_listing")) == 1
    assert await channel.state(key) == "in_review.reviewing"


async def test_prod11_a_reactivation_waits_while_the_authorization_is_inactive(connected):
    """PROD-11, CONN-4: the activation is held like any product sync while the
    authorization is inactive, and goes out once the shop is authorized again."""
    channel = connected
    key = await approved_listing(channel)
    await channel.send("listing.product_updated", key, {"product": product("p1", published=False)})
    await channel.send("connection.deauthorized", SHOP, {"message": "seller deauthorized"})
    await channel.send("listing.product_updated", key, {"product": product("p1")})
    assert not channel.tiktok.called("activate_listing")
    held = await channel.engine.store.fetchall(
        "SELECT status, hold_key FROM outbox WHERE command = 'activate_listing'"
    )
    assert held == [("held", "authorization:shop:demo-store")]
    await channel.authorize()
    assert len(channel.tiktok.called("activate_listing")) == 1


async def test_prod11_a_rejected_product_follows_tiktoks_later_review_results(connected):
    """PROD-11: after a rejection, TikTok's later PENDING shows In Review and
    its ACTIVATE shows Approved."""
    channel = connected
    await channel.add_products(product("p1"))
    key = listing("p1")
    await channel.review("p1", "FAILED", [{"position": "title", "reasons": ["banned word"]}])
    assert await channel.state(key) == "rejected.by_tiktok"
    await channel.review("p1", "PENDING")
    assert await channel.state(key) == "in_review.reviewing"
    await channel.review("p1", "FAILED")
    await channel.review("p1", "ACTIVATE")
    assert await channel.state(key) == "approved.selling"
    assert (await channel.data(key))["failure_reasons"] == []


async def test_prod11_a_tiktok_rejected_product_is_not_sent_again_on_a_price_or_stock_change(
    connected,
):
    """PROD-11: TikTok rejected the product; a stock-only or price-only change
    sends nothing, a new title (something TikTok reviews) sends it again."""
    channel = connected
    await channel.add_products(product("p1"))
    key = listing("p1")
    await channel.review("p1", "FAILED", [{"position": "title", "reasons": ["banned word"]}])
    await channel.send("listing.product_updated", key, {"product": product("p1", stock=3)})
    await channel.send(
        "listing.product_updated", key, {"product": product("p1", stock=3, price="9.00")}
    )
    assert await channel.state(key) == "rejected.by_tiktok"
    assert not channel.tiktok.called("edit_listing")
    assert (await channel.data(key))["failure_reasons"][0]["reasons"] == ["banned word"]
    renamed = product("p1", title="Linen shirt", stock=3, price="9.00")
    await channel.send("listing.product_updated", key, {"product": renamed})
    assert await channel.state(key) == "in_review.reviewing"
    [edit] = channel.tiktok.called("edit_listing")
    assert edit["product"]["title"] == "Linen shirt"


# A compound state's stored configuration once entered: its initial substate.
CONFIGURATION_OF = {"platform_deactivated": "platform_deactivated.off_sale"}


@pytest.mark.parametrize(
    ("status", "state", "label"),
    [
        ("SELLER_DEACTIVATED", "seller_deactivated", "Deactivated on TikTok"),
        ("PLATFORM_DEACTIVATED", "platform_deactivated", "Deactivated by TikTok"),
        ("FREEZE", "frozen", "Frozen"),
        ("DELETED", "deleted_on_tiktok", "Deleted on TikTok"),
    ],
)
async def test_prod11_tiktoks_own_statuses_show_as_what_they_are(connected, status, state, label):
    """PROD-11: TikTok's deactivation, freeze and deletion each show as what
    they are, with a reason the merchant can act on; none shows Rejected."""
    from statecharts.views import product_sync_list

    channel = connected
    key = await approved_listing(channel)
    await channel.review("p1", status)
    assert await channel.state(key) == CONFIGURATION_OF.get(state, state)
    chart = channel.engine.charts.by_name["product_listing"]
    assert chart.spec.states[state].label == label
    [row] = await product_sync_list(channel.engine.store)
    assert row.status == state
    [reason] = (await channel.data(key))["failure_reasons"]
    assert reason["source"] == "tiktok" and reason["reasons"][0].endswith(".")


async def test_prod11_deactivated_on_tiktok_is_reactivated_by_the_merchant(connected):
    """PROD-11: a product deactivated in TikTok Seller Center sells again when
    the merchant reactivates it from the channel."""
    from statecharts.merchant import reactivate_product

    channel = connected
    key = await approved_listing(channel)
    await channel.review("p1", "SELLER_DEACTIVATED")
    refused = await reactivate_product(channel.engine, listing("p2"))
    assert refused.outcome != "transitioned"
    await reactivate_product(channel.engine, key)
    await channel.settle()
    assert len(channel.tiktok.called("activate_listing")) == 1
    assert await channel.state(key) == "in_review.reviewing"
    await channel.approve("p1")
    assert await channel.state(key) == "approved.selling"


async def test_prod11_deactivated_by_tiktok_is_sent_again_once_fixed(connected):
    """PROD-11: TikTok took the product off sale; a fix of something TikTok
    reviews sends it again, a stock change does not."""
    channel = connected
    key = await approved_listing(channel)
    await channel.review("p1", "PLATFORM_DEACTIVATED")
    await channel.send("listing.product_updated", key, {"product": product("p1", stock=2)})
    assert await channel.state(key) == "platform_deactivated.off_sale"
    await channel.send("listing.product_updated", key, {"product": product("p1", title="Fixed")})
    assert await channel.state(key) == "in_review.reviewing"
    assert len(channel.tiktok.called("edit_listing")) == 1


async def test_prod11_frozen_follows_tiktoks_decision(connected):
    """PROD-11: a frozen product's way out is TikTok's (an appeal); the channel
    follows TikTok's next status."""
    from statecharts.merchant import refresh_product_status

    channel = connected
    key = await approved_listing(channel)
    await channel.review("p1", "FREEZE")
    channel.tiktok.review[key] = "ACTIVATE"
    await refresh_product_status(channel.engine, key)
    await channel.settle()
    assert await channel.state(key) == "approved.selling"


async def test_prod11_deleted_on_tiktok_is_created_again_when_resubmitted(connected):
    """PROD-11: the TikTok product is gone; resubmitting creates a new one."""
    from statecharts.merchant import resubmit_product

    channel = connected
    key = await approved_listing(channel)
    old_id = await channel.tiktok_product_id("p1")
    await channel.review("p1", "DELETED")
    await resubmit_product(channel.engine, key)
    await channel.settle()
    creates = channel.tiktok.called("create_listing")
    assert len(creates) == 2 and creates[1]["tiktok_product_id"] is None
    assert await channel.tiktok_product_id("p1") != old_id
    assert await channel.state(key) == "in_review.reviewing"


async def test_prod11_an_older_tiktok_status_does_not_undo_a_newer_one(connected):
    """PROD-11: statuses follow TikTok's update_time; an older FAILED arriving
    after a newer ACTIVATE leaves the product Approved, an equal time applies."""
    channel = connected
    await channel.add_products(product("p1"))
    key = listing("p1")
    await channel.send("listing.review_result", key, {"status": "ACTIVATE", "update_time": 200})
    late = await channel.send(
        "listing.review_result", key, {"status": "FAILED", "update_time": 100}
    )
    assert late.outcome == "ignored" and await channel.state(key) == "approved.selling"
    await channel.send("listing.review_result", key, {"status": "FREEZE", "update_time": 200})
    assert await channel.state(key) == "frozen"


# ------------------------------------------------------------ PROD-12: a live product stays live


async def test_prod12_a_live_products_failing_edit_stays_approved_with_the_reason_shown(connected):
    """PROD-12: an edit that fails the local checks is not sent; the product
    keeps selling (Approved), the edit's failure is its reason, price and stock
    still sync; a later edit that passes clears the reason."""
    from statecharts.views import product_sync_list

    channel = connected
    key = await approved_listing(channel)
    await channel.send(
        "listing.product_updated", key, {"product": product("p1", weight=0, price="22.00")}
    )
    await channel.advance(60)
    data = await channel.data(key)
    assert await channel.state(key) == "approved.edit_held"
    assert [r["reasons"][0] for r in data["edit_failure"]] == [
        "Add the package weight in Shoplazza (variant SKU-p1-0 has none)."
    ]
    assert not channel.tiktok.called("edit_listing")
    assert "22.00" in str(channel.tiktok.called("update_price"))
    [row] = await product_sync_list(channel.engine.store)
    assert row.status_label == "Approved"
    assert row.reason == "Add the package weight in Shoplazza (variant SKU-p1-0 has none)."
    await channel.send("listing.product_updated", key, {"product": product("p1", price="22.00")})
    assert "edit_failure" not in await channel.data(key)
    assert await channel.state(key) == "approved.selling", "the held edit is over"
    assert not channel.tiktok.called("edit_listing"), "back to what TikTok has: nothing to send"


async def test_prod12_a_held_edit_with_a_price_tiktok_refuses_sends_no_price(connected):
    """PROD-12: the edit is held because its price is out of TikTok's range;
    its stock still syncs, its price is not sent (TikTok would refuse it)."""
    channel = connected
    key = await approved_listing(channel)
    await channel.send(
        "listing.product_updated", key, {"product": product("p1", price="8000", stock=4)}
    )
    await channel.advance(60)
    data = await channel.data(key)
    assert await channel.state(key) == "approved.edit_held"
    assert "between 0.01 and 7600 USD (it is 8000)" in data["edit_failure"][0]["reasons"][0]
    assert "8000" not in str(channel.tiktok.called("update_price"))
    assert "4" in str(channel.tiktok.called("update_inventory"))


async def test_prod12_an_edit_tiktok_refuses_leaves_a_live_product_approved(connected):
    """PROD-12: TikTok refused the edit of a product it sells: the product is
    still live, so it shows Approved with TikTok's refusal as the reason."""
    channel = connected
    key = await approved_listing(channel)
    await channel.send("listing.product_updated", key, {"product": product("p1", title="New")})
    assert await channel.state(key) == "in_review.reviewing"
    await channel.send(
        "listing.submit_failed", key, {"code": 12019001, "message": "title has a banned word"}
    )
    data = await channel.data(key)
    assert await channel.state(key) == "approved.edit_held"
    assert "banned word" in data["edit_failure"][0]["reasons"][0]


# ------------------------------------------------------------ PROD-10, PROD-12 for all inputs

_DIMS = st.builds(
    lambda length, unit: {"length": length, "width": 3, "height": 2, "unit": unit},
    st.sampled_from([1, 20, 100_000]),
    st.just("CENTIMETER"),
)
_ATTRIBUTE_SET = st.fixed_dictionaries(
    {},
    optional={
        "package_dimensions": st.one_of(st.none(), _DIMS),
        "category_id": st.one_of(st.none(), st.sampled_from(["600001", "9" * 20])),
        "size_chart": st.one_of(st.none(), st.just({"image_uri": "tos-us/chart"})),
        "certifications": st.one_of(st.none(), st.just([{"id": "CPC", "images": ["tos-c"]}])),
    },
)
_VARIANT_CHANGE = st.fixed_dictionaries(
    {"id": st.sampled_from(["p1-v0", "p1-v1"])},
    optional={
        "price": st.sampled_from(["19.90", "0.01", "7600", "8000", None]),
        "inventory_quantity": st.integers(0, 99_999),
        "weight": st.sampled_from([0, 0.5, 1.2, None]),
        "sku": st.sampled_from(["SKU-p1-0", "SKU-p1-1"]),
    },
)
_SHOPLAZZA_UPDATE = st.fixed_dictionaries(
    {"id": st.just("p1")},
    optional={
        "title": st.sampled_from(["Product p1", "Linen shirt", "", None]),
        "description": st.sampled_from(["<p>Nice</p>", "<p>New</p>"]),
        "published": st.sampled_from([True, True, True, False, None]),
        "images": st.sampled_from([[], [{"src": "https://cdn.example/p1/0.jpg"}]]),
        "variants": st.lists(_VARIANT_CHANGE, min_size=1, max_size=2, unique_by=lambda v: v["id"]),
        # Equal and reordered times, and ones without a zone (not comparable).
        "updated_at": st.sampled_from(
            [
                "2026-05-01T10:00:00+08:00",
                "2026-05-01T02:00:00Z",
                "2026-05-01T10:00:07+08:00",
                "2026-05-01T10:00:07",
                None,
            ]
        ),
    },
)
_MOVE = st.one_of(
    st.tuples(st.just("listing.product_updated"), _SHOPLAZZA_UPDATE.map(lambda u: {"product": u})),
    st.tuples(st.just("listing.attributes_set"), _ATTRIBUTE_SET),
    st.tuples(
        st.just("listing.review_result"),
        st.fixed_dictionaries(
            {"status": st.sampled_from(["ACTIVATE", "ACTIVATE", "PENDING"])},
            optional={"update_time": st.integers(1_700_000_000, 1_700_000_003)},
        ),
    ),
    st.tuples(st.just("listing.submitted"), st.just({"product_id": "576486316948490000"})),
    st.tuples(st.just("listing.quick_update_due"), st.just({"timer": "t", "due_at": 1.0})),
)


@functools.cache
def _channel_charts() -> ChartSet:
    # Loaded once for every example: loading and checking the charts costs far
    # more than the example's steps, and the step never changes a ChartSet.
    from engine import ChartSet
    from statecharts import chart_package

    return ChartSet.load([chart_package()])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_MOVE, st.booleans()), max_size=25))
def test_prod10_prod12_property_webhooks_never_lose_attributes_nor_reject_a_live_product(moves):
    """PROD-10, PROD-12 for any sequence of Shoplazza product webhooks (partial
    fields, redelivered, out of order) interleaved with the merchant's attribute
    sets: the attributes are exactly what the merchant set, the product holds
    Shoplazza's fields only, and while TikTok's newest word is ACTIVATE (and the
    merchant has not taken the product off sale since) it never shows Rejected."""
    from engine.step import new_entity, step
    from statecharts.shoplazza_product import PRODUCT_FIELDS

    charts = _channel_charts()
    chart = charts.by_name["product_listing"]
    entity = new_entity(chart, listing("p1"))
    count = 0

    def apply(kind: str, payload: dict) -> None:
        nonlocal entity, count
        count += 1
        event = charts.event_types.make(
            kind,
            entity.key,
            payload,
            event_id=f"e{count}",
            source="test",
            received_at=1_700_000_000.0 + count,
        )
        entity = step(chart, entity, event, charts.settings).entity

    merchant = {"package_dimensions": PACKAGE}
    apply("listing.attributes_set", dict(merchant))
    apply("listing.added", {"shop": SHOP, "product": product("p1", variants=2)})
    apply("listing.submitted", {"product_id": "576486316948490000"})
    apply("listing.review_result", {"status": "ACTIVATE", "update_time": 1_700_000_000})
    tiktok_says, said_at = "ACTIVATE", 1_700_000_000
    # Unpublishing in Shoplazza takes the product off sale on TikTok (PROD-8):
    # from then on it is not live until TikTok says ACTIVATE again for a
    # published product.
    off_sale = False
    for (kind, payload), redelivered in moves:
        for _ in range(2 if redelivered else 1):
            apply(kind, payload)
        published = entity.data["product"].get("published", True)
        off_sale = off_sale or published is False
        if kind == "listing.attributes_set":
            for key, value in payload.items():
                if value is None:
                    merchant.pop(key, None)
                else:
                    merchant[key] = value
        if kind == "listing.review_result":
            when = payload.get("update_time")
            if when is None or when >= said_at:
                tiktok_says, said_at = payload["status"], when if when is not None else said_at
                off_sale = off_sale and not (tiktok_says == "ACTIVATE" and published)
        assert entity.data.get("attributes", {}) == merchant
        assert set(entity.data["product"]) <= set(PRODUCT_FIELDS)
        if tiktok_says == "ACTIVATE" and not off_sale:
            assert not is_active(entity.state, "rejected"), entity.data.get("failure_reasons")
        # A held edit is a state (chart version 2), its reasons the data of it.
        held = entity.state.endswith(".edit_held")
        assert bool(entity.data.get("edit_failure")) == held, (entity.state, entity.data)


# ------------------------------------------------------------ Shoplazza-shaped products


async def test_prod10_the_shoplazza_sandbox_has_shoplazzas_product_fields_only():
    """PROD-10: the sandbox's products look like Shoplazza's (no package size,
    size chart or certificates), an edit of a field Shoplazza lacks is refused,
    and an edit sends products/update with the whole product and a new updated_at."""
    import json
    from datetime import datetime

    from adapters.sandbox.shoplazza import ShoplazzaSandbox
    from adapters.shoplazza.webhooks import translate
    from engine import FakeClock

    clock = FakeClock(start=1_777_600_000)
    sandbox = ShoplazzaSandbox("demo-store", "secret", "token", clock, webhook_url="http://x")
    try:
        for shaped in sandbox.products.values():
            assert set(shaped) <= {
                "id",
                "title",
                "description",
                "published",
                "images",
                "variants",
                "collection_ids",
                "updated_at",
            }
        with pytest.raises(ValueError, match="not a Shoplazza product field: package_dimensions"):
            sandbox.product_action("1001", "update", package_dimensions={"length": 1})
        before = sandbox.products["1001"]["updated_at"]
        clock.advance(5)
        sandbox.product_action("1001", "update", price="26.00", published=False)
        [(body, headers)] = sandbox.webhooks._queue
        assert headers["X-Shoplazza-Topic"] == "products/update"
        sent = json.loads(body)["product"]
        assert sent["variants"][0]["price"] == "26.00" and sent["published"] is False
        assert datetime.fromisoformat(sent["updated_at"]) > datetime.fromisoformat(before)
        [event] = translate("products/update", "demo-store.myshoplaza.com", body)
        assert event["entity"] == "listing:demo-store:1001"
        assert event["payload"]["product"]["title"] == "Linen beach shirt"
    finally:
        await sandbox.webhooks.aclose()


def test_prod10_a_products_webhook_carries_shoplazzas_fields_only():
    """PROD-10: whatever else a products/update body holds never reaches the
    listing's product; a body without a product id is refused, not guessed."""
    import json

    from adapters.ids import InvalidId
    from adapters.shoplazza.webhooks import ShoplazzaWebhookRejected, translate

    stamp = "2026-05-01T10:00:00+08:00"
    variant = {"id": "1001-1", "sku": "H", "barcode": "x"}
    body = {
        "product": {
            "id": 1001,
            "title": "Hat",
            "vendor": "x",
            "size_chart": "no",
            "updated_at": stamp,
            "variants": [variant],
        }
    }
    [event] = translate("products/update", "demo-store.myshoplaza.com", json.dumps(body).encode())
    assert event["entity"] == "listing:demo-store:1001"
    assert event["payload"] == {
        "product": {
            "id": "1001",
            "title": "Hat",
            "updated_at": stamp,
            "variants": [{"id": "1001-1", "sku": "H"}],
        }
    }
    for bad in ({"product": {"title": "no id"}}, {"product": ["x"]}, {"id": 1.5}):
        with pytest.raises((ShoplazzaWebhookRejected, InvalidId)):
            translate("products/update", "demo-store.myshoplaza.com", json.dumps(bad).encode())


@given(
    st.lists(_SHOPLAZZA_UPDATE, min_size=1, max_size=6),
    st.dictionaries(st.sampled_from(["vendor", "handle", "package_dimensions"]), st.just("x")),
)
def test_prod10_property_the_merge_keeps_what_an_update_leaves_out(updates, foreign):
    """PROD-10 for any partial updates: a field an update leaves out keeps its
    value, a redelivered update changes nothing more, and only Shoplazza's
    fields are ever kept."""
    from statecharts.shoplazza_product import PRODUCT_FIELDS, merge_product, shoplazza_fields

    stored = shoplazza_fields(product("p1", variants=2))
    for update in updates:
        merged = merge_product(stored, {**update, **foreign})
        assert merge_product(merged, update) == merged, "a redelivery changes nothing"
        assert set(merged) <= set(PRODUCT_FIELDS)
        for key in PRODUCT_FIELDS:
            if update.get(key) is None:
                assert merged.get(key) == stored.get(key)
        if update.get("variants") is not None:
            before = {v["id"]: v for v in stored["variants"]}
            for sent, kept in zip(update["variants"], merged["variants"], strict=True):
                for field, value in kept.items():
                    expected = sent.get(field)
                    if expected is None:
                        expected = before.get(sent["id"], {}).get(field)
                    assert value == expected
        stored = merged
