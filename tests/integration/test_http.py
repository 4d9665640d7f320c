"""The engine, the receiver and both sandboxes over real HTTP on loopback."""

from __future__ import annotations

import httpx
import pytest

from adapters.sandbox.story import HATS_AND_CAPS, SHOP, STORE, Sandboxes, play
from adapters.sandbox.webhooks import Faults
from channelsync.bootstrap import open_service
from channelsync.settings import ChannelSettings, ConfigError
from tests.adapters.test_signing import DOC_BODY


@pytest.fixture
async def box(tmp_path):
    started = await Sandboxes.start(tmp_path / "http.db")
    try:
        yield started
    finally:
        await started.stop()


async def test_plat1_the_documented_webhook_gets_200_and_a_changed_byte_401(tmp_path):
    """PLAT-1: the docs' known-answer webhook (app key abcdef, secret 123) is
    accepted; the same body with one byte changed gets 401 and nothing is recorded."""
    config = ChannelSettings(
        db=tmp_path / "kat.db",
        tiktok_app_key="abcdef",
        tiktok_app_secret="123",
        shoplazza_client_secret="s",
        pull_interval=0,
    )
    service = await open_service(config, run_loops=False)
    server = await service.serve()
    try:
        async with httpx.AsyncClient() as client:
            url = f"{server.url}/webhooks/tiktok"
            signature = "5dec0f11ec2f6783b8deee53c9ffbf8d024302f7c7e7fa55a35d17629031ac05"
            tampered = DOC_BODY.replace(b'"UNPAID"', b'"UNPAIE"')
            refused = await client.post(url, content=tampered, headers={"Authorization": signature})
            assert refused.status_code == 401 and refused.content == b""
            missing = await client.post(url, content=DOC_BODY)
            assert missing.status_code == 401
            assert await service.engine.store.count("events") == 0
            assert await service.engine.store.count("dead_letters") == 0, "nothing recorded"
            accepted = await client.post(
                url, content=DOC_BODY, headers={"Authorization": signature}
            )
            assert accepted.status_code == 200 and accepted.content == b""
            [event] = await service.engine.history("order:576653688135258178")
            change = "tiktok:order:576653688135258178:UNPAID:1718305585"
            assert event["event_id"] == change
            again = await client.post(url, content=DOC_BODY, headers={"Authorization": signature})
            assert again.status_code == 200
            assert await service.engine.store.duplicate_count(change) == 1
    finally:
        await service.stop()


async def test_plat3_a_body_that_is_not_json_gets_400_and_is_kept(box):
    """PLAT-3: bad input is kept as a dead letter, never lost."""
    from adapters.tiktok_shop import webhook_signature

    body = b"{this is not json"
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            f"{box.service.http.url}/webhooks/tiktok",
            content=body,
            headers={
                "Authorization": webhook_signature(box.tiktok.app_key, box.tiktok.app_secret, body)
            },
        )
    assert answer.status_code == 400
    [letter] = await box.service.engine.dead_letters()
    assert letter.raw == "{this is not json" and letter.source == "tiktok"


async def test_health_endpoint(box):
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"{box.service.http.url}/health")
    assert answer.json()["status"] == "ok"


