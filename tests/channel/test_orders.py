"""Orders: ORD-1 to ORD-8, and the fulfillment push: LOGI-1 to LOGI-5."""

from __future__ import annotations

import pytest

from adapters.sandbox import story
from adapters.sandbox import tiktok as tiktok_sandbox
from adapters.sandbox.story import Sandboxes, connect_shop
from adapters.tiktok_shop.commands import TikTokCommands
from engine.outbox import OutboxCommand, RetryLater
from statecharts.resolvers import provider_for_option
from statecharts.views import order_list, region_status
from tests.channel.harness import SHOP, TIKTOK_SHOP_ID, listing, product

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


async def region(channel, key: str, name: str) -> str | None:
    """The state one region of the order is in: its status (``lifecycle``), its
    Shoplazza sync (``sync``) or its fulfillment push (``fulfillment``)."""
    return region_status(await channel.state(key) or "", name)


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
    assert await region(shop, "order:7001", "sync") == "synced"
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
    assert await region(shop, "order:7002", "sync") == "failed"
    assert sync["reason"] == "products not synced: 999999" and "status" not in sync
    assert not shop.shoplazza.called("create_shoplazza_order")
    [row] = await order_list(shop.engine.store, sync_status="failed")
    assert row.sync_reason == "products not synced: 999999"


async def test_ord4_a_deleted_product_fails_the_order_which_is_retried_once_fixed(shop):
    """ORD-4: a deleted product fails the order which is retried once fixed."""
    await shop.send("listing.product_removed", listing("p1"), {"reason": "deleted"})
    await paid_order(shop, "7003")
    sync = (await shop.data("order:7003"))["sync"]
    assert await region(shop, "order:7003", "sync") == "failed"
    assert sync["reason"] == "products deleted or unpublished in Shoplazza: Product p1"
    await shop.advance(15 * 60)
    assert (await shop.data("order:7003"))["sync"]["failures"] == 2, "retried, still failing"
    assert not shop.shoplazza.called("create_shoplazza_order")
    # The merchant restores the product: it is resubmitted under the same TikTok id.
    await shop.add_products(product("p1"))
    assert await shop.tiktok_product_id("p1") == shop.pids[0]
    await shop.approve("p1")
    await shop.advance(15 * 60)
    assert await region(shop, "order:7003", "sync") == "synced"
    assert len(shop.shoplazza.called("create_shoplazza_order")) == 1


async def test_ord4_an_unpublished_product_recovers_and_the_retry_syncs_the_order(shop):
    """ORD-4: an unpublished product recovers and the retry syncs the order."""
    await shop.send(
        "listing.product_updated", listing("p2"), {"product": product("p2", published=False)}
    )
    shop.tiktok_order("7004", product_ids=(shop.pids[1],))
    await shop.order_status("7004", "AWAITING_SHIPMENT", 100)
    assert await region(shop, "order:7004", "sync") == "failed"
    # Republished and re-added: synced again under the same TikTok product.
    await shop.add_products(product("p2"))
    await shop.approve("p2")
    await shop.advance(15 * 60)
    assert await region(shop, "order:7004", "sync") == "synced"


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
    kept = (await shop.data("order:7005"))["recipient_address"]
    assert "Ada" not in str(kept), "kept sealed (SEC-3)"
    assert shop.engine.vault.open("order:7005", kept)["name"] == "Ada Lovelace"
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
    assert await region(shop, "order:7007", "lifecycle") == "cancelled"
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
    assert await region(shop, "order:7008", "lifecycle") == "awaiting_shipment"


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
    assert await region(shop, "order:7009", "lifecycle") == "completed"


async def test_ord8_cancelling_is_possible_before_delivery_only(shop):
    """ORD-8: cancelling is possible before delivery only."""
    await paid_order(shop, "7010", status="DELIVERED")
    refused = await shop.order_status("7010", "CANCELLED", 900)
    assert refused.outcome == "ignored"
    assert await region(shop, "order:7010", "lifecycle") == "delivered"


