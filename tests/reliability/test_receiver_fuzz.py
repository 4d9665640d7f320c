"""Fuzz the webhook receiver: no 5xx, no crash, every accepted body accounted for."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.sandbox import story
from adapters.service import ChannelConfig, ChannelService
from adapters.shoplazza import webhook_signature as shoplazza_signature
from adapters.tiktok_shop import webhook_signature as tiktok_signature
from tests.reliability.figures import FIGURES, record

FOLLOWED = {1, 3, 5, 6, 7, 11, 12, 15, 18, 37}
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
data_fields = st.fixed_dictionaries(
    {},
    optional={
        "order_id": st.one_of(
            st.text(max_size=20), st.integers(0, 2**64), st.floats(allow_nan=False)
        ),
        "order_status": st.sampled_from(["UNPAID", "CANCEL", "ON_HOLD", "nonsense", ""])
        | json_values,
        "update_time": st.integers(-5, 2**40) | json_values,
        "product_id": st.integers(0, 2**64) | st.text(max_size=20) | json_values,
        "audit": st.fixed_dictionaries(
            {"status": st.sampled_from(["APPROVED", "FAILED"]) | json_values}
        ),
        "expiration_time": st.text(max_size=12) | st.integers(),
        "message": json_values,
        "return_id": json_values,
    },
)
envelopes = st.fixed_dictionaries(
    {
        "type": st.sampled_from([*sorted(FOLLOWED), 2, 4, 99]) | st.integers(),
        "shop_id": st.sampled_from(["7495540735365777507", "1"]) | st.integers(0, 2**64),
        "data": data_fields | json_values,
    },
    optional={
        "tts_notification_id": st.text(min_size=1, max_size=20) | st.integers(),
        "timestamp": st.integers() | json_values,
    },
)


class Receiver:
    """A real engine and receiver, driven through its ASGI interface."""

    def __init__(self, tmp_path) -> None:
        self.loop = asyncio.new_event_loop()
        config = ChannelConfig(
            db=tmp_path / "fuzz.db",
            tiktok_app_key=story.APP_KEY,
            tiktok_app_secret=story.APP_SECRET,
            shoplazza_client_secret=story.CLIENT_SECRET,
            pull_interval=0,
        )
        self.service = self.loop.run_until_complete(
            ChannelService.open(config, run_loops=False, synchronous="NORMAL")
        )
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.service.receiver), base_url="http://receiver"
        )
        self.cases = {"tiktok": 0, "shoplazza": 0}

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, int]:
        async def go() -> tuple[int, int]:
            # A dead letter repeated is one row whose count grows (SEC-1): count deliveries.
            sql = (
                "SELECT (SELECT COUNT(*) FROM events) + (SELECT COUNT(*) FROM duplicates)"
                " + (SELECT COALESCE(SUM(count), 0) FROM dead_letters)"
            )
            store = self.service.engine.store
            [(before,)] = await store.fetchall(sql)
            response = await self.client.post(path, content=body, headers=headers)
            [(after,)] = await store.fetchall(sql)
            return response.status_code, after - before

        return self.loop.run_until_complete(go())

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.run_until_complete(self.service.stop())
        self.loop.close()


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    opened = Receiver(tmp_path_factory.mktemp("fuzz"))
    yield opened
    total = sum(opened.cases.values())
    record(
        "receiver fuzz",
        f"{total} cases ({opened.cases['tiktok']} TikTok, "
        f"{opened.cases['shoplazza']} Shoplazza): no 5xx, no crash, every accepted body "
        "accounted for",
    )
    opened.close()


def tiktok_headers(body: bytes) -> dict[str, str]:
    return {"Authorization": tiktok_signature(story.APP_KEY, story.APP_SECRET, body)}


def followed(body: bytes) -> bool:
    """A body the channel acts on (a valid envelope of a followed type)."""
    try:
        doc = json.loads(body)
        return isinstance(doc, dict) and doc.get("type") in FOLLOWED
    except ValueError:
        return False


FUZZ = settings(max_examples=700, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(
    body=st.binary(max_size=600),
    signature=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=70) | st.none(),
)
def test_plat1_unsigned_or_wrongly_signed_bodies_get_401_and_nothing_is_recorded(
    receiver, body, signature
):
    """PLAT-1: a bad or missing signature: 401, nothing recorded."""
    receiver.cases["tiktok"] += 1
    headers = {"Authorization": signature} if signature is not None else {}
    if signature == tiktok_signature(story.APP_KEY, story.APP_SECRET, body):
        return
    status, recorded = receiver.post("/webhooks/tiktok", body, headers)
    assert (status, recorded) == (401, 0)


@FUZZ
@given(envelope=envelopes, cut=st.integers(0, 40) | st.none())
def test_plat3_signed_envelopes_of_any_shape_never_cause_a_5xx_and_are_kept(
    receiver, envelope, cut
):
    """PLAT-3: correctly signed bodies, well or badly typed, whole or truncated:
    never a 5xx; every body acknowledged is recorded (events, a duplicate or a
    dead letter) unless it is a webhook type the channel does not follow."""
    receiver.cases["tiktok"] += 1
    body = json.dumps(envelope).encode()
    if cut is not None:
        body = body[: max(0, len(body) - cut - 1)]
    status, recorded = receiver.post("/webhooks/tiktok", body, tiktok_headers(body))
    assert status in (200, 400)
    if status == 400:
        assert recorded == 1, "a body that is not JSON is kept as a dead letter"
    elif followed(body):
        assert recorded >= 1, "an acknowledged webhook is accounted for"


@FUZZ
@given(
    topic=st.sampled_from(
        [
            "products/update",
            "products/delete",
            "orders/update",
            "orders/cancelled",
            "app/uninstalled",
            "weird/topic",
        ]
    ),
    doc=json_values
    | st.fixed_dictionaries(
        {
            "order": st.fixed_dictionaries(
                {
                    "tags": st.sampled_from(["tiktok_order:1", "x"]) | json_values,
                    "fulfillments": json_values,
                }
            )
        }
    ),
    raw=st.binary(max_size=200) | st.none(),
)
def test_plat2_shoplazza_deliveries_of_any_shape_never_cause_a_5xx(receiver, topic, doc, raw):
    """PLAT-2: signed Shoplazza deliveries, valid or not: 200 or 400, never a 5xx."""
    receiver.cases["shoplazza"] += 1
    body = raw if raw is not None else json.dumps(doc).encode()
    headers = {
        "X-Shoplazza-Hmac-Sha256": shoplazza_signature(story.CLIENT_SECRET, body),
        "X-Shoplazza-Topic": topic,
        "X-Shoplazza-Shop-Domain": "demo-store.myshoplaza.com",
    }
    status, recorded = receiver.post("/webhooks/shoplazza", body, headers)
    assert status in (200, 400)
    if status == 400:
        assert recorded == 1


def test_an_oversized_body_is_refused_and_kept(receiver):
    body = b'{"type":1,"data":"' + b"x" * 1_100_000 + b'"}'
    status, recorded = receiver.post("/webhooks/tiktok", body, tiktok_headers(body))
    assert (status, recorded) == (413, 1)


def test_figures_are_recorded_at_the_end_of_the_module():
    assert "receiver fuzz" not in FIGURES or FIGURES["receiver fuzz"]