async def assert_story_outcome(box: Sandboxes, ids: dict[str, str]) -> None:
    engine = box.service.engine
    states = {e.key: e.state for e in await engine.entities()}
    assert states[SHOP] == "authorized.active"
    assert {k: v for k, v in states.items() if k.startswith("listing:")} == {
        f"listing:{STORE}:1001": "approved.selling",
        f"listing:{STORE}:1002": "approved.selling",
        f"listing:{STORE}:1003": "rejected.failing_checks",
        f"listing:{STORE}:1004": "rejected.by_tiktok",
    }
    # PROD-7: the hat went to TikTok in the category the merchant chose.
    hat = box.tiktok.products[await box.tiktok_product_id("1002")]
    assert hat["category_id"] == HATS_AND_CAPS
    # PROD-8, PROD-11: the shirt was deactivated when unpublished, then sold again.
    shirt_states = [h["to_state"] for h in await engine.history(f"listing:{STORE}:1001")]
    assert "deactivated" in shirt_states and shirt_states[-1] == "approved.selling"
    assert box.tiktok.products[await box.tiktok_product_id("1001")]["status"] == "ACTIVATE"
    shipped = await engine.entity(f"order:{ids['shipped']}")
    cancelled = await engine.entity(f"order:{ids['cancelled']}")
    # The order's regions: TikTok's status, the Shoplazza copy, the push.
    assert shipped.state == "lifecycle.in_transit,sync.synced,fulfillment.pushed.sent"
    assert cancelled.state.startswith("lifecycle.cancelled,")
    # Each TikTok order exists once in Shoplazza; the cancelled one is cancelled there.
    by_tiktok = {}
    for order in box.shoplazza.orders.values():
        tiktok_id = next(t for t in order["tags"].split(",") if t.startswith("tiktok_order:"))
        assert tiktok_id not in by_tiktok, "an order was created twice in Shoplazza"
        by_tiktok[tiktok_id] = order
    assert set(by_tiktok) == {f"tiktok_order:{ids['shipped']}", f"tiktok_order:{ids['cancelled']}"}
    assert by_tiktok[f"tiktok_order:{ids['cancelled']}"]["status"] == "cancelled"
    assert by_tiktok[f"tiktok_order:{ids['shipped']}"]["financial_status"] == "paid"
    # Three listings were created on TikTok, never a second copy of one.
    assert len(box.tiktok.products) == 3
    # The shipment went out once; nothing is left undone in the outbox.
    assert (
        box.tiktok.orders[ids["shipped"]]["_tracking"]["tracking_number"]
        == "9400111899223197428490"
    )
    left = await engine.store.fetchall("SELECT command, status FROM outbox WHERE status != 'done'")
    assert left == []


async def test_the_demo_story_over_http_reaches_every_right_final_state(box):
    """PLAT-3, PLAT-4, PLAT-7, ENG-6: the merchant story over loopback HTTP."""
    ids = await play(box)
    await assert_story_outcome(box, ids)
    # Shoplazza: the shipment's fulfillment, then the shirt unpublished and published again.
    assert box.tiktok.webhooks.sent > 10 and box.shoplazza.webhooks.sent == 3


@pytest.mark.parametrize("seed", [3, 5, 8])
async def test_plat3_plat5_with_faults_every_entity_still_reaches_its_final_state(tmp_path, seed):
    """PLAT-3, PLAT-5, PLAT-7: TikTok webhooks dropped, duplicated and reordered, and
    a fifth of all API calls failing: retries, the review poll and the order pull
    bring every product and order to its right final state, and nothing is
    created twice."""
    faults = Faults(drop=0.3, duplicate=0.3, reorder=0.3, api_failure=0.2)
    box = await Sandboxes.start(tmp_path / "faults.db", faults=faults, seed=seed)
    box.service.tiktok.base_delay = box.service.shoplazza.base_delay = 0.01
    box.shoplazza.faults.drop = 0.0  # Shoplazza retries for two days; TikTok's can be lost
    try:
        ids = await play(box)
        await box.advance(3 * 3600)  # the review poll and the order pull have time to run
        await assert_story_outcome(box, ids)
        assert box.tiktok.webhooks.dropped + box.tiktok.webhooks.duplicated > 0, "faults happened"
    finally:
        await box.stop()


def test_serve_refuses_to_start_without_its_secrets(tmp_path):
    with pytest.raises(ConfigError) as caught:
        ChannelSettings.from_env(tmp_path / "x.db", {"TIKTOK_APP_KEY": "k"})
    assert "TIKTOK_APP_SECRET" in str(caught.value) and "SHOPLAZZA_CLIENT_SECRET" in str(
        caught.value
    )


async def test_webhooks_for_an_unknown_platform_get_404_and_nothing_is_recorded(box):
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{box.service.http.url}/webhooks/amazon", content=b"{}")
    assert answer.status_code == 404
    assert await box.service.engine.store.count("dead_letters") == 0