async def test_ord8_numeric_status_codes_are_understood(shop):
    """ORD-8: numeric status codes are understood."""
    shop.tiktok_order("7011", product_ids=(shop.pids[0],))
    await shop.order_status("7011", "111", 100)
    assert await region(shop, "order:7011", "lifecycle") == "awaiting_shipment"


async def test_ord9_an_equal_update_time_applies_forward_and_never_back(shop):
    """ORD-9: TikTok stamps two moves within one second: the forward one applies,
    the backward one and a repeat do not."""
    await paid_order(shop, "7012")  # AWAITING_SHIPMENT at 200
    forward = await shop.order_status("7012", "IN_TRANSIT", 200)
    assert forward.outcome == "transitioned"
    assert await region(shop, "order:7012", "lifecycle") == "in_transit"
    back = await shop.order_status("7012", "AWAITING_SHIPMENT", 200)
    assert back.outcome == "ignored" and back.reason.startswith("stale")
    again = await shop.order_status("7012", "IN_TRANSIT", 200)
    assert again.outcome == "ignored"
    assert await region(shop, "order:7012", "lifecycle") == "in_transit"
    assert [
        c["fulfillment_status"] for c in shop.shoplazza.called("update_shoplazza_fulfillment")
    ] == ["shipped"]


async def test_ord6_the_shoplazza_copy_never_moves_back(shop):
    """ORD-6: the merchant shipped in Shoplazza; TikTok's later Partially Shipping
    does not turn Shoplazza's shipped back into partially shipped, and after a
    cancel in Shoplazza nothing reopens or cancels it again."""
    await paid_order(shop, "7013")
    await shop.send(
        "order.shoplazza_fulfilled",
        "order:7013",
        {"tracking_number": "9400", "tracking_company_code": "usps"},
    )
    await shop.order_status("7013", "PARTIALLY_SHIPPING", 300)
    assert not shop.shoplazza.called("update_shoplazza_fulfillment"), "shipped stays shipped"

    await paid_order(shop, "7014", status="UNPAID")
    await shop.send("order.shoplazza_changed", "order:7014", {"status": "cancelled"})
    await shop.order_status("7014", "AWAITING_SHIPMENT", 200)
    await shop.order_status("7014", "CANCELLED", 300)
    payments = [c["order"] for c in shop.shoplazza.called("update_shoplazza_payment")]
    cancels = [c["order"] for c in shop.shoplazza.called("cancel_shoplazza_order")]
    assert "order:7014" not in payments and "order:7014" not in cancels


async def test_ord6_shoplazza_status_and_tiktok_returns_are_kept_for_the_order_list(shop):
    """ORD-6: the order keeps what Shoplazza shows and TikTok's returns, one row per
    return at its latest status."""
    await paid_order(shop, "7015")
    await shop.send("order.shoplazza_changed", "order:7015", {"financial_status": "refunded"})
    for status, at in (
        ("RETURN_OR_REFUND_REQUEST_PENDING", 400),
        ("RETURN_OR_REFUND_REQUEST_COMPLETE", 500),
    ):
        await shop.send(
            "order.tiktok_return_changed",
            "order:7015",
            {
                "return_id": "r9",
                "return_type": "REFUND",
                "return_status": status,
                "update_time": at,
            },
        )
    data = await shop.data("order:7015")
    assert data["shoplazza"]["financial_status"] == "refunded"
    [refund] = data["returns"]
    assert refund["return_status"] == "RETURN_OR_REFUND_REQUEST_COMPLETE"


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
    assert await region(channel, "order:7101", "fulfillment") == "not_applicable"


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
    assert await region(shop, "order:7102", "fulfillment") == "failed"
    assert fulfillment["reason"] == "carrier not mapped (ups)"
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
    assert push["order_line_item_ids"] == [f"li-{shop.pids[0]}"], "TikTok's own line item ids"
    assert await region(shop, "order:7102", "fulfillment") == "pushed.sent"


