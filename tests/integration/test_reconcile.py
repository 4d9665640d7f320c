"""PLAT-8: nothing depends on a webhook arriving.

The scheduled pulls against both sandboxes over loopback HTTP: a change whose
webhook was dropped still reaches the channel, a change that arrives both ways
is applied once, and each pull's cursor outlives the process.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import from_json

from adapters.sandbox.story import SHOP, STORE, Sandboxes, connect_shop, play
from adapters.sandbox.tiktok import INVALID_PARAMETER
from adapters.sandbox.webhooks import Faults
from adapters.shoplazza.webhooks import product_event_id
from adapters.shoplazza.webhooks import translate as translate_shoplazza
from adapters.tiktok_shop.client import TikTokError
from adapters.tiktok_shop.puller import OVERLAP, order_event
from adapters.tiktok_shop.webhooks import (
    order_status_event_id,
    product_status_event_id,
    translate,
)
from channelsync.bootstrap import open_service
from engine import ChartSet, Engine, FakeClock
from engine.settings import EngineSettings
from engine.store.schema import MIGRATIONS
from engine.store.sqlite import SQLiteStore
from statecharts import chart_package
from statecharts.payloads import ORDER_STATUSES
from statecharts.views import region_status
from tests.channel.test_order_lifecycle_property import furthest, lifecycle_paths
from tests.integration.test_http import assert_story_outcome

SHIRT = "1001"


@pytest.fixture
async def box(tmp_path) -> AsyncIterator[Sandboxes]:
    started = await Sandboxes.start(tmp_path / "reconcile.db")
    started.pull = False  # the tests run the scheduled pulls themselves
    try:
        await connect_shop(started)
        yield started
    finally:
        await started.stop()


async def synced_shirt(box: Sandboxes) -> str:
    """The linen shirt added to the channel and approved on TikTok; its TikTok id."""
    await box.service.add_products(SHOP, [SHIRT])
    await box.settle()
    await box.advance(2 * 3600)
    listing = await box.service.engine.entity(f"listing:{STORE}:{SHIRT}")
    assert listing is not None and listing.state == "approved.selling"
    return listing.data["tiktok_product_id"]


async def restart(box: Sandboxes) -> None:
    """Stop the channel and open a new one on the same SQLite file and sandboxes."""
    config = box.service.config
    await box.service.stop()
    box.service = await open_service(config, clock=box.clock, run_loops=False, plugins=[])
    receiver = await box.service.serve()
    box.tiktok.webhooks.url = f"{receiver.url}/webhooks/tiktok"
    box.shoplazza.webhooks.url = f"{receiver.url}/webhooks/shoplazza"


def record_requests(box: Sandboxes) -> list[httpx.Request]:
    """Every request the channel's TikTok client sends from now on."""
    seen: list[httpx.Request] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(request)

    box.service.tiktok.http.event_hooks["request"].append(hook)
    return seen


def searches(requests: list[httpx.Request]) -> list[httpx.Request]:
    return [r for r in requests if r.url.path == "/order/202309/orders/search"]


async def order_state(box: Sandboxes, order_id: str) -> str | None:
    """The order's TikTok status: the state of its lifecycle region."""
    entity = await box.service.engine.entity(f"order:{order_id}")
    return None if entity is None else region_status(entity.state, "lifecycle")


# ---------------------------------------------------------------- Search Orders on the wire


async def test_plat8_search_orders_sends_paging_in_the_query_and_filters_in_the_body(box):
    """PLAT-8: Search Orders takes page_size, page_token, sort_field, sort_order and
    shop_cipher in the query and the time filters in the JSON body."""
    shirt = await synced_shirt(box)
    order = box.tiktok.create_order([{"product_id": shirt, "seller_sku": "SKU-1001"}])["id"]
    requests = record_requests(box)
    await box.service.reconcile_once()
    assert await order_state(box, order) == "unpaid"
    [search] = searches(requests)
    query = dict(search.url.params)
    body = from_json(search.content)
    assert query["page_size"] == "100" and query["shop_cipher"] == box.tiktok.shop.cipher
    assert (query["sort_field"], query["sort_order"]) == ("update_time", "ASC")
    assert not {"update_time_ge", "update_time_lt", "create_time_ge"} & set(query)
    assert set(body) == {"update_time_ge"} and isinstance(body["update_time_ge"], int)
    assert body["update_time_ge"] <= box.tiktok.orders[order]["update_time"]


