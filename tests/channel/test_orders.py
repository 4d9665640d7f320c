"""Orders: ORD-1 to ORD-8, and the fulfillment push: LOGI-1 to LOGI-5."""

from __future__ import annotations

import pytest

from statecharts.views import order_list
from tests.channel.harness import SHOP, listing, product

USPS = "7117858858072016686"


@pytest.fixture
async def shop(connected):
    """Connected, USPS mapped, products p1 and p2 approved on TikTok."""
    channel = connected
    await channel.send(
        "logistics.map_carrier",
        SHOP,
        {"tracking_company_code": "usps", "shipping_provider_id": USPS},
    )
    await channel.add_products(product("p1"), product("p2"))
    await channel.approve("p1")
    await channel.approve("p2")
    channel.pids = [await channel.tiktok_product_id("p1"), await channel.tiktok_product_id("p2")]
    return channel


async def paid_order(channel, order_id: str, status: str = "AWAITING_SHIPMENT", **kwargs):
    channel.tiktok_order(order_id, product_ids=(channel.pids[0],), **kwargs)
    await channel.order_status(order_id, "UNPAID", 100)
    if status != "UNPAID":
        await channel.order_status(order_id, status, 200)


async def test_ord1_ord2_orders_are_created_with_the_tiktok_shop_channel(shop):
    """ORD-1, ORD-2: orders are created with the tiktok shop channel."""
    shop.clock.advance(500)
    await paid_order(shop, "7001")
    [created] = shop.shoplazza.called("create_shoplazza_order")
    assert created["source_name"] == "TikTok Shop" and "TikTok Shop" in created["tags"]
    data = await shop.data("order:7001")
    assert data["sync"]["status"] == "synced"
    assert data["shoplazza_created_at"] == shop.clock.now(), "Shoplazza's own creation time"
    assert data["detail"]["tiktok_create_time"] == 1_699_990_000, "TikTok's kept beside it"
    assert [r.order_id for r in await order_list(shop.engine.store, channel="TikTok Shop")] == [
        "7001"
    ]
    assert await order_list(shop.engine.store, channel="Online Store") == []


async def test_ord3_an_order_with_an_unsynced_product_is_not_created(shop):
    """ORD-3: an order with an unsynced product is not created."""
    shop.tiktok_order("7002", product_ids=(shop.pids[0], "999999"))
    await shop.order_status("7002", "AWAITING_SHIPMENT", 100)
    sync = (await shop.data("order:7002"))["sync"]
    assert sync["status"] == "failed" and sync["reason"] == "products not synced: 999999"
    assert not shop.shoplazza.called("create_shoplazza_order")
    [row] = await order_list(shop.engine.store, sync_status="failed")
    assert row.sync_reason == "products not synced: 999999"


async def test_ord4_a_deleted_product_fails_the_order_which_is_retried_once_fixed(shop):
    """ORD-4: a deleted product fails the order which is retried once fixed."""
    await shop.send("listing.product_removed", listing("p1"), {"reason": "deleted"})
    await paid_order(shop, "7003")
    sync = (await shop.data("order:7003"))["sync"]
    assert sync["status"] == "failed"
    assert sync["reason"] == "products deleted or unpublished in Shoplazza: Product p1"
    await shop.advance(15 * 60)
    assert (await shop.data("order:7003"))["sync"]["failures"] == 2, "retried, still failing"
    assert not shop.shoplazza.called("create_shoplazza_order")
    # The merchant restores the product: it is resubmitted under the same TikTok id.
    await shop.add_products(product("p1"))
    assert await shop.tiktok_product_id("p1") == shop.pids[0]
    await shop.approve("p1")
    await shop.advance(15 * 60)
    assert (await shop.data("order:7003"))["sync"]["status"] == "synced"
    assert len(shop.shoplazza.called("create_shoplazza_order")) == 1


async def test_ord4_an_unpublished_product_recovers_and_the_retry_syncs_the_order(shop):
    """ORD-4: an unpublished product recovers and the retry syncs the order."""
    await shop.send(
        "listing.product_updated", listing("p2"), {"product": product("p2", published=False)}
    )
    shop.tiktok_order("7004", product_ids=(shop.pids[1],))
    await shop.order_status("7004", "AWAITING_SHIPMENT", 100)
    assert (await shop.data("order:7004"))["sync"]["status"] == "failed"
    # Republished and re-added: synced again under the same TikTok product.
    await shop.add_products(product("p2"))
    await shop.approve("p2")
    await shop.advance(15 * 60)
    assert (await shop.data("order:7004"))["sync"]["status"] == "synced"