async def test_logi4_shipping_info_waits_while_on_hold(shop):
    """LOGI-4: shipping info waits while on hold."""
    await paid_order(shop, "7103", status="ON_HOLD")
    await shop.send(
        "order.shoplazza_fulfilled",
        "order:7103",
        {"tracking_number": "9400111", "tracking_company_code": "usps"},
    )
    assert await region(shop, "order:7103", "fulfillment") == "waiting"
    assert not shop.tiktok.called("push_shipping")
    await shop.order_status("7103", "AWAITING_SHIPMENT", 300)
    [push] = shop.tiktok.called("push_shipping")
    assert push["shipping_provider_id"] == USPS
    assert await region(shop, "order:7103", "fulfillment") == "pushed.sent"


async def test_logi4_tiktoks_on_hold_refusal_puts_the_push_back_to_wait(shop):
    """LOGI-4: tiktoks on hold refusal puts the push back to wait."""
    await paid_order(shop, "7104")
    shop.tiktok.orders["7104"]["status"] = "ON_HOLD"  # TikTok still holds it
    await shop.send(
        "order.shoplazza_fulfilled",
        "order:7104",
        {"tracking_number": "9400", "tracking_company_code": "usps"},
    )
    assert await region(shop, "order:7104", "fulfillment") == "waiting"


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
    assert await region(shop, "order:7105", "fulfillment") == "pushed.corrected"
    await shop.advance(2 * 3600)
    await shop.send(
        "order.shoplazza_tracking_updated",
        "order:7105",
        {"tracking_number": "A3", "tracking_company_code": "usps"},
    )
    assert len(shop.tiktok.called("update_shipping_info")) == 1
    correction = (await shop.data("order:7105"))["fulfillment"]["correction"]
    assert await region(shop, "order:7105", "fulfillment") == "pushed.correction_failed"
    assert "72-hour" in correction["reason"] and correction["tracking_number"] == "A3"
    [row] = await order_list(shop.engine.store)
    assert row.fulfillment_status == "pushed", "the push stays Sent while its correction fails"


# ------------------------------------------------------------ the push against the strict sandbox


@pytest.fixture
async def box(tmp_path):
    """The channel over loopback HTTP against the strict sandboxes: connected
    (FBS, usps and ups mapped) and the summer collection approved on TikTok."""
    started = await Sandboxes.start(tmp_path / "orders.db")
    try:
        await connect_shop(started)
        await started.service.add_collection(story.SHOP, "summer")
        await started.settle()
        await started.advance(2 * 3600)
        yield started
    finally:
        await started.stop()


async def shipped_in_shoplazza(
    box: Sandboxes,
    carrier: str,
    tracking: str,
    *,
    delivery_option_id: str = tiktok_sandbox.STANDARD["id"],
) -> str:
    """A buyer orders the shirt and pays; the hold ends; the merchant fulfills in Shoplazza."""
    shirt = await box.tiktok_product_id("1001")
    order_id = box.tiktok.create_order(
        [{"product_id": shirt, "seller_sku": "SKU-1001"}], delivery_option_id=delivery_option_id
    )["id"]
    await box.settle()
    box.tiktok.order_action(order_id, "pay")
    await box.advance(3600)
    box.shoplazza.fulfill(await box.shoplazza_order_id(order_id), tracking, carrier)
    await box.settle()
    return order_id