async def test_plat8_search_orders_is_followed_page_by_page_to_the_end(box):
    """PLAT-8: 150 orders whose webhooks were all lost take two pages of 100;
    the pull follows next_page_token and brings in every one."""
    box.tiktok.faults.drop = 1.0
    orders = [box.tiktok.create_order([{"product_id": "1"}])["id"] for _ in range(150)]
    requests = record_requests(box)
    assert await box.service.reconcile_once() == 150
    pages = searches(requests)
    assert len(pages) == 2 and "page_token" in dict(pages[1].url.params)
    states = {
        e.key: region_status(e.state, "lifecycle")
        for e in await box.service.engine.entities(chart="order")
    }
    assert states == {f"order:{order}": "unpaid" for order in orders}


@pytest.mark.parametrize(
    ("query", "body", "named"),
    [
        ({"page_size": 10, "update_time_ge": 0}, {}, "update_time_ge"),
        ({"page_size": 10}, {"page_size": 10}, "page_size"),
        ({}, {"update_time_ge": 0}, "page_size"),
        ({"page_size": 10}, {"update_time_ge": "yesterday"}, "update_time_ge"),
    ],
)
async def test_plat10_the_sandbox_refuses_a_search_with_its_parameters_misplaced(
    box, query: dict[str, Any], body: dict[str, Any], named: str
):
    """PLAT-10: a filter in the query, paging in the body, a missing page_size or
    a time that is not an integer is refused with a typed error naming it, where
    TikTok would silently answer unfiltered."""
    with pytest.raises(TikTokError) as refused:
        await box.service.tiktok.call(
            SHOP, "POST", "/order/202309/orders/search", query=query, body=body
        )
    assert refused.value.code == INVALID_PARAMETER and not refused.value.retryable
    assert named in str(refused.value)


# ---------------------------------------------------------------- lost webhooks


async def test_plat8_an_order_status_whose_webhook_was_lost_reaches_the_order(box):
    """PLAT-8: the buyer pays, the ORDER_STATUS_CHANGE webhook is lost, and the
    order still shows On Hold after the scheduled pull."""
    shirt = await synced_shirt(box)
    order = box.tiktok.create_order([{"product_id": shirt, "seller_sku": "SKU-1001"}])["id"]
    await box.settle()
    box.tiktok.faults.drop = 1.0
    box.tiktok.order_action(order, "pay")
    await box.settle()
    assert await order_state(box, order) == "unpaid", "the webhook was dropped"
    assert await box.service.reconcile_once() >= 1
    await box.settle()
    assert await order_state(box, order) == "on_hold"


async def test_plat8_a_review_result_whose_webhook_was_lost_reaches_the_listing(box):
    """PLAT-8, PROD-2: TikTok approves the product, the audit webhook is lost, and
    the listing shows Approved after one pull, before its review poll is due."""
    await box.service.add_products(SHOP, [SHIRT])
    await box.settle()
    box.tiktok.faults.drop = 1.0
    box.clock.advance(box.tiktok.review_seconds + 1)
    box.tiktok.tick()  # TikTok reviews it; the webhook goes nowhere
    listing = f"listing:{STORE}:{SHIRT}"
    assert (await box.service.engine.entity(listing)).state == "in_review.reviewing"
    await box.service.reconcile_once()
    assert (await box.service.engine.entity(listing)).state == "approved.selling"


