"""TikTok webhook translation: PLAT-3 event ids, PLAT-6 exact ids, the docs' quirks."""

from __future__ import annotations

import json

import pytest

from adapters.tiktok_shop.webhooks import WebhookRejected, translate
from engine.charts.configuration import is_active
from tests.adapters.test_signing import DOC_BODY


class Directory:
    async def shop_key(self, tiktok_shop_id):
        return "shop:demo-store" if tiktok_shop_id == "7495540735365777507" else None

    async def listing_key(self, tiktok_product_id):
        return {"576486316948490001": "listing:demo-store:p1"}.get(tiktok_product_id)


async def test_plat3_plat8_the_documented_order_webhook_becomes_one_deduplicable_event():
    """PLAT-3, PLAT-8: the event id names the change (order, status, update_time), so
    a redelivery, and the scheduled pull of the same change, is a duplicate."""
    [event] = await translate(DOC_BODY, Directory())
    assert event["event_id"] == "tiktok:order:576653688135258178:UNPAID:1718305585"
    assert event["entity"] == "order:576653688135258178"
    assert event["payload"]["order_status"] == "UNPAID" and event["payload"]["is_on_hold_order"]


async def test_plat3_a_webhook_without_a_notification_id_gets_a_content_hash_id():
    """PLAT-3: the docs' type-3 example has no tts_notification_id."""
    body = b'{"type":3,"shop_id":"7495540735365777507","data":{"order_id":"576","update_time":1}}'
    [first] = await translate(body, Directory())
    [again] = await translate(body, Directory())
    assert first["event_id"].startswith("tiktok:sha256:") and first["event_id"] == again["event_id"]


async def test_plat6_integer_product_ids_stay_exact():
    """PLAT-6: product_id 576486316948490001 as a JSON number keeps every digit."""
    body = (
        b'{"type":37,"tts_notification_id":"n1","shop_id":"7495540735365777507",'
        b'"data":{"product_id":576486316948490001,"audit":{"status":"APPROVED"},"update_time":5}}'
    )
    [event] = await translate(body, Directory())
    assert event["entity"] == "listing:demo-store:p1"
    assert event["payload"]["status"] == "ACTIVATE"


async def test_audit_failed_and_status_change_fetch_the_product():
    body = json.dumps(
        {
            "type": 37,
            "tts_notification_id": "n2",
            "shop_id": "7495540735365777507",
            "data": {
                "product_id": 576486316948490001,
                "audit": {"status": "FAILED", "pre_approved_reason": "x"},
            },
        }
    ).encode()
    [event] = await translate(body, Directory())
    assert event["type"] == "listing.status_notified"


async def test_deauthorization_and_expiry_warning_reach_the_connection():
    body = (
        b'{"type":7,"tts_notification_id":"n3","shop_id":"7495540735365777507",'
        b'"data":{"message":"expiring","expiration_time":"1721836800"}}'
    )
    [event] = await translate(body, Directory())
    assert event["entity"] == "shop:demo-store"
    assert event["type"] == "connection.authorization_expiring"


async def test_bodies_that_are_not_webhooks_are_rejected_with_a_reason():
    for body in (b"{not json", b'{"type":1}', b'{"type":6,"shop_id":"1","data":{}}'):
        with pytest.raises(WebhookRejected):
            await translate(body, Directory())


async def test_plat3_a_cancel_webhook_spelled_cancel_cancels_the_order_once(db_path, clock):
    """PLAT-3: the docs' CANCEL spelling cancels the order; a redelivery is a duplicate."""
    from tests.channel.harness import Channel, product

    channel = await Channel.open(db_path, clock)
    try:
        await channel.connect()
        await channel.add_products(product("p1"))
        await channel.approve("p1")
        pid = await channel.tiktok_product_id("p1")
        channel.tiktok_order("576653688135258178", product_ids=(pid,))
        await channel.order_status("576653688135258178", "AWAITING_SHIPMENT", 1718305000)
        body = DOC_BODY.replace(b'"UNPAID"', b'"CANCEL"').replace(b"7380066284010030890", b"99")
        [event] = await translate(body, Directory())
        first = await channel.engine.publish(event)
        again = await channel.engine.publish(event)
        assert again.outcome == "duplicate"
        assert is_active(first.to_state or "", "lifecycle.cancelled")
    finally:
        await channel.engine.stop()


async def test_prod7_the_category_change_webhook_reads_current_category_id():
    """PROD-7: type 18 names the new category `current_category_id` (and the old one
    `previous_category_id`); the listing is told the current one."""
    body = json.dumps(
        {
            "type": 18,
            "tts_notification_id": "n18",
            "shop_id": "7495540735365777507",
            "timestamp": 1_700_000_000,
            "data": {
                "product_id": "576486316948490001",
                "previous_category_id": "600001",
                "current_category_id": "601226",
                "update_time": 1_700_000_000,
            },
        }
    ).encode()
    [event] = await translate(body, Directory())
    assert event["type"] == "listing.category_changed"
    assert event["entity"] == "listing:demo-store:p1"
    assert event["payload"]["category_id"] == "601226"
    assert event["payload"]["previous_category_id"] == "600001"
    assert event["payload"]["update_time"] == 1_700_000_000