async def test_logi3_the_push_names_tiktoks_line_items_and_a_provider_of_the_delivery_option(box):
    """LOGI-3: a fulfillment made in Shoplazza reaches the strict sandbox as TikTok's
    own line item ids of the order and a provider its delivery option lists."""
    order_id = await shipped_in_shoplazza(box, "usps", "9400111899223197428490")
    order = box.tiktok.orders[order_id]
    assert order["status"] == "IN_TRANSIT", "TikTok accepted the package"
    [item] = order["line_items"]
    assert item["tracking_number"] == "9400111899223197428490"
    assert item["shipping_provider_id"] == story.USPS
    data = await box.service.engine.entity(f"order:{order_id}")
    assert data is not None
    fulfillment = data.data["fulfillment"]
    assert region_status(data.state, "fulfillment") == "pushed.sent"
    assert fulfillment["order_line_item_ids"] == [item["id"]], "TikTok's id, not Shoplazza's"
    assert fulfillment["delivery_option_id"] == tiktok_sandbox.STANDARD["id"]
    assert data.data["detail"]["line_items"][0]["id"] == item["id"]


async def test_logi2_a_carrier_the_orders_delivery_option_does_not_offer_is_not_pushed(box):
    """LOGI-2: UPS is mapped, but the order ships with Economy, whose providers are
    USPS and DHL eCommerce: nothing reaches TikTok and the order says why."""
    order_id = await shipped_in_shoplazza(
        box, "ups", "1Z999AA10123456784", delivery_option_id=tiktok_sandbox.ECONOMY["id"]
    )
    assert order_id not in box.tiktok.package_calls
    entity = await box.service.engine.entity(f"order:{order_id}")
    assert entity is not None
    fulfillment = entity.data["fulfillment"]
    assert region_status(entity.state, "fulfillment") == "failed"
    assert fulfillment["reason"] == (
        "carrier UPS is not offered by this order's delivery option (Economy shipping); "
        "TikTok lists: USPS, DHL eCommerce"
    )
    # Mapping UPS to USPS retries the push; TikTok refuses a UPS number under USPS,
    # and the order shows TikTok's refusal as a sentence.
    await box.service.merchant(
        "logistics.map_carrier",
        story.SHOP,
        {"tracking_company_code": "ups", "shipping_provider_id": tiktok_sandbox.USPS["id"]},
    )
    await box.settle()
    assert order_id in box.tiktok.package_calls
    entity = await box.service.engine.entity(f"order:{order_id}")
    assert entity is not None
    assert entity.data["fulfillment"]["reason"] == (
        "TikTok refused the tracking number: it does not match the carrier (TikTok error 21004015)"
    )


def push(order_id: str, body: dict, *, command: str = "push_shipping") -> OutboxCommand:
    return OutboxCommand(
        id=1,
        entity=f"order:{order_id}",
        type=command,
        payload={"order": f"order:{order_id}", "order_id": order_id, "shop_id": TIKTOK_SHOP_ID}
        | body,
        idempotency_key=f"test:{order_id}:{command}",
        attempts=0,
    )


def awaiting_shipment(box: Sandboxes, *, fbt: bool = False, option: str | None = None) -> dict:
    order = box.tiktok.create_order(
        [{"product_id": "1729", "seller_sku": "SKU-1"}],
        fbt=fbt,
        delivery_option_id=option or tiktok_sandbox.STANDARD["id"],
    )
    box.tiktok.order_action(order["id"], "pay")
    box.clock.advance(3601)
    box.tiktok.tick()
    return order


async def refusal(box: Sandboxes, command: OutboxCommand) -> dict:
    [event] = await getattr(TikTokCommands(box.service.tiktok), command.type)(command)
    assert event["type"] == "order.shipping_push_failed"
    return event["payload"]