async def test_plat8_a_product_update_whose_webhook_was_dropped_reaches_the_listing(box):
    """PLAT-8, PROD-6: the merchant changes the price in Shoplazza, the
    products/update webhook is lost, and the new price still reaches the listing
    and goes out to TikTok."""
    await synced_shirt(box)
    box.shoplazza.faults.drop = 1.0
    box.shoplazza.product_action(SHIRT, "update", price="29.00")
    await box.settle()
    listing = f"listing:{STORE}:{SHIRT}"
    before = await box.service.engine.entity(listing)
    assert before.data["product"]["variants"][0]["price"] == "24.00", "the webhook was dropped"
    assert await box.service.reconcile_once() >= 1
    after = await box.service.engine.entity(listing)
    assert after.data["product"]["variants"][0]["price"] == "29.00"
    await box.advance(3600)  # the quick-update window closes
    prices = [c for c in box.tiktok.calls if c[1].endswith("/prices/update")]
    assert prices, "the new price was sent to TikTok"


async def test_plat8_stock_moved_without_any_webhook_reaches_the_listing(box):
    """PLAT-8: stock changes that move neither the product's updated_at nor send
    a products/update are found by comparing the stock itself."""
    await synced_shirt(box)
    box.shoplazza.adjust_inventory(SHIRT, f"{SHIRT}-1", 3)
    assert await box.service.reconcile_once() == 1
    listing = await box.service.engine.entity(f"listing:{STORE}:{SHIRT}")
    assert listing.data["product"]["variants"][0]["inventory_quantity"] == 3
    assert await box.service.reconcile_once() == 0, "nothing left to reconcile"


async def test_plat8_plat9_a_deletion_whose_webhook_was_dropped_deactivates_the_listing(box):
    """PLAT-8, PROD-8, PLAT-9: the merchant deletes the product in Shoplazza,
    products/delete is lost; the stock sweep misses it in the list, Shoplazza
    confirms the 404, and the listing is deactivated on TikTok; the webhook
    delivered late reports a deletion that is already done: it changes nothing."""
    tiktok_id = await synced_shirt(box)
    box.shoplazza.faults.drop = 1.0
    box.shoplazza.product_action(SHIRT, "delete")
    await box.service.reconcile_once()
    await box.settle()
    listing = await box.service.engine.entity(f"listing:{STORE}:{SHIRT}")
    assert listing.state == "deactivated"
    assert box.tiktok.products[tiktok_id]["status"] == "SELLER_DEACTIVATED"
    late = json.dumps({"product": {"id": SHIRT}}).encode()
    [webhook] = translate_shoplazza("products/delete", box.shoplazza.domain, late)
    assert webhook["type"] == "connection.deletion_reported"
    await box.service.engine.publish(webhook)
    await box.settle()
    history = await box.service.engine.history(f"listing:{STORE}:{SHIRT}")
    assert [e["to_state"] for e in history].count("deactivated") == 1
    assert (await box.service.engine.entity(f"listing:{STORE}:{SHIRT}")).state == "deactivated"


async def test_plat9_a_product_missing_from_one_list_answer_is_not_taken_for_deleted(box):
    """PLAT-9: absence from a list answer alone never deactivates anything."""
    await synced_shirt(box)
    # The list answer leaves it out (its id there differs); asked by id, it is there.
    box.shoplazza.products[SHIRT] = {**box.shoplazza.products[SHIRT], "id": "elsewhere"}
    await box.service.reconcile_once()
    listing = await box.service.engine.entity(f"listing:{STORE}:{SHIRT}")
    assert listing.state == "approved.selling"


