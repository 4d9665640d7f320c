"""Connecting a shop: CONN-1 to CONN-5."""

from __future__ import annotations

from tests.channel.harness import PACKAGE, SHOP, product


async def test_conn1_a_store_outside_the_us_gets_a_clear_error_and_is_not_connected(channel):
    """CONN-1: a store outside the us gets a clear error and is not connected."""
    receipt = await channel.send(
        "connection.start_setup",
        SHOP,
        {"store_domain": "shop.myshoplaza.com", "store_country": "CA"},
    )
    assert receipt.outcome == "ignored"
    assert "only to stores based in the United States" in receipt.reason
    assert "CA" in receipt.reason
    assert await channel.state(SHOP) is None, "nothing is recorded as connected"


async def test_conn1_a_tiktok_shop_based_outside_the_us_cannot_authorize(channel):
    """CONN-1: a tiktok shop based outside the us cannot authorize."""
    await channel.send("connection.start_setup", SHOP, {"store_domain": "s", "store_country": "us"})
    await channel.send("connection.connect", SHOP)
    await channel.send("connection.choose_account_type", SHOP, {"account_type": "seller"})
    await channel.send("connection.accept_terms", SHOP, {"accepted": True})
    receipt = await channel.send(
        "connection.authorized",
        SHOP,
        {
            "shop_id": "1",
            "seller_base_region": "GB",
            "access_token_expire_in": 2_000_000_000,
            "refresh_token_expire_in": 2_100_000_000,
        },
    )
    assert receipt.outcome == "ignored" and "only US TikTok Shops" in receipt.reason
    assert await channel.state(SHOP) == "terms_accepted"


async def test_conn2_setup_runs_in_order_and_authorizing_without_terms_is_refused(channel):
    """CONN-2: setup runs in order and authorizing without terms is refused."""
    await channel.send("connection.start_setup", SHOP, {"store_domain": "s", "store_country": "US"})
    early = await channel.send("connection.choose_account_type", SHOP, {"account_type": "seller"})
    assert early.outcome == "ignored" and "click Connect" in early.reason
    await channel.send("connection.connect", SHOP)
    await channel.send("connection.choose_account_type", SHOP, {"account_type": "seller"})
    assert await channel.state(SHOP) == "account_type_chosen"
    refused = await channel.authorize()
    assert refused.outcome == "ignored"
    assert refused.reason.startswith("accept TikTok's data-usage terms before authorizing")
    unchecked = await channel.send("connection.accept_terms", SHOP, {"accepted": False})
    assert unchecked.outcome == "ignored" and "must be accepted" in unchecked.reason
    await channel.send("connection.accept_terms", SHOP, {"accepted": True})
    assert (await channel.authorize()).to_state == "active"


async def test_conn2_no_tiktok_shop_account_says_to_create_one_first(channel):
    """CONN-2: no tiktok shop account says to create one first."""
    await channel.send("connection.start_setup", SHOP, {"store_domain": "s", "store_country": "US"})
    await channel.send("connection.connect", SHOP)
    receipt = await channel.send(
        "connection.choose_account_type",
        SHOP,
        {"account_type": "seller", "has_tiktok_shop_account": False},
    )
    assert receipt.outcome == "ignored"
    assert "no TikTok Shop account: create one" in receipt.reason
    assert await channel.state(SHOP) == "connecting"


async def test_conn3_mapping_and_product_sync_open_only_once_authorized(channel):
    """CONN-3: mapping and product sync open only once authorized."""
    await channel.send("connection.start_setup", SHOP, {"store_domain": "s", "store_country": "US"})
    mapping = await channel.send(
        "logistics.map_carrier",
        SHOP,
        {"tracking_company_code": "usps", "shipping_provider_id": "7117858858072016686"},
    )
    adding = await channel.add_products(product("p1"))
    assert mapping.outcome == adding.outcome == "ignored"
    assert "available once the TikTok Shop authorization is active" in mapping.reason
    assert "product sync is available once" in adding.reason
    assert not await channel.engine.entities(chart="product_listing")

    await channel.send("connection.connect", SHOP)
    await channel.send("connection.choose_account_type", SHOP, {"account_type": "seller"})
    await channel.send("connection.accept_terms", SHOP, {"accepted": True})
    await channel.authorize()
    assert (await channel.add_products(product("p1"))).outcome == "transitioned"
    assert len(await channel.engine.entities(chart="product_listing")) == 1


