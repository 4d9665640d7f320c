"""SEC-5: platform ids are checked by their format before they name anything.

Signed webhooks of both platforms whose ids are not the platform's (``True``,
``None``, a path, a float, unicode digits, a number with a leading zero...)
go through the real receiver and engine: each is a dead letter with a reason,
and no entity and no outbox command appears. The engine's own entity-key
check and the id validators are properties over awkward text.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st

from adapters.ids import InvalidId, shoplazza_id, store_name, tiktok_id
from adapters.sandbox import story
from adapters.service import ChannelService
from adapters.shoplazza import webhook_signature as shoplazza_signature
from adapters.tiktok_shop import webhook_signature as tiktok_signature
from channelsync.bootstrap import open_service
from channelsync.settings import ChannelSettings
from engine.events import ENTITY_KEY_MAX, check_entity_key

SHOP_ID = "7495540735365777507"
BAD_TIKTOK_IDS: list[Any] = [
    True,
    None,
    "True",
    "None",
    "../../../etc/passwd",
    1.5,
    "12.5",
    -7,
    "",
    " 123",
    "0123",
    "\u0663\u0661",  # Arabic-Indic digits: digits, not ASCII
    "1" * 33,
    [1],
    {"id": 1},
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def channel(tmp_path_factory) -> AsyncIterator[tuple[ChannelService, httpx.AsyncClient]]:
    """One channel for the module: every test counts what its own deliveries add."""
    config = ChannelSettings(
        db=tmp_path_factory.mktemp("ids") / "ids.db",
        tiktok_app_key=story.APP_KEY,
        tiktok_app_secret=story.APP_SECRET,
        shoplazza_client_secret=story.CLIENT_SECRET,
        pull_interval=0,
    )
    service = await open_service(config, run_loops=False, plugins=[])
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.receiver), base_url="http://receiver"
    )
    try:
        yield service, client
    finally:
        await client.aclose()
        await service.stop()


async def counts(service: ChannelService) -> tuple[int, int, int]:
    store = service.engine.store
    return (
        await store.count("entities"),
        await store.count("outbox"),
        len(await service.engine.dead_letters()),
    )


@pytest.mark.asyncio(loop_scope="module")
async def test_sec5_tiktok_webhooks_with_ids_not_tiktoks_are_dead_letters(channel):
    """SEC-5: order.status_changed, address and return webhooks whose order_id,
    or whose shop_id, is not a TikTok id: 200, a dead letter naming the field,
    no entity, no command. (Before, ``order:True`` and
    ``order:../../../etc/passwd`` became orders with their detail fetch queued.)"""
    service, client = channel
    bodies = []
    for bad in BAD_TIKTOK_IDS:
        data = {"order_id": bad, "order_status": "UNPAID", "update_time": 1_770_000_000}
        bodies.append(({"type": 1, "shop_id": SHOP_ID, "data": data}, "order_id"))
        bodies.append(({"type": 3, "shop_id": SHOP_ID, "data": {"order_id": bad}}, "order_id"))
    good_order = {"order_id": "576486316948490001", "order_status": "UNPAID", "update_time": 1}
    bodies.append(({"type": 1, "shop_id": "../shop", "data": good_order}, "shop_id"))
    for number, (doc, field) in enumerate(bodies):
        doc["tts_notification_id"] = f"n{number}"
        body = json.dumps(doc).encode()
        before = await counts(service)
        headers = {"Authorization": tiktok_signature(story.APP_KEY, story.APP_SECRET, body)}
        answer = await client.post("/webhooks/tiktok", content=body, headers=headers)
        assert answer.status_code == 200, doc
        entities, commands, dead = await counts(service)
        assert (entities, commands) == before[:2], f"{doc} made an entity or a command"
        assert dead == before[2] + 1, f"{doc} is not kept as a dead letter"
        [letter] = [d for d in await service.engine.dead_letters() if field in d.error][-1:]
        assert "invalid id" in letter.error


@pytest.mark.asyncio(loop_scope="module")
async def test_sec5_shoplazza_webhooks_with_ids_not_shoplazzas_are_dead_letters(channel):
    """SEC-5: a product id, an order id or a tiktok_order tag that is not the
    platform's format, and a shop domain that is not ``<store>.myshoplaza.com``:
    a dead letter with the reason, no entity, no command."""
    service, client = channel
    product = {"title": "t", "updated_at": "2026-05-01T10:00:00+08:00", "variants": [{"id": "v"}]}
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("products/update", {"product": {**product, "id": "../1001"}}, "demo-store.myshoplaza.com"),
        ("products/update", {"product": {**product, "id": True}}, "demo-store.myshoplaza.com"),
        ("products/delete", {"product": {"id": None}}, "demo-store.myshoplaza.com"),
        ("products/delete", {"product": {"id": "a b"}}, "demo-store.myshoplaza.com"),
        (
            "orders/update",
            {"order": {"id": "5", "status": "opened", "tags": "tiktok_order:../../x"}},
            "demo-store.myshoplaza.com",
        ),
        (
            "orders/update",
            {"order": {"id": "../5", "status": "opened", "tags": "tiktok_order:1"}},
            "demo-store.myshoplaza.com",
        ),
        ("products/update", {"product": {**product, "id": "1001"}}, "../../etc.myshoplaza.com"),
        ("products/update", {"product": {**product, "id": "1001"}}, "demo-store.evil.com"),
    ]
    for topic, doc, domain in cases:
        body = json.dumps(doc).encode()
        headers = {
            "X-Shoplazza-Hmac-Sha256": shoplazza_signature(story.CLIENT_SECRET, body),
            "X-Shoplazza-Topic": topic,
            "X-Shoplazza-Shop-Domain": domain,
        }
        before = await counts(service)
        answer = await client.post("/webhooks/shoplazza", content=body, headers=headers)
        assert answer.status_code == 200, (topic, doc, domain)
        entities, commands, dead = await counts(service)
        assert (entities, commands, dead) == (before[0], before[1], before[2] + 1), (topic, doc)
    errors = [d.error for d in await service.engine.dead_letters()]
    assert all("invalid id" in error for error in errors), errors


@pytest.mark.asyncio(loop_scope="module")
async def test_sec5_the_engine_refuses_entity_keys_that_are_not_kind_and_a_plain_id(channel):
    """SEC-5: whatever adapter builds it, an event naming ``order:../x``, a key
    with a slash, a backslash, whitespace, a control character or longer than
    200 characters is a dead letter: no entity."""
    service, _client = channel
    engine = service.engine
    for number, key in enumerate(
        [
            "order:../../../etc/passwd",
            "order:a/b",
            "order:a\\b",
            "order:a\u2028b",
            "order:a\x00b",
            "order:" + "1" * ENTITY_KEY_MAX,
        ]
    ):
        receipt = await engine.publish(
            {
                "event_id": f"bad-key-{number}",
                "type": "order.address_updated",
                "source": "test",
                "entity": key,
                "payload": {},
            }
        )
        assert receipt.outcome == "dead_letter", key
        assert await engine.entity(key) is None
    assert await engine.store.count("entities") == 0


printable_ids = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=220
)


@given(ident=printable_ids)
def test_sec5_property_an_entity_key_is_accepted_exactly_when_its_id_is_plain(ident):
    """SEC-5 for any text: ``order:<id>`` is accepted iff the id is non-empty,
    printable, has no whitespace, '/', '\\' or '..', and the key fits in 200."""
    key = f"order:{ident}"
    plain = (
        bool(ident)
        and ident.isprintable()
        and not any(c.isspace() or c in "/\\" for c in ident)
        and ".." not in ident
        and len(key) <= ENTITY_KEY_MAX
    )
    try:
        check_entity_key(key)
    except ValueError:
        assert not plain
    else:
        assert plain


@given(
    value=st.one_of(
        st.integers(-(10**40), 10**40),
        st.text(max_size=40),
        st.text(st.sampled_from("0123456789"), max_size=40),
        st.floats(),
        st.booleans(),
        st.none(),
    )
)
def test_sec5_property_a_tiktok_id_is_ascii_digits_and_keeps_its_exact_value(value):
    """SEC-5, PLAT-6 for any JSON scalar: accepted iff it is 1 to 32 ASCII
    digits without a leading zero (or a non-negative integer of that size), and
    an accepted integer keeps its exact decimal text."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    valid = (
        isinstance(text, str)
        and not isinstance(value, bool)
        and 0 < len(text) <= 32
        and all(c in "0123456789" for c in text)
        and (text == "0" or not text.startswith("0"))
    )
    try:
        accepted = tiktok_id(value)
    except InvalidId:
        assert not valid
    else:
        assert valid and accepted == text