async def test_plat8_a_fulfillment_whose_webhook_was_dropped_is_pushed_to_tiktok(box):
    """PLAT-8, LOGI-1: the merchant ships in Shoplazza, orders/update is lost, and
    the tracking still goes to TikTok, once."""
    shirt = await synced_shirt(box)
    order = box.tiktok.create_order([{"product_id": shirt, "seller_sku": "SKU-1001"}])["id"]
    await box.settle()
    box.tiktok.order_action(order, "pay")
    await box.advance(3600)  # the hold ends
    assert await order_state(box, order) == "awaiting_shipment"
    box.shoplazza.faults.drop = 1.0
    box.shoplazza.fulfill(await box.shoplazza_order_id(order), "9400111899223197428490", "usps")
    await box.settle()
    assert box.tiktok.package_calls == [], "the webhook was dropped"
    await box.service.reconcile_once()
    await box.settle()
    assert box.tiktok.package_calls == [order]
    assert await order_state(box, order) == "in_transit"


# ---------------------------------------------------------------- both ways, applied once


async def test_plat8_an_order_change_delivered_both_ways_is_applied_once(box):
    """PLAT-8, PLAT-3: the pull finds the payment first; the webhook that comes
    later is the same event, recorded as a duplicate."""
    shirt = await synced_shirt(box)
    order = box.tiktok.create_order([{"product_id": shirt, "seller_sku": "SKU-1001"}])["id"]
    await box.settle()
    box.tiktok.order_action(order, "pay")  # the webhook waits in TikTok's queue
    await box.service.reconcile_once()
    assert await order_state(box, order) == "on_hold"
    await box.tiktok.webhooks.flush()
    change = order_status_event_id(order, "ON_HOLD", box.tiktok.orders[order]["update_time"])
    engine = box.service.engine
    assert await engine.store.duplicate_count(change) == 1
    on_hold = [e for e in await engine.history(f"order:{order}") if e["event_id"] == change]
    assert len(on_hold) == 1 and on_hold[0]["outcome"] == "transitioned"


async def test_plat8_a_product_update_delivered_both_ways_is_applied_once(box):
    """PLAT-8: products/update and the product list name the same change alike."""
    await synced_shirt(box)
    box.shoplazza.product_action(SHIRT, "update", price="31.00")  # webhook not yet sent
    assert await box.service.reconcile_once() == 1
    await box.shoplazza.webhooks.flush()
    engine = box.service.engine
    updates = [
        e
        for e in await engine.history(f"listing:{STORE}:{SHIRT}")
        if e["type"] == "listing.product_updated"
    ]
    assert len(updates) == 1
    assert await engine.store.duplicate_count(updates[0]["event_id"]) == 1


async def test_plat8_a_fulfillment_delivered_both_ways_is_pushed_once(box):
    shirt = await synced_shirt(box)
    order = box.tiktok.create_order([{"product_id": shirt, "seller_sku": "SKU-1001"}])["id"]
    await box.settle()
    box.tiktok.order_action(order, "pay")
    await box.advance(3600)
    box.shoplazza.fulfill(await box.shoplazza_order_id(order), "9400111899223197428490", "usps")
    await box.service.reconcile_once()  # before the webhook is delivered
    await box.settle()
    engine = box.service.engine
    shipped = [
        e
        for e in await engine.history(f"order:{order}")
        if e["type"] == "order.shoplazza_fulfilled"
    ]
    assert len(shipped) == 1 and await engine.store.duplicate_count(shipped[0]["event_id"]) == 1
    assert box.tiktok.package_calls == [order]


# ---------------------------------------------------------------- cursors


async def test_plat8_the_pull_cursor_survives_a_restart(box):
    """PLAT-8: the channel is down for two days; the payment made at its start,
    whose webhook was lost, is found by the first pull after the restart, which
    resumes from the stored cursor (not from a guess of how long it was down)."""
    shirt = await synced_shirt(box)
    order = box.tiktok.create_order([{"product_id": shirt, "seller_sku": "SKU-1001"}])["id"]
    await box.settle()
    await box.service.reconcile_once()
    cursor = await box.service.engine.store.cursor(f"tiktok:orders:{SHOP}")
    assert cursor is not None

    box.tiktok.faults.drop = 1.0
    await box.service.stop()
    box.tiktok.order_action(order, "pay")  # the webhooks find nobody
    box.clock.advance(3601)
    box.tiktok.tick()  # the hour On Hold ends: Awaiting Shipment, two days ago
    box.clock.advance(2 * 86400)

    await restart(box)
    requests = record_requests(box)
    await box.service.reconcile_once()
    [search] = searches(requests)
    assert from_json(search.content)["update_time_ge"] == int(cursor) - OVERLAP
    assert await order_state(box, order) == "awaiting_shipment"


