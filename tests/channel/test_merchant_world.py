"""The acceptance machine's own watchers catch what they are there to catch.

Invariants 2 and 3 of tests/channel/test_merchant_flows_stateful.py rest on
`ShoplazzaOrderWatch` and `RefusalRecorder`; a watcher that saw nothing would
make them pass on any code.
"""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.channel.merchant_world import (
    BUSINESS,
    LAPSED,
    MALFORMED,
    TRANSIENT,
    RefusalRecorder,
    ShoplazzaOrderWatch,
    classify_shoplazza,
    classify_tiktok,
)


def test_ord8_an_order_copy_that_moves_back_is_caught_even_if_it_moves_forward_again():
    watch = ShoplazzaOrderWatch()
    watch.observe({"30001": {"status": "opened", "financial_status": "paid"}})
    watch.observe({"30001": {"status": "opened", "financial_status": "waiting"}})
    watch.observe({"30001": {"status": "opened", "financial_status": "paid"}})
    assert watch.problems == [
        "Shoplazza order 30001: financial_status moved back from 'paid' to 'waiting'"
    ]


def test_ord8_forward_moves_and_values_of_one_rank_are_not_steps_back():
    watch = ShoplazzaOrderWatch()
    for fulfillment in ("initialled", "shipped", "finished", "cancelled", "returned"):
        watch.observe({"30001": {"fulfillment_status": fulfillment}})
    assert watch.problems == []


def test_a_value_shoplazza_does_not_have_is_reported():
    watch = ShoplazzaOrderWatch()
    watch.observe({"30001": {"status": "AWAITING_SHIPMENT"}})
    assert watch.problems == [
        "Shoplazza order 30001: status 'AWAITING_SHIPMENT' is not a Shoplazza value"
    ]


def test_plat10_refusal_classes():
    assert classify_tiktok(200, 106001, "invalid sign") == MALFORMED
    assert classify_tiktok(200, 36009004, "timestamp outside the window") == MALFORMED
    assert classify_tiktok(200, 36009004, "invalid access token") == LAPSED
    assert classify_tiktok(200, 21011044, "the order is on hold") == BUSINESS
    assert classify_tiktok(429, 36009002, "rate limited") == TRANSIENT
    assert classify_tiktok(200, 12019001, "category_id is required") == MALFORMED
    assert classify_tiktok(404, None, "Not Found") == MALFORMED
    assert classify_shoplazza(404, "not found") == BUSINESS
    assert classify_shoplazza(422, "variants is invalid") == MALFORMED
    assert classify_shoplazza(500, "injected failure") == TRANSIENT


def test_plat10_the_recorder_sees_refusals_a_crash_and_lets_successes_and_admin_calls_pass():
    async def ok(request):
        return JSONResponse({"code": 0, "message": "Success", "data": {}})

    async def refuse(request):
        return JSONResponse({"code": 106001, "message": "invalid sign", "data": {}})

    async def crash(request):
        raise KeyError("title")

    app = Starlette(
        routes=[
            Route("/ok", ok),
            Route("/refuse", refuse),
            Route("/crash", crash),
            Route("/sandbox/refuse", refuse),
        ]
    )
    refusals = []
    recorder = RefusalRecorder("tiktok", app, refusals)

    async def calls():
        transport = httpx.ASGITransport(app=recorder, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            for path in ("/ok", "/refuse", "/crash", "/sandbox/refuse", "/missing"):
                await client.get(path)

    asyncio.run(calls())
    assert [(r.path, r.code, r.kind) for r in refusals] == [
        ("/refuse", 106001, MALFORMED),
        ("/crash", None, MALFORMED),
        ("/missing", None, MALFORMED),
    ]
