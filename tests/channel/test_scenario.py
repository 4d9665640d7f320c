"""A whole merchant story through the engine on a SQLite file (issue 3 acceptance)."""

from __future__ import annotations

import json

from engine.replay import check
from tests.channel.harness import SHOP, listing, product
from tests.conftest import invoke_cli

USPS = "7117858858072016686"


async def test_scenario_connect_map_sync_and_follow_orders(connected, db_path):
    """CONN-2, LOGI-2, PROD-2..4, ORD-1, ORD-6, ORD-7, LOGI-3, LOGI-4 end to end."""
    shop = connected
    await shop.send(
        "logistics.map_carrier",
        SHOP,
        {"tracking_company_code": "usps", "shipping_provider_id": USPS},
    )

    # Three products: one approved, one rejected for a missing weight, one with
    # 12 images of which 2 GIFs (exactly the first 9 non-GIF images go out).
    await shop.add_collection(
        "c1",
        product("good"),
        product("heavy", weight=None),
        product("gallery", images=12, gif_at=(0, 5)),
    )
    await shop.approve("good")
    assert await shop.state(listing("good")) == "approved.selling"
    assert await shop.state(listing("heavy")) == "rejected.failing_checks"
    submitted = {c["listing"]: c["product"] for c in shop.tiktok.called("create_listing")}
    assert set(submitted) == {listing("good"), listing("gallery")}, "no call for the rejected one"
    assert submitted[listing("gallery")]["image_srcs"] == [
        f"https://cdn.example/gallery/{i}.jpg" for i in (1, 2, 3, 4, 6, 7, 8, 9, 10)
    ]

    shown = await invoke_cli("products", "--db", str(db_path), "--status", "rejected", "--json")
    [row] = json.loads(shown.stdout)
    assert row["product_id"] == "heavy" and row["status_label"] == "Rejected"
    assert row["failure_reasons"][0]["position"] == "package_weight"

    # An order: unpaid -> on hold -> awaiting shipment -> shipped, tracking pushed once.
    good = await shop.tiktok_product_id("good")
    shop.tiktok_order("8001", product_ids=(good,))
    await shop.order_status("8001", "UNPAID", 100, is_on_hold_order=True)
    await shop.order_status("8001", "ON_HOLD", 200, is_on_hold_order=True)
    await shop.send(
        "order.shoplazza_fulfilled",
        "order:8001",
        {"tracking_number": "9400111899223", "tracking_company_code": "usps"},
    )
    assert not shop.tiktok.called("push_shipping"), "waits while On Hold"
    await shop.order_status("8001", "AWAITING_SHIPMENT", 300)
    await shop.order_status("8001", "AWAITING_SHIPMENT", 300)  # a repeated webhook
    await shop.order_status("8001", "IN_TRANSIT", 400)
    pushes = shop.tiktok.called("push_shipping")
    assert [(p["order_id"], p["tracking_number"], p["shipping_provider_id"]) for p in pushes] == [
        ("8001", "9400111899223", USPS)
    ]
    assert not shop.shoplazza.called("update_shoplazza_fulfillment"), (
        "Shoplazza already shipped it: nothing sent back"
    )

    # Another order, cancelled on TikTok: cancelled in Shoplazza.
    shop.tiktok_order("8002", product_ids=(good,))
    await shop.order_status("8002", "AWAITING_SHIPMENT", 100)
    await shop.order_status("8002", "CANCELLED", 200)
    assert [c["order"] for c in shop.shoplazza.called("cancel_shoplazza_order")] == ["order:8002"]

    # A refund on TikTok changes nothing in Shoplazza; a Shoplazza-side cancel
    # sends nothing to TikTok.
    before_shoplazza, before_tiktok = len(shop.shoplazza.calls), len(shop.tiktok.calls)
    await shop.send(
        "order.tiktok_return_changed",
        "order:8001",
        {"return_type": "REFUND", "return_status": "REFUNDED"},
    )
    await shop.send("order.shoplazza_changed", "order:8001", {"status": "cancelled"})
    assert len(shop.shoplazza.calls) == before_shoplazza
    assert len(shop.tiktok.calls) == before_tiktok
    assert (await shop.state("order:8001")).startswith("lifecycle.in_transit,")

    listed = await invoke_cli("orders", "--db", str(db_path), "--channel", "TikTok Shop", "--json")
    rows = {r["order_id"]: r for r in json.loads(listed.stdout)}
    assert rows["8001"]["status"] == "in_transit" and rows["8001"]["sync_status"] == "synced"
    assert rows["8001"]["fulfillment_status"] == "pushed"
    assert rows["8002"]["status"] == "cancelled"

    # The log rebuilds exactly this state (ENG-5).
    report = await check(shop.engine.store, shop.engine.charts)
    assert report.divergence is None