def test_sec5_shoplazza_ids_and_store_domains_have_one_accepted_form():
    """SEC-5: Shoplazza ids are ASCII letters, digits, '-' and '_' (UUIDs and
    the sandbox's ids); a store is one DNS label before ``.myshoplaza.com``."""
    for good in ("1001", "1001-1", "30001-f1", "a6e8e5d0-5b1e-4b8e-9d0a-1f2e3d4c5b6a", 42):
        assert shoplazza_id(good) == str(good)
    for bad in ("", "-1", "a/b", "a..b", "a b", "é", "x" * 65, True, None, 1.0, -3):
        with pytest.raises(InvalidId):
            shoplazza_id(bad)
    assert store_name("Demo-Store.MyShoplaza.com") == "demo-store"
    for bad in ("demo-store", "a.b.myshoplaza.com", "-x.myshoplaza.com", ".myshoplaza.com", 7):
        with pytest.raises(InvalidId):
            store_name(bad)


def test_sec5_an_invalid_id_is_described_without_its_value():
    """SEC-5, SEC-2: the reason names the field, the type and the length, never
    the value (a body's content never reaches a dead letter's reason or a log)."""
    secret = "555-0100 Elm Street"
    with pytest.raises(InvalidId) as refused:
        tiktok_id(secret, "order_id")
    assert secret not in str(refused.value) and "order_id" in str(refused.value)
