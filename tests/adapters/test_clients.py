"""The API clients against the sandboxes over loopback HTTP: PLAT-4, PLAT-5, PLAT-7, CONN-5."""

from __future__ import annotations

import asyncio

import pytest

from adapters.sandbox import story
from adapters.sandbox.story import Sandboxes, connect_shop


@pytest.fixture
async def box(tmp_path):
    started = await Sandboxes.start(tmp_path / "clients.db")
    await connect_shop(started)
    try:
        yield started
    finally:
        await started.stop()


async def test_plat4_signed_calls_are_accepted_and_a_wrong_secret_is_refused(box):
    """PLAT-4: the sandbox checks the signature and the x-tts-access-token header."""
    from adapters.tiktok_shop.client import BAD_SIGN, TikTokError

    client = box.service.tiktok
    data = await client.call(story.SHOP, "GET", "/authorization/202309/shops")
    assert data["shops"][0]["region"] == "US"
    client.app_secret = "wrong"
    with pytest.raises(TikTokError) as caught:
        await client.call(story.SHOP, "GET", "/authorization/202309/shops")
    assert caught.value.code == BAD_SIGN


async def test_plat5_rate_limited_calls_back_off_and_all_get_through(box):
    """PLAT-5: past the sandbox's limit TikTok answers 429; the client backs off
    with jitter and retries, and no call is lost."""
    box.tiktok.faults.rate_limit_per_second = 3
    client = box.service.tiktok
    client.base_delay, client.attempts = 0.2, 8
    results = await asyncio.gather(
        *[
            client.call(
                story.SHOP,
                "GET",
                "/logistics/202309/delivery_options/7091146663229769477/shipping_providers",
            )
            for _ in range(9)
        ]
    )
    assert all(r["shipping_providers"] for r in results)


async def test_plat5_shoplazza_429_is_retried(box):
    """PLAT-5: Shoplazza allows about 2 requests a second per store."""
    box.shoplazza.faults.rate_limit_per_second = 2
    client = box.service.shoplazza
    client.limiter.rate, client.limiter.burst = 100.0, 100  # a client that ignores the limit
    client.base_delay, client.attempts = 0.3, 8
    carriers = await asyncio.gather(*[client.carriers() for _ in range(6)])
    assert all(len(c) == 4 for c in carriers)


async def test_plat7_a_repeated_create_with_one_idempotency_key_makes_one_listing(box):
    """PLAT-7: the platform sees the same key and answers with the same product."""
    from tests.adapters.test_tiktok_products import valid_body

    client = box.service.tiktok
    body = {**await valid_body(box), "idempotency_key": "k-1"}
    first = await client.call(story.SHOP, "POST", "/product/202309/products", body=body)
    again = await client.call(story.SHOP, "POST", "/product/202309/products", body=body)
    assert first["product_id"] == again["product_id"] and len(box.tiktok.products) == 1


async def test_conn5_an_expired_token_is_refreshed_on_105002_and_ahead_of_expiry(box):
    """CONN-5: tokens are refreshed before their absolute expiry, and on 105002."""
    client = box.service.tiktok
    before = await client.credentials.get(story.SHOP)
    box.tiktok.tokens[before.access_token] = box.clock.now() - 1  # TikTok expired it early
    await client.call(story.SHOP, "GET", "/authorization/202309/shops")
    after = await client.credentials.get(story.SHOP)
    assert after.access_token != before.access_token
    box.clock.advance(after.access_token_expire_in - box.clock.now() - 60)  # within the lead
    await client.call(story.SHOP, "GET", "/authorization/202309/shops")
    assert (await client.credentials.get(story.SHOP)).access_token != after.access_token
    assert "ROW_" not in repr(after), "tokens never show in a repr"


async def test_conn5_calls_that_all_find_the_token_due_refresh_it_once(box):
    """CONN-5: TikTok's refresh token works once; calls for one shop that all
    find the access token within the lead share one refresh, and every call
    gets through (a second refresh with the spent token would be refused)."""
    client = box.service.tiktok
    before = await client.credentials.get(story.SHOP)
    box.clock.advance(before.access_token_expire_in - box.clock.now() - 60)
    results = await asyncio.gather(
        *[client.call(story.SHOP, "GET", "/authorization/202309/shops") for _ in range(5)]
    )
    assert all(r["shops"] for r in results)
    assert (await client.credentials.get(story.SHOP)).refresh_token != before.refresh_token


async def test_conn5_a_refresh_another_process_made_first_is_taken_up_not_lost(box):
    """CONN-5 in a cluster: two workers' clients share the shop's credentials;
    when both refresh at once, the one whose spent refresh token TikTok refuses
    takes the tokens the other stored instead of ending the authorization."""
    from adapters.tiktok_shop.client import TikTokClient

    first = box.service.tiktok
    second = TikTokClient(
        first.base_url,
        first.auth_url,
        first.app_key,
        first.app_secret,
        first.credentials,
        first.clock,
        http=first.http,
    )
    refreshed = await asyncio.gather(first.refresh(story.SHOP), second.refresh(story.SHOP))
    stored = await first.credentials.get(story.SHOP)
    assert {c.access_token for c in refreshed} == {stored.access_token}
    data = await second.call(story.SHOP, "GET", "/authorization/202309/shops")
    assert data["shops"]
