"""Connecting a shop: CONN-1 to CONN-5."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import ChartSet, FakeClock
from engine.charts.configuration import is_active
from engine.settings import EngineSettings
from engine.testing import ChartHarness
from statecharts import chart_package
from tests.channel.harness import PACKAGE, SHOP, listing, product


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
    assert (await channel.authorize()).to_state == "authorized.active"


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
    assert await channel.state("listing:demo-store:p1") == "pending_sync.sending"
    assert not channel.tiktok.called("create_listing")
    held = await channel.engine.store.fetchall(
        "SELECT command, status, hold_key FROM outbox WHERE command = 'create_listing'"
    )
    assert held == [("create_listing", "held", "authorization:shop:demo-store")]

    await channel.authorize()
    assert await channel.state(SHOP) == "authorized.active"
    assert len(channel.tiktok.called("create_listing")) == 1, "held, not dropped"
    assert await channel.state("listing:demo-store:p1") == "in_review.reviewing"


async def order_in(channel, key: str, state_id: str) -> bool:
    """Whether the order is in ``state_id`` of one of its regions (``sync.failed``)."""
    return is_active(await channel.state(key) or "", state_id)


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
    assert await order_in(channel, "order:5001", "sync.failed")
    assert sync["reason"] == "authorization inactive"
    assert not channel.shoplazza.called("create_shoplazza_order")

    await channel.authorize()
    await channel.advance(15 * 60)
    assert await order_in(channel, "order:5001", "sync.synced")


async def test_conn4_refresh_token_expiry_and_deauthorization_make_it_inactive(connected):
    """CONN-4: refresh token expiry and deauthorization make it inactive; each is
    cured by authorizing again (the terms of this connection are on record)."""
    channel = connected
    await channel.send("connection.refresh_token_expired", SHOP, {})
    assert await channel.state(SHOP) == "inactive"
    assert "refresh token expired" in (await channel.data(SHOP))["inactive_reason"]
    assert (await channel.authorize()).to_state == "authorized.active"
    await channel.send("connection.deauthorized", SHOP, {"message": "seller deauthorized"})
    assert await channel.state(SHOP) == "inactive"
    assert (await channel.authorize()).to_state == "authorized.active"


async def test_conn4_webhook_7_raises_a_warning_state_with_the_expiry_time(connected):
    """CONN-4: webhook 7 raises a warning state with the expiry time."""
    channel = connected
    await channel.send(
        "connection.authorization_expiring",
        SHOP,
        {"message": "expires soon", "expiration_time": "1721836800"},
    )
    assert await channel.state(SHOP) == "authorized.expiring"
    assert (await channel.data(SHOP))["expiry_warning"]["expiration_time"] == 1721836800
    assert (await channel.add_products(product("p1"))).outcome == "transitioned", "still authorized"
    await channel.authorize()
    assert await channel.state(SHOP) == "authorized.active"


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
    timers = {name: due for _, name, due, _, _ in await channel.engine.store.timers(SHOP)}
    assert timers["token_refresh"] == refreshed - 3600, "re-armed from the new absolute expiry"


# ------------------------------------------------------------ uninstall, reinstall, disconnect


async def _set_up_to_terms(channel) -> None:
    await channel.send("connection.start_setup", SHOP, {"store_domain": "s", "store_country": "US"})
    await channel.send("connection.connect", SHOP)
    await channel.send("connection.choose_account_type", SHOP, {"account_type": "seller"})
    await channel.send("connection.accept_terms", SHOP, {"accepted": True})


async def test_conn6_after_an_uninstall_authorizing_without_the_terms_is_refused(connected):
    """CONN-2, CONN-6: an uninstall takes the connection back to Not connected;
    a re-authorization (a reinstall's OAuth callback) without setup and the
    terms is refused with the reason, and nothing goes out meanwhile."""
    channel = connected
    uninstalled = await channel.send("connection.app_uninstalled", SHOP, {})
    assert uninstalled.to_state == "not_connected"
    data = await channel.data(SHOP)
    assert "terms_accepted_at" not in data and "authorization" not in data
    assert "uninstalled" in data["ended"]["reason"]

    refused = await channel.authorize()
    assert refused.outcome == "ignored"
    assert "accept TikTok's data-usage terms before authorizing" in refused.reason
    assert "after an uninstall" in refused.reason
    assert await channel.state(SHOP) == "not_connected"
    assert (await channel.add_products(product("p1"))).outcome == "ignored"


async def test_conn6_setup_starts_again_after_an_uninstall_terms_included(connected):
    """CONN-6: after an uninstall, setup runs again from the start, and only the
    terms lead on to authorizing."""
    channel = connected
    await channel.send("connection.app_uninstalled", SHOP, {})
    started = await channel.send(
        "connection.start_setup", SHOP, {"store_domain": "s", "store_country": "US"}
    )
    assert started.to_state == "setup"
    await channel.send("connection.connect", SHOP)
    await channel.send("connection.choose_account_type", SHOP, {"account_type": "seller"})
    assert (await channel.authorize()).outcome == "ignored", "terms not accepted yet"
    await channel.send("connection.accept_terms", SHOP, {"accepted": True})
    assert (await channel.authorize()).to_state == "authorized.active"
    data = await channel.data(SHOP)
    assert "ended" not in data and data["logistics"]["fulfillment_model"] == "FBS", "mapping kept"


async def test_conn6_a_merchant_disconnects_and_outbound_work_is_held_until_reconnected(connected):
    """CONN-6: disconnect goes back to Not connected; work asked for meanwhile is
    held, not dropped, and goes out once the shop is set up and authorized again."""
    from statecharts.merchant_connection import disconnect

    channel = connected
    await channel.add_products(product("p1"))
    await channel.approve("p1")
    receipt = await disconnect(channel.engine, SHOP)
    assert receipt.to_state == "not_connected"
    await channel.settle()
    assert "disconnected" in (await channel.data(SHOP))["ended"]["reason"]

    await channel.send(
        "listing.product_updated", listing("p1"), {"product": product("p1", price="24.00")}
    )
    await channel.advance(60)
    assert not channel.tiktok.called("update_price")
    held = await channel.engine.store.fetchall(
        "SELECT command FROM outbox WHERE status = 'held' AND hold_key = ?",
        ("authorization:" + SHOP,),
    )
    assert ("update_price",) in held

    assert (await channel.authorize()).outcome == "ignored", "setup starts again"
    await _set_up_to_terms(channel)
    await channel.authorize()
    [update] = channel.tiktok.called("update_price")
    assert "24.00" in str(update["prices"])


async def test_conn6_disconnecting_a_shop_that_is_not_connected_says_so(channel):
    """CONN-6: disconnect on a shop that is not connected is refused with a reason."""
    from statecharts.merchant_connection import disconnect

    await channel.send("connection.start_setup", SHOP, {"store_domain": "s", "store_country": "US"})
    await disconnect(channel.engine, SHOP)
    receipt = await disconnect(channel.engine, SHOP)
    assert receipt.outcome == "ignored" and receipt.reason == "the shop is not connected"


def test_conn6_the_cli_disconnects_a_shop(tmp_path):
    """CONN-6: `channelsync shop disconnect KEY` publishes the merchant's disconnect."""
    import asyncio

    from typer.testing import CliRunner

    from engine import Engine, FakeClock
    from engine.cli.main import build_cli
    from statecharts import chart_package

    db = tmp_path / "cli.db"

    async def connect() -> None:
        from tests.channel.harness import Channel

        channel = await Channel.open(db, FakeClock())
        await channel.connect()
        await channel.engine.stop()

    async def state() -> str:
        engine = await Engine.open(
            db, [chart_package()], settings=EngineSettings(run_timers=False, run_outbox=False)
        )
        try:
            return (await engine.entity(SHOP)).state
        finally:
            await engine.stop()

    asyncio.run(connect())
    result = CliRunner().invoke(build_cli(), ["shop", "disconnect", SHOP, "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "Not connected" in result.output
    assert asyncio.run(state()) == "not_connected"
    again = CliRunner().invoke(build_cli(), ["shop", "disconnect", SHOP, "--db", str(db)])
    assert again.exit_code == 2 and "the shop is not connected" in again.output
    unknown = CliRunner().invoke(build_cli(), ["shop", "disconnect", "shop:nope", "--db", str(db)])
    assert unknown.exit_code == 2 and "no shop shop:nope" in unknown.output


# ------------------------------------------------------------------ timers (CONN-4, ENG-7)


async def test_conn4_the_expiring_authorization_goes_inactive_at_its_expiration_time(
    connected, db_path, clock
):
    """CONN-4, ENG-7: webhook 7's expiration time ends the authorization by a
    durable timer, one that survives a restart."""
    from tests.channel.harness import Channel

    channel = connected
    expires = int(channel.clock.now()) + 3 * 86400
    await channel.send(
        "connection.authorization_expiring",
        SHOP,
        {"message": "expires in 3 days", "expiration_time": str(expires)},
    )
    await channel.engine.stop()
    channel = await Channel.open(db_path, clock)
    channel._n = itertools.count(1000)  # the reopened harness must not reuse event ids
    try:
        await channel.advance(expires - clock.now() - 1)
        assert await channel.state(SHOP) == "authorized.expiring"
        await channel.advance(2)
        assert await channel.state(SHOP) == "inactive"
        assert "authorization expired" in (await channel.data(SHOP))["inactive_reason"]
        assert (await channel.authorize()).to_state == "authorized.active", (
            "re-authorizing cures it"
        )
    finally:
        await channel.engine.stop()


async def test_conn4_reauthorizing_before_the_expiration_time_keeps_it_active(connected):
    """CONN-4: a re-authorization before the warned time cancels the expiry."""
    channel = connected
    expires = int(channel.clock.now()) + 86400
    await channel.send(
        "connection.authorization_expiring", SHOP, {"expiration_time": expires, "message": ""}
    )
    await channel.advance(3600)
    await channel.authorize()
    await channel.advance(2 * 86400)
    assert await channel.state(SHOP) == "authorized.active"


async def test_conn4_a_refresh_that_outlasts_the_warning_ends_it(connected):
    """CONN-4, CONN-5: a token refresh whose refresh token lives past the warned
    time ends the warning; one that does not leaves it standing."""
    channel = connected
    now = int(channel.clock.now())
    await channel.send(
        "connection.authorization_expiring", SHOP, {"expiration_time": now + 10 * 86400}
    )
    short = await channel.send(
        "connection.token_refreshed",
        SHOP,
        {"access_token_expire_in": now + 86400, "refresh_token_expire_in": now + 10 * 86400},
    )
    assert short.to_state == "authorized.expiring"
    # The access token's refresh timer fires at 7 days; the fake TikTok grants 60 more.
    await channel.advance(7 * 86400)
    assert channel.tiktok.called("refresh_access_token")
    assert await channel.state(SHOP) == "authorized.active"
    await channel.advance(4 * 86400)
    assert await channel.state(SHOP) == "authorized.active"


async def test_conn4_the_refresh_tokens_absolute_expiry_makes_it_inactive(channel):
    """CONN-4, CONN-5: the refresh token's absolute expiry ends the authorization
    by a timer, even with no call to TikTok to find it out."""
    await _set_up_to_terms(channel)
    now = int(channel.clock.now())
    await channel.send(
        "connection.authorized",
        SHOP,
        {
            "shop_id": "7495540735365777507",
            "seller_base_region": "US",
            "access_token_expire_in": now + 7 * 86400,
            "refresh_token_expire_in": now + 2 * 86400,
        },
    )
    await channel.advance(2 * 86400 - 1)
    assert await channel.state(SHOP) == "authorized.active"
    await channel.advance(2)
    assert await channel.state(SHOP) == "inactive"
    assert "refresh token expired" in (await channel.data(SHOP))["inactive_reason"]


# ------------------------------------------------------------------ held work resumes (CONN-4)

USPS = "7117858858072016686"


async def _shop_with_an_order(channel, order_id: str = "5001", status: str = "AWAITING_SHIPMENT"):
    await channel.send(
        "logistics.map_carrier",
        SHOP,
        {"tracking_company_code": "usps", "shipping_provider_id": USPS},
    )
    await channel.add_products(product("p1"))
    await channel.approve("p1")
    channel.tiktok_order(order_id, product_ids=(await channel.tiktok_product_id("p1"),))
    await channel.order_status(order_id, "UNPAID", 100)
    await channel.order_status(order_id, status, 200)


async def test_conn4_a_fulfillment_refused_while_inactive_is_pushed_on_reauthorization(connected):
    """CONN-4: the merchant ships in Shoplazza while the authorization is
    inactive; the push waits with that reason and goes out once authorized."""
    channel = connected
    await _shop_with_an_order(channel)
    await channel.send("connection.deauthorized", SHOP, {"message": "gone"})
    await channel.send(
        "order.shoplazza_fulfilled",
        "order:5001",
        {"tracking_number": "9400111", "tracking_company_code": "usps"},
    )
    fulfillment = (await channel.data("order:5001"))["fulfillment"]
    assert await order_in(channel, "order:5001", "fulfillment.failed")
    assert fulfillment["reason"] == "authorization inactive"
    assert not channel.tiktok.called("push_shipping")

    await channel.authorize()
    [push] = channel.tiktok.called("push_shipping")
    assert push["tracking_number"] == "9400111" and push["shipping_provider_id"] == USPS
    assert await order_in(channel, "order:5001", "fulfillment.pushed")


async def test_conn4_a_held_push_neither_unsyncs_the_order_nor_duplicates_it(connected):
    """CONN-4: a push held because the authorization lapsed between the carrier
    lookup and the call goes out once on re-authorization; the order, already
    in Shoplazza, stays synced and is never created there a second time."""
    channel = connected
    await _shop_with_an_order(channel)
    assert await order_in(channel, "order:5001", "sync.synced")
    await channel.send(
        "order.shoplazza_fulfilled",
        "order:5001",
        {"tracking_number": "9400222", "tracking_company_code": "usps"},
        settle=False,
    )
    await channel.engine.outbox.run_once()  # the carrier lookup answers; the push is queued
    await channel.send("connection.deauthorized", SHOP, {"message": "gone"})
    assert not channel.tiktok.called("push_shipping")
    assert await order_in(channel, "order:5001", "sync.synced")
    await channel.advance(3600)

    await channel.authorize()
    await channel.advance(3600)
    assert len(channel.tiktok.called("push_shipping")) == 1
    assert len(channel.shoplazza.called("create_shoplazza_order")) == 1
    assert await order_in(channel, "order:5001", "sync.synced")
    assert await order_in(channel, "order:5001", "fulfillment.pushed")


async def test_conn4_an_order_refused_while_inactive_syncs_at_reauthorization(connected):
    """CONN-4: an order that failed with "authorization inactive" is retried the
    moment the shop is authorized again, not at its next scheduled retry."""
    channel = connected
    await channel.add_products(product("p1"))
    await channel.approve("p1")
    await channel.send("connection.deauthorized", SHOP, {"message": "gone"})
    channel.tiktok_order("5002", product_ids=(await channel.tiktok_product_id("p1"),))
    await channel.order_status("5002", "UNPAID", 100)
    sync = (await channel.data("order:5002"))["sync"]
    assert await order_in(channel, "order:5002", "sync.failed")
    assert sync["reason"] == "authorization inactive"

    await channel.authorize()
    assert await order_in(channel, "order:5002", "sync.synced")
    assert len(channel.shoplazza.called("create_shoplazza_order")) == 1
    await channel.advance(3600)
    assert len(channel.shoplazza.called("create_shoplazza_order")) == 1, "never twice"


async def test_conn4_product_sync_held_while_inactive_resumes_on_reauthorization(connected):
    """CONN-4: listing work asked for while inactive (an edit, price and stock
    updates, a deactivation) is held, not dropped, and goes out in order; the
    review polls that pile up meanwhile go out once."""
    channel = connected
    for pid in ("p1", "p2"):
        await channel.add_products(product(pid))
        await channel.approve(pid)
    await channel.send("connection.deauthorized", SHOP, {"message": "gone"})
    await channel.send(
        "listing.product_updated",
        listing("p1"),
        {"product": product("p1", price="21.00", stock=3)},
    )
    await channel.send(
        "listing.product_updated", listing("p2"), {"product": product("p2", title="Renamed")}
    )
    await channel.advance(60)
    await channel.send("listing.product_removed", listing("p1"), {"reason": "deleted"})
    for _hour in range(6):  # p2's review is polled every hour meanwhile
        await channel.advance(3600)
    for command in ("update_price", "update_inventory", "edit_listing", "deactivate_listing"):
        assert not channel.tiktok.called(command), command

    await channel.authorize()
    assert len(channel.tiktok.called("update_price")) == 1
    assert len(channel.tiktok.called("update_inventory")) == 1
    assert [e["product"]["title"] for e in channel.tiktok.called("edit_listing")] == ["Renamed"]
    assert len(channel.tiktok.called("deactivate_listing")) == 1
    assert await channel.state(listing("p2")) == "in_review.reviewing"
    held = await channel.engine.store.fetchall("SELECT count(*) FROM outbox WHERE status='held'")
    assert held == [(0,)]
    assert len(channel.tiktok.called("fetch_product_status")) == 1, (
        "the hourly review polls held meanwhile go out as one read, not one per hour"
    )


# ------------------------------------------------------------------ token routes (CONN-5)

APP_KEY, APP_SECRET = "app-key", "app-secret"


async def _client_and_sandbox(db_path, clock):
    """The real TikTok client against the TikTok sandbox, in process (ASGI)."""
    import httpx

    from adapters.sandbox.tiktok import TikTokSandbox
    from adapters.tiktok_shop.client import TikTokClient
    from adapters.tiktok_shop.credentials import CredentialStore
    from engine.store.sqlite import SQLiteStore

    sandbox = TikTokSandbox(APP_KEY, APP_SECRET, clock)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app), base_url="http://t")
    store = await SQLiteStore.open(db_path)
    client = TikTokClient(
        "http://t", "http://t", APP_KEY, APP_SECRET, CredentialStore(store), clock, http=http
    )
    code = (await http.get("/oauth/authorize", params={"app_key": APP_KEY, "state": "n1"})).json()[
        "code"
    ]
    grant = await client.exchange_code(SHOP, code)
    await client.credentials.save(grant.credentials)
    return client, sandbox, http, store


async def test_conn5_a_refresh_goes_to_token_refresh_and_keeps_absolute_expiries(db_path, clock):
    """CONN-5: the client refreshes on GET /api/v2/token/refresh with
    grant_type=refresh_token; the answer's expiries are absolute unix times and
    the new access token works on a signed call."""
    client, sandbox, http, store = await _client_and_sandbox(db_path, clock)
    try:
        before = await client.credentials.get(SHOP)
        clock.advance(3600)
        renewed = await client.refresh(SHOP)
        assert sandbox.token_calls == [
            ("/api/v2/token/get", "authorized_code"),
            ("/api/v2/token/refresh", "refresh_token"),
        ]
        assert renewed.access_token != before.access_token
        assert renewed.access_token_expire_in == int(clock.now()) + 7 * 86400
        assert renewed.refresh_token_expire_in == before.refresh_token_expire_in
        data = await client.call(SHOP, "GET", "/authorization/202309/shops")
        assert data["shops"][0]["region"] == "US"
    finally:
        await http.aclose()
        await store.close()


async def test_conn5_the_sandbox_refuses_a_refresh_on_token_get(db_path, clock):
    """CONN-5: like TikTok, the sandbox refreshes only on token/refresh: a
    refresh sent to token/get (the old route shape) is refused with a code."""
    client, _sandbox, http, store = await _client_and_sandbox(db_path, clock)
    try:
        current = await client.credentials.get(SHOP)
        params = {
            "app_key": APP_KEY,
            "app_secret": APP_SECRET,
            "refresh_token": current.refresh_token,
            "grant_type": "refresh_token",
        }
        answer = (await http.get("/api/v2/token/get", params=params)).json()
        assert answer["code"] == 36009004 and "token/refresh" in answer["message"]
        wrong_grant = {**params, "grant_type": "authorized_code"}
        assert (await http.get("/api/v2/token/refresh", params=wrong_grant)).json()["code"] != 0
        assert (await http.get("/api/v2/token/refresh", params=params)).json()["code"] == 0
        rotated = (await http.get("/api/v2/token/refresh", params=params)).json()
        assert rotated["code"] == 36009004, "a refresh token works once"
    finally:
        await http.aclose()
        await store.close()


async def test_conn4_a_refused_refresh_makes_the_connection_inactive(db_path, clock):
    """CONN-4, CONN-5: when TikTok refuses the refresh (the refresh token lapsed
    or was revoked), the refresh command reports it and the shop goes inactive."""
    from adapters.tiktok_shop.commands import TikTokCommands
    from engine.outbox import OutboxCommand

    client, sandbox, http, store = await _client_and_sandbox(db_path, clock)
    try:
        sandbox.refresh_tokens.clear()  # TikTok no longer knows the refresh token
        command = OutboxCommand(1, SHOP, "refresh_access_token", {"shop": SHOP}, "k1", 0)
        [event] = await TikTokCommands(client).refresh_access_token(command)
        assert event["type"] == "connection.refresh_token_expired"
    finally:
        await http.aclose()
        await store.close()


# ------------------------------------------------------------------ property (CONN-2, CONN-6)

CHARTS = ChartSet.load([chart_package()])
NOW = 1_700_000_000
_offsets = st.sampled_from([-86400, -1, 0, 1, 3600, 86400, 3 * 86400, 7 * 86400, 60 * 86400])
CONNECTION_EVENTS = st.one_of(
    st.tuples(
        st.just("connection.start_setup"),
        st.fixed_dictionaries({"store_domain": st.just("s"), "store_country": st.just("US")}),
    ),
    st.tuples(st.just("connection.connect"), st.just({})),
    st.tuples(
        st.just("connection.choose_account_type"),
        st.fixed_dictionaries({"account_type": st.just("seller")}),
    ),
    st.tuples(
        st.just("connection.accept_terms"), st.fixed_dictionaries({"accepted": st.booleans()})
    ),
    st.tuples(
        st.just("connection.authorized"),
        st.fixed_dictionaries(
            {
                "shop_id": st.just("7495540735365777507"),
                "seller_base_region": st.sampled_from(["US", "US", "GB"]),
                "access_token_expire_in": _offsets,
                "refresh_token_expire_in": _offsets,
            }
        ),
    ),
    st.tuples(
        st.just("connection.token_refreshed"),
        st.fixed_dictionaries(
            {"access_token_expire_in": _offsets, "refresh_token_expire_in": _offsets}
        ),
    ),
    st.tuples(
        st.just("connection.authorization_expiring"),
        st.fixed_dictionaries({"expiration_time": _offsets}),
    ),
    st.tuples(st.just("connection.deauthorized"), st.just({})),
    st.tuples(st.just("connection.refresh_token_expired"), st.just({})),
    st.tuples(st.just("connection.app_uninstalled"), st.just({})),
    st.tuples(st.just("connection.disconnected"), st.just({})),
    st.tuples(st.just("advance"), st.sampled_from([1, 3600, 86400, 8 * 86400])),
    st.tuples(st.just("again"), st.integers(0, 50)),
)
_TIMES = ("access_token_expire_in", "refresh_token_expire_in", "expiration_time")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(CONNECTION_EVENTS, max_size=40))
def test_conn2_conn6_no_path_reaches_active_without_terms_after_the_last_end(steps):
    """CONN-2, CONN-6: over any sequence of connection events (duplicates and
    redeliveries, uninstall and reinstall, deauthorization, expiry timers firing),
    the shop is Active only if the terms were accepted after the last uninstall
    or disconnect, and then the terms are on record."""
    harness = ChartHarness(CHARTS, FakeClock(start=NOW))
    sent = []
    for kind, arg in steps:
        if kind == "advance":
            harness.clock.advance(arg)
            harness.fire_due_timers()
        elif kind == "again":
            if sent:
                event = sent[arg % len(sent)]
                harness.apply(event)  # the same delivery: a duplicate, changes nothing
                harness.send(event.type, SHOP, event.payload.model_dump())  # a redelivery
        else:
            now = int(harness.clock.now())
            payload = {k: now + v if k in _TIMES else v for k, v in arg.items()}
            event = harness.make(kind, SHOP, payload)
            sent.append(event)
            harness.apply(event)
            harness.fire_due_timers()

    terms_since_end = False
    for entry in harness.log:
        if entry.transitioned:
            kind = entry.event.type
            if kind == "connection.accept_terms":
                terms_since_end = True
            elif kind in ("connection.app_uninstalled", "connection.disconnected"):
                terms_since_end = False
            if entry.result.entity.state in ("authorized.active", "authorized.expiring"):
                assert terms_since_end, f"{kind} reached Active without the terms"
                assert "terms_accepted_at" in entry.result.entity.data


