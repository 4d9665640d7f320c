"""The load helpers shared by the reliability tests and the benchmarks
(`adapters.sandbox.load`) build webhooks serve accepts, one event each."""

from __future__ import annotations

import json
import socket

from hypothesis import given
from hypothesis import strategies as st

from adapters.inbound import TikTokInbound
from adapters.sandbox import story
from adapters.sandbox.load import free_port, raw_request, signature, webhook_bodies


class NoDirectory:
    async def shop_key(self, tiktok_shop_id: str) -> str | None:
        return None

    async def listing_key(self, tiktok_product_id: str) -> str | None:
        return None


INBOUND = TikTokInbound(story.APP_KEY, story.APP_SECRET, NoDirectory())


@given(st.integers(min_value=1, max_value=40), st.from_regex(r"[a-z]{1,8}", fullmatch=True))
def test_every_body_is_distinct_and_signed_as_tiktok_signs_it(count, prefix):
    bodies = webhook_bodies(count, prefix)
    assert len(set(bodies)) == count
    ids = [json.loads(body)["tts_notification_id"] for body in bodies]
    assert ids == [f"{prefix}-{n}" for n in range(count)]
    for body in bodies:
        assert INBOUND.verify(body, {"authorization": signature(body)})
        assert not INBOUND.verify(body + b" ", {"authorization": signature(body)})


async def test_each_body_translates_to_one_event_named_by_its_notification():
    for n, body in enumerate(webhook_bodies(3, "unit")):
        events = await INBOUND.translate(body, {})
        assert [event["event_id"] for event in events] == [f"tiktok:unit-{n}"]


def test_a_raw_request_is_a_complete_signed_post():
    body = webhook_bodies(1)[0]
    request = raw_request("127.0.0.1", 8080, "/webhooks/tiktok", body)
    head, _, rest = request.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /webhooks/tiktok HTTP/1.1"
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert headers["Host"] == "127.0.0.1:8080"
    assert headers["Authorization"] == signature(body)
    assert int(headers["Content-Length"]) == len(rest) and rest == body


def test_a_free_port_can_be_bound_on_loopback():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))