async def test_logi3_the_sandbox_refuses_the_old_package_shape(box):
    """LOGI-3: Shoplazza's ids as line items, or a provider outside the order's
    delivery option, are refused; the merchant reads why."""
    order = awaiting_shipment(box)
    usps, dhl = tiktok_sandbox.USPS["id"], tiktok_sandbox.DHL_ECOMMERCE["id"]
    tiktok_ids = [item["id"] for item in order["line_items"]]
    old = push(
        order["id"],
        {
            "tracking_number": "9400100",
            "shipping_provider_id": usps,
            "order_line_item_ids": ["30001"],
        },
    )
    failed = await refusal(box, old)
    assert failed["code"] == 21001006
    assert failed["message"].startswith("TikTok refused the package: its items are not items")
    not_offered = push(
        order["id"],
        {
            "tracking_number": "9400100",
            "shipping_provider_id": dhl,
            "order_line_item_ids": tiktok_ids,
        },
    )
    failed = await refusal(box, not_offered)
    assert failed["code"] == 21004016 and "delivery option does not offer it" in failed["message"]
    other = awaiting_shipment(box)
    foreign = push(
        order["id"],
        {
            "tracking_number": "9400100",
            "shipping_provider_id": usps,
            "order_line_item_ids": [other["line_items"][0]["id"]],
        },
    )
    assert (await refusal(box, foreign))["code"] == 21001006, "another order's line item"
    right = push(
        order["id"],
        {
            "tracking_number": "9400100",
            "shipping_provider_id": usps,
            "order_line_item_ids": tiktok_ids,
        },
    )
    [pushed] = await TikTokCommands(box.service.tiktok).push_shipping(right)
    assert pushed["type"] == "order.shipping_pushed" and pushed["payload"]["package_id"]


@pytest.mark.parametrize(
    ("case", "code", "reads"),
    [
        ("on_hold", 21011044, "On Hold"),
        ("fbt", 21008025, "Fulfilled by TikTok"),
        ("already_shipped", 21008099, "already shipped"),
        ("duplicate_tracking", 21011025, "another package already uses it"),
        ("ups_number_with_usps", 21004015, "does not match the carrier"),
        ("correction_after_72h", 21011046, "72-hour window"),
    ],
)
async def test_logi3_logi5_each_tiktok_refusal_reads_as_a_reason(box, case, code, reads):
    """LOGI-3, LOGI-4, LOGI-5: each refusal of the strict sandbox comes back as
    order.shipping_push_failed with TikTok's code and a sentence for the merchant."""
    usps = tiktok_sandbox.USPS["id"]
    order = awaiting_shipment(box, fbt=case == "fbt")
    body = {
        "tracking_number": "9400200",
        "shipping_provider_id": usps,
        "order_line_item_ids": [i["id"] for i in order["line_items"]],
    }
    command = "push_shipping"
    if case == "on_hold":
        order = box.tiktok.create_order([{"product_id": "1729"}])
        box.tiktok.order_action(order["id"], "pay")
        body["order_line_item_ids"] = [i["id"] for i in order["line_items"]]
    elif case in ("already_shipped", "correction_after_72h"):
        await TikTokCommands(box.service.tiktok).push_shipping(push(order["id"], body))
        if case == "correction_after_72h":
            box.clock.advance(73 * 3600)
            command, body = "update_shipping_info", {**body, "tracking_number": "9400201"}
    elif case == "duplicate_tracking":
        other = awaiting_shipment(box)
        await TikTokCommands(box.service.tiktok).push_shipping(
            push(other["id"], {**body, "order_line_item_ids": [other["line_items"][0]["id"]]})
        )
    elif case == "ups_number_with_usps":
        body["tracking_number"] = "1Z999AA10123456784"
    failed = await refusal(box, push(order["id"], body, command=command))
    assert failed["code"] == code
    assert reads in failed["message"] and f"(TikTok error {code})" in failed["message"]