async def test_ord5_address_is_not_fetched_or_stored_while_on_hold(shop):
    """ORD-5: address is not fetched or stored while on hold."""
    shop.tiktok_order("7005", product_ids=(shop.pids[0],))
    shop.tiktok.orders["7005"]["leak_address"] = True  # a misbehaving API answer
    await shop.order_status("7005", "UNPAID", 100)
    await shop.order_status("7005", "ON_HOLD", 150)
    fetches = shop.tiktok.called("fetch_order_detail")
    assert fetches and not any(f["include_recipient"] for f in fetches), "not fetched"
    data = await shop.data("order:7005")
    assert "recipient_address" not in data, "not stored even when the API sent it"
    assert "Ada" not in str(data)
    [created] = shop.shoplazza.called("create_shoplazza_order")
    assert "recipient_address" not in created, "not shown in Shoplazza"

    await shop.order_status("7005", "AWAITING_SHIPMENT", 200)
    assert shop.tiktok.called("fetch_order_detail")[-1]["include_recipient"] is True
    assert (await shop.data("order:7005"))["recipient_address"]["name"] == "Ada Lovelace"
    [update] = shop.shoplazza.called("update_shoplazza_address")
    assert update["recipient_address"]["name"] == "Ada Lovelace"


async def test_ord6_tiktok_payment_shipping_and_cancel_reach_shoplazza_returns_do_not(shop):
    """ORD-6: tiktok payment shipping and cancel reach shoplazza returns do not."""
    await paid_order(shop, "7006", status="UNPAID")
    assert [c["financial_status"] for c in shop.shoplazza.called("create_shoplazza_order")] == [
        "waiting"
    ]
    await shop.order_status("7006", "AWAITING_SHIPMENT", 200)
    assert [c["financial_status"] for c in shop.shoplazza.called("update_shoplazza_payment")] == [
        "paid"
    ]
    await shop.order_status("7006", "IN_TRANSIT", 300)
    assert [
        c["fulfillment_status"] for c in shop.shoplazza.called("update_shoplazza_fulfillment")
    ] == ["shipped"]
    calls = len(shop.shoplazza.calls)
    await shop.send(
        "order.tiktok_return_changed",
        "order:7006",
        {
            "return_id": "r1",
            "return_type": "REFUND",
            "return_status": "RETURN_OR_REFUND_REQUEST_COMPLETE",
        },
    )
    assert len(shop.shoplazza.calls) == calls, "a refund changes nothing in Shoplazza"

    await paid_order(shop, "7007")
    await shop.order_status("7007", "CANCEL", 300)
    assert await shop.state("order:7007") == "cancelled"
    [cancel] = shop.shoplazza.called("cancel_shoplazza_order")
    assert cancel["order"] == "order:7007"


async def test_ord7_shoplazza_payment_cancel_and_refund_change_nothing_on_tiktok(shop):
    """ORD-7: shoplazza payment cancel and refund change nothing on tiktok."""
    await paid_order(shop, "7008")
    calls = len(shop.tiktok.calls)
    outbox = await shop.engine.store.count("outbox")
    for change in (
        {"financial_status": "partially_paid"},
        {"status": "cancelled"},
        {"financial_status": "refunded"},
        {"fulfillment_status": "returned"},
    ):
        receipt = await shop.send("order.shoplazza_changed", "order:7008", change)
        assert receipt.outcome == "transitioned" and receipt.commands == ()
    assert len(shop.tiktok.calls) == calls
    assert await shop.engine.store.count("outbox") == outbox, "no command toward TikTok"
    assert await shop.state("order:7008") == "awaiting_shipment"


async def test_ord8_the_lifecycle_follows_tiktok_and_stale_updates_never_move_back(shop):
    """ORD-8: the lifecycle follows tiktok and stale updates never move back."""
    await paid_order(shop, "7009", status="ON_HOLD")
    for status, at in (
        ("AWAITING_SHIPMENT", 300),
        ("AWAITING_COLLECTION", 400),
        ("IN_TRANSIT", 500),
        ("DELIVERED", 600),
    ):
        await shop.order_status("7009", status, at)
    stale = await shop.order_status("7009", "IN_TRANSIT", 550)
    assert stale.outcome == "ignored" and stale.reason.startswith("stale")
    await shop.order_status("7009", "COMPLETED", 700)
    late_cancel = await shop.order_status("7009", "CANCELLED", 800)
    assert late_cancel.outcome == "ignored"
    assert await shop.state("order:7009") == "completed"


async def test_ord8_cancelling_is_possible_before_delivery_only(shop):
    """ORD-8: cancelling is possible before delivery only."""
    await paid_order(shop, "7010", status="DELIVERED")
    refused = await shop.order_status("7010", "CANCELLED", 900)
    assert refused.outcome == "ignored" and await shop.state("order:7010") == "delivered"


async def test_ord8_numeric_status_codes_are_understood(shop):
    """ORD-8: numeric status codes are understood."""
    shop.tiktok_order("7011", product_ids=(shop.pids[0],))
    await shop.order_status("7011", "111", 100)
    assert await shop.state("order:7011") == "awaiting_shipment"


# ------------------------------------------------------------------ logistics