async def test_plat8_every_source_keeps_a_cursor_in_the_database(box):
    """PLAT-8: orders, product statuses, Shoplazza products, stock and
    fulfillments each keep their place in the SQLite file."""
    await synced_shirt(box)
    await box.service.reconcile_once()
    store = box.service.engine.store
    names = {row[0] for row in await store.fetchall("SELECT name FROM cursors")}
    assert names == {
        f"tiktok:orders:{SHOP}",
        f"tiktok:products:{SHOP}",
        f"shoplazza:products:{STORE}",
        f"shoplazza:stock:{STORE}",
        f"shoplazza:fulfillments:{STORE}",
    }


# ---------------------------------------------------------------- the dedup rule, for all inputs

tiktok_ids = st.integers(min_value=1, max_value=2**63 - 1)
times = st.integers(min_value=0, max_value=2**31 - 1)


class NoDirectory:
    async def shop_key(self, tiktok_shop_id: str) -> str | None:
        return None

    async def listing_key(self, tiktok_product_id: str) -> str | None:
        return f"listing:{STORE}:{tiktok_product_id}"


def order_webhook(order_id: int, as_number: bool, status: str, update_time: int, nid: int) -> bytes:
    data = {
        "order_id": order_id if as_number else str(order_id),
        "order_status": "CANCEL" if status == "CANCELLED" and nid % 2 else status,
        "is_on_hold_order": bool(nid % 3),
        "update_time": update_time,
    }
    envelope = {
        "type": 1,
        "tts_notification_id": str(nid),
        "shop_id": "7495540735365777507",
        "data": data,
    }
    return json.dumps(envelope).encode()


@settings(max_examples=200, deadline=None)
@given(
    order_id=tiktok_ids,
    as_number=st.booleans(),
    status=st.sampled_from(ORDER_STATUSES),
    update_time=times,
    notification=st.integers(min_value=0, max_value=2**62),
)
async def test_plat8_plat6_a_webhook_and_the_pull_of_one_order_change_are_one_event(
    order_id, as_number, status, update_time, notification
):
    """PLAT-8, PLAT-6: whatever the notification id, whether the order id comes as
    a JSON number or a string (at its 64-bit limit too), and whichever spelling of
    the cancelled status the webhook uses, the webhook and Search Orders name the
    change alike."""
    body = order_webhook(order_id, as_number, status, update_time, notification)
    [delivered] = await translate(body, NoDirectory())
    pulled = order_event(
        {"id": str(order_id), "status": status, "update_time": update_time}, "7495540735365777507"
    )
    assert delivered["event_id"] == pulled["event_id"]
    assert delivered["entity"] == pulled["entity"] == f"order:{order_id}"


@settings(max_examples=200, deadline=None)
@given(
    order_id=tiktok_ids,
    first=st.tuples(st.sampled_from(ORDER_STATUSES), times),
    second=st.tuples(st.sampled_from(ORDER_STATUSES), times),
)
def test_plat8_two_different_order_changes_never_share_an_event_id(order_id, first, second):
    """PLAT-8: equal update_times with different statuses (ORD-9's case), or one
    status at two times, are two changes: neither is taken for a duplicate."""
    ids = {order_status_event_id(str(order_id), s, t) for s, t in (first, second)}
    assert len(ids) == (1 if first == second else 2)