# ------------------------------------------------------------------ over loopback HTTP


async def test_conn4_conn6_over_http_warning_expiry_then_uninstall_and_reinstall(tmp_path):
    """CONN-4, CONN-6, over the sandboxes' HTTP: webhook 7 (its expiration time
    a string of digits) warns, the timer ends the authorization at that time,
    a re-authorization cures it; Shoplazza's app/uninstalled, confirmed by
    the store's revoked token, ends the connection, and the reinstall cannot
    start an authorization (CONN-7) until setup ran again with the terms."""
    from adapters.sandbox.story import SHOP as STORY_SHOP
    from adapters.sandbox.story import Sandboxes, authorize, connect_shop
    from adapters.tiktok_shop.oauth import AuthorizationRefused

    box = await Sandboxes.start(tmp_path / "loop.db")
    try:
        await connect_shop(box)
        service, engine = box.service, box.service.engine

        async def state() -> str:
            return (await engine.entity(STORY_SHOP)).state

        async def oauth():
            return await authorize(box)

        expires = int(box.clock.now()) + 2 * 86400
        box.tiktok.send_webhook(7, {"message": "expiring", "expiration_time": str(expires)})
        await box.settle()
        assert await state() == "authorized.expiring"
        await box.advance(2 * 86400 + 1)
        assert await state() == "inactive"
        assert (await oauth()).status_code == 200
        assert await state() == "authorized.active"

        box.shoplazza.uninstall()  # PLAT-9: confirmed by the revoked token's 401
        await box.settle()
        assert await state() == "not_connected"
        with pytest.raises(AuthorizationRefused, match="accept TikTok's data-usage terms"):
            await service.begin_authorization(STORY_SHOP)
        service.shoplazza.access_token = box.shoplazza.install()
        await service.merchant(
            "connection.start_setup", STORY_SHOP, {"store_domain": "d", "store_country": "US"}
        )
        await service.merchant("connection.connect", STORY_SHOP)
        await service.merchant("connection.choose_account_type", STORY_SHOP, {"account_type": "s"})
        await service.merchant("connection.accept_terms", STORY_SHOP, {"accepted": True})
        assert (await oauth()).status_code == 200
        assert await state() == "authorized.active"
    finally:
        await box.stop()


async def test_conn4_a_webhook_sent_before_the_last_authorization_does_not_end_it(connected):
    """CONN-4: a deauthorization or expiry warning TikTok sent before the shop
    was authorized again (a late, retried or reordered delivery) was about the
    replaced grant and leaves the new authorization alone; one sent after it
    counts."""
    channel = connected
    sent = channel.clock.now() - 60
    for kind, payload in (
        ("connection.deauthorized", {"message": "old"}),
        ("connection.authorization_expiring", {"expiration_time": int(sent) + 86400}),
    ):
        late = await channel.engine.publish(
            channel.engine.make_event(
                kind, SHOP, payload, event_id=f"late:{kind}", source="tiktok", occurred_at=sent
            )
        )
        assert late.outcome == "ignored" and "before the shop was last authorized" in late.reason
    assert await channel.state(SHOP) == "authorized.active"
    fresh = await channel.engine.publish(
        channel.engine.make_event(
            "connection.deauthorized",
            SHOP,
            {},
            event_id="fresh",
            source="tiktok",
            occurred_at=channel.clock.now(),
        )
    )
    assert fresh.to_state == "inactive"