async def test_conn4_deauthorized_holds_outbound_work_and_resumes_on_reauthorization(connected):
    """CONN-4: deauthorized holds outbound work and resumes on reauthorization."""
    channel = connected
    await channel.send("connection.deauthorized", SHOP, {"message": "seller deauthorized"})
    assert await channel.state(SHOP) == "inactive"
    assert "deauthorized" in (await channel.data(SHOP))["inactive_reason"]

    # Product sync pauses: adding is refused, and work already asked for is held.
    assert (await channel.add_products(product("p9"))).outcome == "ignored"
    await channel.set_attributes("p1", package_dimensions=PACKAGE)
    await channel.send(
        "listing.added", "listing:demo-store:p1", {"shop": SHOP, "product": product("p1")}
    )
    assert await channel.state("listing:demo-store:p1") == "pending_sync"
    assert not channel.tiktok.called("create_listing")
    held = await channel.engine.store.fetchall(
        "SELECT command, status, hold_key FROM outbox WHERE command = 'create_listing'"
    )
    assert held == [("create_listing", "held", "authorization:shop:demo-store")]

    await channel.authorize()
    assert await channel.state(SHOP) == "active"
    assert len(channel.tiktok.called("create_listing")) == 1, "held, not dropped"
    assert await channel.state("listing:demo-store:p1") == "in_review"


async def test_conn4_order_sync_fails_with_authorization_inactive_and_is_retried(connected):
    """CONN-4: order sync fails with authorization inactive and is retried."""
    channel = connected
    await channel.add_products(product("p1"))
    await channel.approve("p1")
    tiktok_pid = await channel.tiktok_product_id("p1")
    await channel.send("connection.deauthorized", SHOP, {"message": "gone"})
    channel.tiktok_order("5001", product_ids=(tiktok_pid,))
    await channel.order_status("5001", "UNPAID", 100)
    sync = (await channel.data("order:5001"))["sync"]
    assert sync["status"] == "failed" and sync["reason"] == "authorization inactive"
    assert not channel.shoplazza.called("create_shoplazza_order")

    await channel.authorize()
    await channel.advance(15 * 60)
    assert (await channel.data("order:5001"))["sync"]["status"] == "synced"


async def test_conn4_refresh_token_expiry_and_uninstall_make_it_inactive(connected):
    """CONN-4: refresh token expiry and uninstall make it inactive."""
    channel = connected
    await channel.send("connection.refresh_token_expired", SHOP, {})
    assert await channel.state(SHOP) == "inactive"
    await channel.authorize()
    await channel.send("connection.app_uninstalled", SHOP, {})
    data = await channel.data(SHOP)
    assert await channel.state(SHOP) == "inactive" and "uninstalled" in data["inactive_reason"]


async def test_conn4_webhook_7_raises_a_warning_state_with_the_expiry_time(connected):
    """CONN-4: webhook 7 raises a warning state with the expiry time."""
    channel = connected
    await channel.send(
        "connection.authorization_expiring",
        SHOP,
        {"message": "expires soon", "expiration_time": "1721836800"},
    )
    assert await channel.state(SHOP) == "expiring"
    assert (await channel.data(SHOP))["expiry_warning"]["expiration_time"] == 1721836800
    assert (await channel.add_products(product("p1"))).outcome == "transitioned", "still authorized"
    await channel.authorize()
    assert await channel.state(SHOP) == "active"


async def test_conn5_the_access_token_is_refreshed_before_its_absolute_expiry(connected):
    """CONN-5: the access token is refreshed before its absolute expiry."""
    channel = connected
    expiry = (await channel.data(SHOP))["authorization"]["access_token_expire_in"]
    await channel.advance(expiry - channel.clock.now() - 3601)
    assert not channel.tiktok.called("refresh_access_token")
    await channel.advance(2)
    assert len(channel.tiktok.called("refresh_access_token")) == 1, "one hour ahead of expiry"
    refreshed = (await channel.data(SHOP))["authorization"]["access_token_expire_in"]
    assert refreshed > expiry
    [(_, _, due_at, _, _)] = await channel.engine.store.timers(SHOP)
    assert due_at == refreshed - 3600, "re-armed from the new absolute expiry"
