"""PLAT-9: Shoplazza's unsigned headers never decide a destructive action.

Against both sandboxes over loopback HTTP: a body Shoplazza really signed, for
products/update, is sent again under products/delete and app/uninstalled (the
topic header is not signed) and under another store's domain; none of it
deactivates the listing or ends the connection. Deletions and uninstalls are
confirmed with Shoplazza's API: a genuine one acts once Shoplazza confirms it,
a forged one (a signed body whose fact Shoplazza contradicts) is refused and
the refusal is kept on the entity.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from adapters.sandbox.story import CLIENT_SECRET, SHOP, STORE, Sandboxes, connect_shop
from adapters.shoplazza import webhook_signature
from engine.outbox import list_commands

SHIRT, HAT = "1001", "1002"
LISTING = f"listing:{STORE}:{SHIRT}"


# One connected shop for the module (connecting and syncing is most of the
# cost); the tests run in file order and only the last one deletes and
# uninstalls.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def box(tmp_path_factory) -> AsyncIterator[Sandboxes]:
    started = await Sandboxes.start(tmp_path_factory.mktemp("trust") / "trust.db")
    started.pull = False  # only webhooks and their confirmations act here
    try:
        await connect_shop(started)
        await started.service.add_products(SHOP, [SHIRT, HAT])
        await started.settle()
        await started.advance(2 * 3600)
        for key in (LISTING, f"listing:{STORE}:{HAT}"):
            assert (await started.service.engine.entity(key)).state == "approved.selling"
        yield started
    finally:
        await started.stop()


async def post(
    box: Sandboxes, body: bytes, topic: str, domain: str | None = None
) -> httpx.Response:
    """A delivery signed with the app's secret, as Shoplazza signs: the body only."""
    assert box.service.http is not None
    headers = {
        "X-Shoplazza-Hmac-Sha256": webhook_signature(CLIENT_SECRET, body),
        "X-Shoplazza-Topic": topic,
        "X-Shoplazza-Shop-Domain": domain or box.shoplazza.domain,
        "content-type": "application/json",
    }
    return await box.admin.post(
        f"{box.service.http.url}/webhooks/shoplazza", content=body, headers=headers
    )


async def genuine_update_body(box: Sandboxes) -> bytes:
    """The body Shoplazza signed and sent for a real products/update of the shirt."""
    box.shoplazza.product_action(SHIRT, "update", price="26.00")
    [(body, headers)] = box.shoplazza.webhooks._queue
    assert headers["X-Shoplazza-Topic"] == "products/update"
    await box.settle()
    return body


async def state(box: Sandboxes, key: str) -> str:
    entity = await box.service.engine.entity(key)
    assert entity is not None
    return entity.state


async def test_plat9_a_signed_update_body_resent_under_destructive_topics_acts_on_nothing(box):
    """PLAT-9: a genuine products/update body resent as products/delete and as
    app/uninstalled (and under another store's domain) deactivates nothing and
    leaves the shop active; each is kept as a dead letter with the reason or,
    for a store the channel does not have, reaches no entity."""
    engine = box.service.engine
    body = await genuine_update_body(box)
    commands_before = len(await list_commands(engine.store))
    dead_before = {row.error for row in await engine.dead_letters()}

    for topic in ("products/delete", "app/uninstalled"):
        answer = await post(box, body, topic)
        assert answer.status_code == 200, "acknowledged: Shoplazza must not retry it"
    answer = await post(box, body, "products/update", domain="other-store.myshoplaza.com")
    assert answer.status_code == 200
    await box.settle()

    assert await state(box, LISTING) == "approved.selling"
    assert await state(box, SHOP) == "authorized.active"
    assert await engine.entity(f"listing:other-store:{SHIRT}") is None
    assert (
        box.tiktok.products[(await engine.entity(LISTING)).data["tiktok_product_id"]]["status"]
        == "ACTIVATE"
    )
    assert len(await list_commands(engine.store)) == commands_before, "no command was asked for"
    errors = {row.error for row in await engine.dead_letters()} - dead_before
    assert len(errors) == 2, errors
    assert any("an update's body" in error for error in errors)
    assert any("store's domain" in error for error in errors)


async def test_plat9_a_forged_deletion_and_uninstall_are_refused_by_shoplazzas_answer(box):
    """PLAT-9: a signed products/delete for a product Shoplazza still has, and a
    signed app/uninstalled while the store's token still works, are reported,
    checked with Shoplazza, and refused: the listing stays Approved, the shop
    stays Active, and the shop shows both refusals and why."""
    engine = box.service.engine
    deletion = json.dumps({"product": {"id": SHIRT}}).encode()
    uninstall = json.dumps({"id": STORE, "domain": box.shoplazza.domain}).encode()
    assert (await post(box, deletion, "products/delete")).status_code == 200
    assert (await post(box, uninstall, "app/uninstalled")).status_code == 200
    await box.settle()

    assert await state(box, LISTING) == "approved.selling"
    shop = await engine.entity(SHOP)
    assert shop.state == "authorized.active"
    [refused] = shop.data["refused_deletions"]
    assert refused["listing"] == LISTING and "the product still exists" in refused["reason"]
    assert "access token still works" in shop.data["uninstall_check"]["reason"]
    asked = [path for _method, path in box.shoplazza.calls]
    assert asked.count(f"/openapi/2026-01/products/{SHIRT}") >= 1
    assert "/openapi/2026-01/shop" in asked


async def test_plat9_prod8_conn6_a_genuine_deletion_and_uninstall_act_once_confirmed(box):
    """PROD-8, CONN-6, PLAT-9: a real deletion (Shoplazza answers 404) deactivates
    the listing on TikTok; a real uninstall (the token is revoked: 401) ends
    the connection. Each goes report -> confirmation -> the destructive event."""
    engine = box.service.engine
    tiktok_id = (await engine.entity(LISTING)).data["tiktok_product_id"]
    box.shoplazza.product_action(SHIRT, "delete")
    await box.settle()
    assert await state(box, LISTING) == "deactivated"
    assert box.tiktok.products[tiktok_id]["status"] == "SELLER_DEACTIVATED"
    [removed] = [e for e in await engine.history(LISTING) if e["type"] == "listing.product_removed"]
    assert removed["source"] == "shoplazza-confirm", "the confirmation acted, not the webhook"
    assert "connection.deletion_reported" in [e["type"] for e in await engine.history(SHOP)]

    # The merchant uninstalls the app (the sandbox's admin route, as an
    # integrator would drive the standalone sandbox).
    answer = await box.admin.post(f"{box.servers[1].url}/sandbox/app/uninstall")
    assert answer.json() == {"installed": False}
    await box.settle()
    shop = await engine.entity(SHOP)
    assert shop.state == "not_connected"
    assert shop.data["ended"]["by"] == "uninstall"
    assert "uninstall_check" not in shop.data
    kinds = [e["type"] for e in await engine.history(SHOP)]
    assert kinds.index("connection.app_uninstalled") > kinds.index("connection.uninstall_reported")