@settings(max_examples=100, deadline=None)
@given(
    product_id=tiktok_ids,
    audit=st.sampled_from(["APPROVED", "FAILED", "AUDITING"]),
    update_time=times,
)
async def test_plat8_an_audit_webhook_and_the_product_search_name_a_review_alike(
    product_id, audit, update_time
):
    """PLAT-8: webhook 37's audit status and Search Products' status of the same
    review give one event id, so the second to arrive is a duplicate."""
    body = json.dumps(
        {
            "type": 37,
            "tts_notification_id": "1",
            "shop_id": "7495540735365777507",
            "data": {
                "product_id": product_id,
                "audit": {"status": audit},
                "update_time": update_time,
            },
        }
    ).encode()
    [delivered] = await translate(body, NoDirectory())
    searched = {"APPROVED": "ACTIVATE", "FAILED": "FAILED", "AUDITING": "PENDING"}[audit]
    assert delivered["event_id"] == product_status_event_id(str(product_id), searched, update_time)


prices = st.decimals(min_value="0.01", max_value="7600", places=2).map(str)
variants = st.fixed_dictionaries(
    {
        "id": st.text("abc123-", min_size=1, max_size=8),
        "sku": st.text(min_size=0, max_size=8),
        "price": prices,
        "inventory_quantity": st.integers(min_value=0, max_value=99999),
        "weight": st.none() | st.floats(min_value=0, max_value=100, allow_nan=False),
        "weight_unit": st.sampled_from(["kg", "lb", "g"]),
    }
)
products = st.fixed_dictionaries(
    {
        "id": st.text("0123456789abcdef-", min_size=1, max_size=12),
        "title": st.text(max_size=20),
        "description": st.text(max_size=20),
        "published": st.booleans(),
        "images": st.lists(
            st.fixed_dictionaries({"src": st.text(max_size=12), "width": st.integers(1, 4000)}),
            max_size=3,
        ),
        "variants": st.lists(variants, min_size=1, max_size=3),
        "collection_ids": st.lists(st.text(max_size=5), max_size=2),
        "updated_at": st.sampled_from(["2026-11-29T17:52:29+00:00", "2026-11-29T17:52:30+00:00"]),
    }
)


@settings(max_examples=200, deadline=None)
@given(
    product=products,
    extras=st.dictionaries(
        st.sampled_from(["handle", "vendor", "tags", "created_at"]), st.text(max_size=5)
    ),
    data=st.data(),
)
def test_plat8_a_product_change_is_named_by_what_the_channel_reads(product, extras, data):
    """PLAT-8: the list's copy of a product (with fields the webhook lacks, keys in
    another order) names the change like products/update does; a change of price,
    stock, title or publishing within the same second of updated_at is another
    change, never mistaken for a duplicate."""
    listed = dict(reversed(list({**product, **extras}.items())))
    assert product_event_id(listed) == product_event_id(product)
    field = data.draw(st.sampled_from(["price", "inventory_quantity", "title", "published"]))
    edited = json.loads(json.dumps(product))
    if field == "price":
        edited["variants"][0]["price"] = str(float(edited["variants"][0]["price"]) + 1)
    elif field == "inventory_quantity":
        edited["variants"][0]["inventory_quantity"] += 1
    elif field == "title":
        edited["title"] += "!"
    else:
        edited["published"] = not edited["published"]
    assert product_event_id(edited) != product_event_id(product)


