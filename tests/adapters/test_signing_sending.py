"""PLAT-4, signing = sending: the query a TikTok call signs is the query it
sends. The TikTok sandbox, over loopback HTTP, recomputes the signature from
the request it received and refuses the call (106001) when they differ."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.sandbox import story
from adapters.sandbox.story import Sandboxes, connect_shop
from adapters.tiktok_shop.signing import encode_query, sign_encoded, sign_request

T = TypeVar("T")
SHOPS = "/authorization/202309/shops"
# What the client sets itself: a caller's value for these never reaches TikTok.
SET_BY_THE_CLIENT = {"app_key", "timestamp", "shop_cipher", "sign"}


class LoopThread:
    """An event loop on its own thread, so a synchronous property can call
    the async client against sandboxes started once for the module."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[LoopThread, Sandboxes]]:
    runner = LoopThread()
    with tempfile.TemporaryDirectory() as folder:
        box = runner.run(Sandboxes.start(Path(folder) / "signing.db"))
        try:
            runner.run(connect_shop(box))
            # The examples are calls in a row: the client's own pacing is not under test.
            box.service.tiktok.rate_per_shop = 10_000.0
            yield runner, box
        finally:
            runner.run(box.stop())
            runner.close()


keys = st.one_of(
    st.sampled_from(["access_token", "page_size", "ids", "", " ", "a&b=c", "%41", "+", "é", "K"]),
    st.text(max_size=10),
).filter(lambda key: key not in SET_BY_THE_CLIENT)
values = st.one_of(
    st.text(max_size=16),
    st.sampled_from(["", " ", "a+b", "%2B", "x&y=z", "true", "None", "☃", "\ud800"]),
    st.integers(),
    st.booleans(),
    st.none(),
    st.lists(st.one_of(st.text(max_size=4), st.integers(), st.booleans()), max_size=3),
    st.floats(allow_nan=True),
)


def first_refused(query: dict[str, Any]) -> str | None:
    """The first key (in the order encoded) whose value cannot be sent."""
    for key in sorted(query):
        value = query[key]
        if not isinstance(value, str | int):
            return key
        for part in (key, value if isinstance(value, str) else ""):
            try:
                part.encode()
            except UnicodeEncodeError:
                return key
    return None


@settings(max_examples=100, deadline=None)
@given(query=st.dictionaries(keys, values, max_size=6))
def test_plat4_property_the_sandbox_verifies_the_signature_of_what_it_received(sandbox, query):
    """PLAT-4: for any query of str, int, bool, None, list or float values, the
    signature the sandbox computes from the request it receives equals the one
    sent; a value that cannot be sent as TikTok signs it is refused before any
    request, with an error naming its key."""
    runner, box = sandbox
    calls = len(box.tiktok.calls)
    refused = first_refused(query)
    if refused is not None:
        with pytest.raises((TypeError, ValueError)) as caught:
            runner.run(box.service.tiktok.call(story.SHOP, "GET", SHOPS, query=query))
        assert repr(refused) in str(caught.value)
        assert len(box.tiktok.calls) == calls, "nothing was sent"
        return
    data = runner.run(box.service.tiktok.call(story.SHOP, "GET", SHOPS, query=query))
    assert data["shops"], "the sandbox accepted the signature"


def test_plat4_how_values_are_written_and_what_is_refused():
    """PLAT-4: booleans as true/false, integers in decimal, strings as they
    are, sorted by key; None, lists and floats refused naming the key."""
    assert encode_query({"b": True, "a": False, "n": -12, "s": "x y"}) == [
        ("a", "false"),
        ("b", "true"),
        ("n", "-12"),
        ("s", "x y"),
    ]
    for value in (None, ["1", "2"], 1.5, b"1"):
        with pytest.raises(TypeError, match="'flag'"):
            encode_query({"ok": 1, "flag": value})
    pairs = encode_query({"flag": True, "sign": "old", "access_token": "t"})
    assert sign_encoded("s", "/p", pairs) == sign_request("s", "/p", {"flag": "true"})
