"""The webhook receiver: an ASGI app in front of the engine.

``POST /webhooks/tiktok`` and ``POST /webhooks/shoplazza`` verify the
signature first (401, nothing recorded), keep a body that is not a webhook as
a dead letter (400), and answer 200 only once every event it stands for is
durably committed (PLAT-3). ``GET /oauth/tiktok/callback`` completes the
merchant's authorization; ``GET /health`` says whether the engine is up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.shoplazza import verify_webhook as verify_shoplazza
from adapters.shoplazza.webhooks import ShoplazzaWebhookRejected
from adapters.shoplazza.webhooks import translate as translate_shoplazza
from adapters.tiktok_shop import verify_webhook as verify_tiktok
from adapters.tiktok_shop.webhooks import WebhookRejected
from adapters.tiktok_shop.webhooks import translate as translate_tiktok
from engine.logs import get_logger

if TYPE_CHECKING:
    from adapters.service import ChannelService

log = get_logger("channelsync.receiver")
MAX_BODY = 1_000_000


def build_receiver(service: ChannelService) -> Starlette:
    config = service.config

    async def tiktok(request: Request) -> Response:
        body = await request.body()
        if not verify_tiktok(
            config.tiktok_app_key,
            config.tiktok_app_secret,
            body,
            request.headers.get("authorization"),
        ):
            log.warning("tiktok webhook refused", reason="bad signature", size=len(body))
            return Response(status_code=401)
        if len(body) > MAX_BODY:
            await service.engine.record_dead_letter(body[:MAX_BODY], "tiktok", "body too large")
            return Response(status_code=413)
        try:
            events = await translate_tiktok(body, service.directory)
        except (WebhookRejected, KeyError, TypeError) as error:
            await service.engine.record_dead_letter(
                body, "tiktok", f"{type(error).__name__}: {error}"
            )
            return Response(status_code=400 if _not_json(body) else 200)
        for event in events:
            await service.engine.publish(event)
        return Response(status_code=200)

    async def shoplazza(request: Request) -> Response:
        body = await request.body()
        if not verify_shoplazza(
            config.shoplazza_client_secret, body, request.headers.get("x-shoplazza-hmac-sha256")
        ):
            log.warning("shoplazza webhook refused", reason="bad signature", size=len(body))
            return Response(status_code=401)
        topic = request.headers.get("x-shoplazza-topic", "")
        domain = request.headers.get("x-shoplazza-shop-domain", "")
        try:
            events = translate_shoplazza(topic, domain, body)
        except (ShoplazzaWebhookRejected, KeyError, TypeError) as error:
            await service.engine.record_dead_letter(
                body, "shoplazza", f"{type(error).__name__}: {error}"
            )
            return Response(status_code=400 if _not_json(body) else 200)
        for event in events:
            await service.engine.publish(event)
        return Response(status_code=200)

    async def oauth_callback(request: Request) -> Response:
        code, shop = request.query_params.get("code"), request.query_params.get("state")
        if not code or not shop:
            return JSONResponse({"error": "code and state are required"}, status_code=400)
        receipt = await service.complete_oauth(shop, code)
        status = 200 if receipt.outcome == "transitioned" else 409
        return JSONResponse(
            {"outcome": receipt.outcome, "reason": receipt.reason}, status_code=status
        )

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "events": await service.engine.store.count("events")})

    return Starlette(
        routes=[
            Route("/webhooks/tiktok", tiktok, methods=["POST"]),
            Route("/webhooks/shoplazza", shoplazza, methods=["POST"]),
            Route("/oauth/tiktok/callback", oauth_callback, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ]
    )


def _not_json(body: bytes) -> bool:
    from pydantic_core import from_json

    try:
        from_json(body)
    except ValueError:
        return True
    return False