async def test_plat8_a_failing_source_keeps_its_cursor_and_the_others_still_run(box):
    """PLAT-8: with Shoplazza answering 500 to everything, its cursors stay where
    they were (nothing it should have covered is skipped), and TikTok's pull
    still brings the lost payment in."""
    shirt = await synced_shirt(box)
    await box.service.reconcile_once()
    store = box.service.engine.store
    before = {name: await store.cursor(name) for name in SHOPLAZZA_CURSORS}
    order = box.tiktok.create_order([{"product_id": shirt, "seller_sku": "SKU-1001"}])["id"]
    box.tiktok.faults.drop = 1.0
    box.tiktok.order_action(order, "pay")
    box.shoplazza.faults.api_failure = 1.0
    box.service.shoplazza.base_delay = 0.01
    box.clock.advance(600)
    await box.service.reconcile_once()
    assert await order_state(box, order) == "on_hold"
    assert {name: await store.cursor(name) for name in SHOPLAZZA_CURSORS} == before
    assert await store.cursor(f"tiktok:orders:{SHOP}") == str(int(box.clock.now()))


SHOPLAZZA_CURSORS = (
    f"shoplazza:products:{STORE}",
    f"shoplazza:stock:{STORE}",
    f"shoplazza:fulfillments:{STORE}",
)


async def test_plat8_a_cursor_is_kept_across_reopening_and_an_older_file_gains_the_table(
    tmp_path,
):
    """PLAT-8: the store keeps named cursors; a database written before cursors
    existed (schema version 2) is upgraded on open and keeps its events."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for version, migration in enumerate(MIGRATIONS[:2], start=1):
            old.executescript(migration)
            old.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    store = await SQLiteStore.open(path)
    try:
        assert await store.cursor("tiktok:orders:shop:a") is None
        await store.save_cursor("tiktok:orders:shop:a", "100", 100.0)
        await store.save_cursor("tiktok:orders:shop:a", "160", 160.0)
        await store.save_cursor("shoplazza:stock:a", "", 160.0)
    finally:
        await store.close()
    store = await SQLiteStore.open(path)
    try:
        assert await store.cursor("tiktok:orders:shop:a") == "160"
        assert await store.cursor("shoplazza:stock:a") == ""
    finally:
        await store.close()


@pytest.mark.parametrize("seed", [3, 5])
async def test_plat8_the_story_reaches_its_end_with_webhooks_lost_on_both_sides(tmp_path, seed):
    """PLAT-8: every Shoplazza webhook lost and a third of TikTok's, others
    duplicated or reordered: the scheduled pulls make up for them, and every
    product and order still reaches its right final state, the shipment that
    only Shoplazza's lost orders/update announced included."""
    faults = Faults(drop=0.3, duplicate=0.3, reorder=0.3)
    box = await Sandboxes.start(tmp_path / "lossy.db", faults=faults, seed=seed)
    box.shoplazza.faults.drop = 1.0
    try:
        ids = await play(box)
        await box.advance(3 * 3600)
        await assert_story_outcome(box, ids)
        assert box.shoplazza.webhooks.sent == 0 and box.shoplazza.webhooks.dropped > 0
        assert box.tiktok.webhooks.dropped > 0
    finally:
        await box.stop()


async def test_plat8_serve_runs_both_pulls_on_their_own(box):
    """PLAT-8: with its loops running, the channel pulls both platforms by itself:
    a lost payment and a lost price change arrive without anyone asking."""
    shirt = await synced_shirt(box)
    order = box.tiktok.create_order([{"product_id": shirt, "seller_sku": "SKU-1001"}])["id"]
    await box.settle()
    box.tiktok.faults.drop = box.shoplazza.faults.drop = 1.0
    box.tiktok.order_action(order, "pay")
    box.shoplazza.product_action(SHIRT, "update", price="27.00")
    config = replace(box.service.config, pull_interval=0.05, shoplazza_pull_interval=0.05)
    await box.service.stop()
    box.service = await open_service(config, clock=box.clock, plugins=[])
    listing = f"listing:{STORE}:{SHIRT}"
    for _ in range(200):
        product = (await box.service.engine.entity(listing)).data["product"]
        if (
            await order_state(box, order) == "on_hold"
            and product["variants"][0]["price"] == "27.00"
        ):
            break
        await asyncio.sleep(0.05)
    assert await order_state(box, order) == "on_hold"
    assert product["variants"][0]["price"] == "27.00"