def test_logi2_a_mapped_provider_listed_under_another_id_uses_the_options_id():
    """LOGI-2: the option lists the mapped carrier by name under its own id; an
    option without the carrier names what it offers; an unlisted option is left
    to TikTok."""
    logistics = {
        "shipping_providers": [{"id": "1", "name": "USPS"}, {"id": "2", "name": "UPS"}],
        "delivery_options": {
            "std": {"name": "Standard", "shipping_providers": [{"id": "1", "name": "USPS"}]},
            "eco": {"name": "Economy", "shipping_providers": [{"id": "9", "name": "usps"}]},
        },
    }
    assert provider_for_option(logistics, "1", "std") == ("1", None)
    assert provider_for_option(logistics, "1", "eco") == ("9", None)
    assert provider_for_option(logistics, "2", "eco") == (
        None,
        "carrier UPS is not offered by this order's delivery option (Economy); TikTok lists: usps",
    )
    assert provider_for_option(logistics, "2", "unknown") == ("2", None)
    assert provider_for_option(logistics, None, "std") == (None, None)


async def test_logi1_tiktok_saying_the_order_is_fbt_stops_the_push(shop):
    """LOGI-1: TikTok's 21008025 (the order is Fulfilled by TikTok) marks the push
    not applicable instead of failing it."""
    await paid_order(shop, "7106")
    await shop.send(
        "order.shipping_push_failed",
        "order:7106",
        {"code": 21008025, "message": "the order is Fulfilled by TikTok"},
    )
    assert await region(shop, "order:7106", "fulfillment") == "not_applicable"


async def test_logi3_a_push_waits_for_tiktoks_line_item_ids(shop):
    """LOGI-3: without TikTok's line item ids (an order detail that lacks them)
    nothing is pushed; the order says it waits, and the next detail sends it."""
    await paid_order(shop, "7107")
    for item in shop.tiktok.orders["7107"]["line_items"]:
        item["id"] = ""
    await shop.send("order.address_updated", "order:7107")  # TikTok's detail, again
    await shop.send(
        "order.shoplazza_fulfilled",
        "order:7107",
        {"tracking_number": "9400", "tracking_company_code": "usps"},
    )
    assert not shop.tiktok.called("push_shipping")
    assert await region(shop, "order:7107", "fulfillment") == "waiting_detail"
    shop.tiktok.orders["7107"]["line_items"][0]["id"] = "li-7107"
    await shop.send("order.address_updated", "order:7107")
    [push] = shop.tiktok.called("push_shipping")
    assert push["order_line_item_ids"] == ["li-7107"]
    assert await region(shop, "order:7107", "fulfillment") == "pushed.sent"


async def test_ord5_an_order_the_api_does_not_show_yet_is_fetched_again_later(box):
    """ORD-5 (the detail fetch): a webhook can outrun Get Order Detail; an empty
    answer is retried later instead of failing the order for good."""
    command = push("576486316948499999", {"include_recipient": False}, command="fetch_order_detail")
    with pytest.raises(RetryLater):
        await TikTokCommands(box.service.tiktok).fetch_order_detail(command)


async def test_ord6_over_the_strict_shoplazza_sandbox_nothing_moves_back_or_is_refused(box):
    """ORD-6: the merchant cancels in Shoplazza, then the buyer pays and cancels on
    TikTok: Shoplazza is not marked paid or cancelled again (it would refuse
    both), no command is left failed, and the order shows Shoplazza's status."""
    shirt = await box.tiktok_product_id("1001")
    order_id = box.tiktok.create_order([{"product_id": shirt, "seller_sku": "SKU-1001"}])["id"]
    await box.settle()
    shoplazza_id = await box.shoplazza_order_id(order_id)
    box.shoplazza.order_action(shoplazza_id, "cancel")
    await box.settle()
    box.tiktok.order_action(order_id, "pay")
    await box.settle()
    box.tiktok.order_action(order_id, "cancel")
    await box.settle()
    engine = box.service.engine
    left = await engine.store.fetchall("SELECT command, status FROM outbox WHERE status != 'done'")
    assert left == []
    assert box.shoplazza.orders[shoplazza_id]["financial_status"] == "waiting"
    entity = await engine.entity(f"order:{order_id}")
    assert entity is not None and region_status(entity.state, "lifecycle") == "cancelled"
    assert entity.data["shoplazza"]["status"] == "cancelled"