async def test_logi1_fbt_skips_mapping_and_never_pushes_fulfillment(channel):
    """LOGI-1: fbt skips mapping and never pushes fulfillment."""
    await channel.connect(model="FBT")
    refused = await channel.send(
        "logistics.map_carrier",
        SHOP,
        {"tracking_company_code": "usps", "shipping_provider_id": USPS},
    )
    assert refused.outcome == "ignored" and "Fulfilled by Seller shops only" in refused.reason
    await channel.add_products(product("p1"))
    await channel.approve("p1")
    channel.pids = [await channel.tiktok_product_id("p1")]
    await paid_order(channel, "7101", fbt=True)
    await channel.send(
        "order.shoplazza_fulfilled",
        "order:7101",
        {"tracking_number": "9400", "tracking_company_code": "usps"},
    )
    assert not channel.tiktok.called("push_shipping")
    assert (await channel.data("order:7101"))["fulfillment"]["status"] == "not_applicable"


async def test_logi2_a_provider_tiktok_did_not_list_is_refused(connected):
    """LOGI-2: a provider tiktok did not list is refused."""
    receipt = await connected.send(
        "logistics.map_carrier",
        SHOP,
        {"tracking_company_code": "dhl", "shipping_provider_id": "123"},
    )
    assert (
        receipt.outcome == "ignored"
        and "123 is not in this shop's TikTok shipping provider list" in receipt.reason
    )
    ok = await connected.send(
        "logistics.map_carrier",
        SHOP,
        {"tracking_company_code": "usps", "shipping_provider_id": USPS},
    )
    assert ok.outcome == "transitioned"
    assert (await connected.data(SHOP))["logistics"]["carrier_mapping"] == {"usps": USPS}


async def test_logi3_tracking_goes_out_only_with_a_mapped_carrier_and_is_retried_when_mapped(shop):
    """LOGI-3: tracking goes out only with a mapped carrier and is retried when mapped."""
    await paid_order(shop, "7102")
    await shop.send(
        "order.shoplazza_fulfilled",
        "order:7102",
        {"tracking_number": "1Z999", "tracking_company_code": "ups"},
    )
    fulfillment = (await shop.data("order:7102"))["fulfillment"]
    assert fulfillment["status"] == "failed" and fulfillment["reason"] == "carrier not mapped (ups)"
    assert not shop.tiktok.called("push_shipping")
    [row] = await order_list(shop.engine.store)
    assert row.fulfillment_reason == "carrier not mapped (ups)", "shown on the order"

    await shop.send(
        "logistics.map_carrier",
        SHOP,
        {"tracking_company_code": "ups", "shipping_provider_id": "7117859084333745966"},
    )
    [push] = shop.tiktok.called("push_shipping")
    assert (
        push["tracking_number"] == "1Z999" and push["shipping_provider_id"] == "7117859084333745966"
    )
    assert (await shop.data("order:7102"))["fulfillment"]["status"] == "pushed"


async def test_logi4_shipping_info_waits_while_on_hold(shop):
    """LOGI-4: shipping info waits while on hold."""
    await paid_order(shop, "7103", status="ON_HOLD")
    await shop.send(
        "order.shoplazza_fulfilled",
        "order:7103",
        {"tracking_number": "9400111", "tracking_company_code": "usps"},
    )
    assert (await shop.data("order:7103"))["fulfillment"]["status"] == "waiting"
    assert not shop.tiktok.called("push_shipping")
    await shop.order_status("7103", "AWAITING_SHIPMENT", 300)
    [push] = shop.tiktok.called("push_shipping")
    assert push["shipping_provider_id"] == USPS
    assert (await shop.data("order:7103"))["fulfillment"]["status"] == "pushed"


async def test_logi4_tiktoks_on_hold_refusal_puts_the_push_back_to_wait(shop):
    """LOGI-4: tiktoks on hold refusal puts the push back to wait."""
    await paid_order(shop, "7104")
    shop.tiktok.orders["7104"]["status"] = "ON_HOLD"  # TikTok still holds it
    await shop.send(
        "order.shoplazza_fulfilled",
        "order:7104",
        {"tracking_number": "9400", "tracking_company_code": "usps"},
    )
    assert (await shop.data("order:7104"))["fulfillment"]["status"] == "waiting"


async def test_logi5_tracking_corrections_only_within_72_hours(shop):
    """LOGI-5: tracking corrections only within 72 hours."""
    await paid_order(shop, "7105")
    await shop.send(
        "order.shoplazza_fulfilled",
        "order:7105",
        {"tracking_number": "A1", "tracking_company_code": "usps"},
    )
    await shop.advance(71 * 3600)
    await shop.send(
        "order.shoplazza_tracking_updated",
        "order:7105",
        {"tracking_number": "A2", "tracking_company_code": "usps"},
    )
    [update] = shop.tiktok.called("update_shipping_info")
    assert update["tracking_number"] == "A2"
    assert (await shop.data("order:7105"))["fulfillment"]["correction"]["status"] == "synced"
    await shop.advance(2 * 3600)
    await shop.send(
        "order.shoplazza_tracking_updated",
        "order:7105",
        {"tracking_number": "A3", "tracking_company_code": "usps"},
    )
    assert len(shop.tiktok.called("update_shipping_info")) == 1
    correction = (await shop.data("order:7105"))["fulfillment"]["correction"]
    assert correction["status"] == "not_synced" and "72-hour" in correction["reason"]