CHANNEL_CHARTS = ChartSet.load([chart_package()])


@st.composite
def both_ways(draw: st.DrawFn) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """A TikTok order's status path, and its changes as they arrive: each by
    webhook or by pull, any number of times, in any order, some never."""
    path = draw(lifecycle_paths())
    arrivals = draw(
        st.lists(
            st.tuples(st.sampled_from(["webhook", "pull"]), st.integers(0, len(path) - 1)),
            min_size=1,
            max_size=4 * len(path),
        )
    )
    return path, arrivals


@settings(max_examples=40, deadline=None)
@given(case=both_ways(), notifications=st.randoms(use_true_random=False))
async def test_plat8_every_change_is_applied_once_however_it_arrives(
    tmp_path_factory, case, notifications
):
    """PLAT-8, PLAT-3, ORD-8: whatever mix of webhooks (each with its own
    notification id) and pulls brings an order's changes, each change is one
    event in the log and every other arrival of it a duplicate; the order ends
    at the furthest change that arrived (newest, then furthest along at equal times: ORD-9)."""
    path, arrivals = case
    engine = await Engine.open(
        tmp_path_factory.mktemp("both") / "both.db",
        charts=CHANNEL_CHARTS,
        clock=FakeClock(),
        settings=EngineSettings(run_timers=False, run_outbox=False),
    )
    try:
        for how, index in arrivals:
            status, update_time = path[index]
            if how == "webhook":
                nid = notifications.randrange(2**62)
                body = order_webhook(576486316948490001, nid % 2 == 0, status, update_time, nid)
                [event] = await translate(body, NoDirectory())
            else:
                order = {"id": "576486316948490001", "status": status, "update_time": update_time}
                event = order_event(order, "7495540735365777507")
            await engine.publish(event)
        history = await engine.history("order:576486316948490001")
        # A change is a status at an update time: a path that comes back to the
        # same status within one second names that change twice.
        arrived = {path[index] for _, index in arrivals}
        assert len(history) == len(arrived), "one event per change, however often it came"
        duplicates = await engine.store.count("duplicates")
        assert duplicates == len(arrivals) - len(arrived)
        final = await engine.entity("order:576486316948490001")
        expected, _ = furthest(path, sorted({index for _, index in arrivals}))
        assert region_status(final.state, "lifecycle") == expected.lower()
    finally:
        await engine.stop()


async def test_sec5_pulled_orders_whose_ids_are_not_tiktoks_are_dead_letters(box):
    """SEC-5, PLAT-8: Search Orders answering with order ids that are not TikTok
    ids (a path, a word, a leading zero): each is a dead letter with the
    reason, no order entity and no command; a genuine order in the same pass
    is pulled as usual."""
    box.tiktok.faults.drop = 1.0  # no webhook: only the pull can find them
    bad = ["../../etc/passwd", "True", "0123"]
    for order_id in bad:
        box.tiktok.create_order([{"product_id": "1", "seller_sku": "x"}], order_id=order_id)
    good = box.tiktok.create_order([{"product_id": "1", "seller_sku": "x"}])["id"]
    engine = box.service.engine
    commands_before = await engine.store.count("outbox")
    await box.service.puller.pull_once()
    assert await engine.entity(f"order:{good}") is not None
    for order_id in bad:
        assert await engine.entity(f"order:{order_id}") is None
    refused = [d for d in await engine.dead_letters() if d.source == "tiktok-pull"]
    assert len(refused) == len(bad)
    assert all("InvalidId" in d.error and "order id" in d.error for d in refused)
    owned = await engine.store.fetchall(
        "SELECT COUNT(*) FROM outbox WHERE entity LIKE 'order:%' AND entity != ?",
        (f"order:{good}",),
    )
    assert owned[0][0] == 0, "no command for a refused order"
    assert await engine.store.count("outbox") > commands_before, "the genuine order's work"
