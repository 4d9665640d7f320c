"""The webhook receiver: an ASGI app in front of the engine.

``POST /webhooks/tiktok`` and ``POST /webhooks/shoplazza`` read the body
within the size cap (413 as soon as it is known to be over: from its
Content-Length before a byte is read, or while it streams; SEC-1), verify the
signature (401, nothing recorded), keep a body that is not a webhook as a dead
letter (400), and answer 200 only once every event it stands for is durably
committed (PLAT-3). ``GET /oauth/tiktok/callback`` completes the merchant's
authorization (a live nonce only; 4xx JSON otherwise, CONN-7); ``GET /health``
says whether the engine is up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pydantic_core import from_json
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.base import InboundAdapter, InboundRejected
from adapters.bounded_body import BodyRefused, BodyTooLarge, read_bounded
from adapters.tiktok_shop.oauth import CallbackRefused
from engine.logs import get_logger

if TYPE_CHECKING:
    from adapters.service import ChannelService

log = get_logger("channelsync.receiver")


def build_receiver(service: ChannelService, inbound: Mapping[str, InboundAdapter]) -> Starlette:
    """The receiver for ``service``, with one webhook route per inbound adapter."""

    async def webhook(request: Request) -> Response:
        adapter = inbound.get(request.path_params["platform"])
        if adapter is None:
            return Response(status_code=404)
        try:
            body = await read_bounded(request, service.config.limits.max_body)
        except BodyRefused as refused:
            log.warning(
                "webhook refused", platform=adapter.name, reason=refused.reason, size=refused.size
            )
            if isinstance(refused, BodyTooLarge):
                # Unverifiable, so only a small record: digest, size and a prefix
                # of what was read; the same refusal again only adds to its count.
                await service.engine.record_dead_letter(
                    refused.read, adapter.name, refused.reason, size=refused.size
                )
                # The server drops the rest of the body (adapters.http_limits), so
                # the client can read this answer before the connection is cut.
                return Response(status_code=413)
            # A Content-Length that is not a number: the request's framing is unknown.
            return Response(status_code=refused.status, headers={"Connection": "close"})
        except ClientDisconnect:
            log.info("webhook abandoned", platform=adapter.name, reason="client went away")
            return Response(status_code=400)
        if not adapter.verify(body, request.headers):
            log.warning(
                "webhook refused", platform=adapter.name, reason="bad signature", size=len(body)
            )
            return Response(status_code=401)
        try:
            events = await adapter.translate(body, request.headers)
        except InboundRejected as error:
            await service.engine.record_dead_letter(body, adapter.name, str(error))
            return Response(status_code=400 if _not_json(body) else 200)
        for event in events:
            await service.engine.publish(event)
        return Response(status_code=200)

    async def oauth_callback(request: Request) -> Response:
        # `state` is the nonce the shop's authorization began with (CONN-7);
        # the shop comes from the nonce, never from the request.
        query = request.query_params
        try:
            receipt = await service.complete_oauth(query.get("state"), query.get("code"))
        except CallbackRefused as refused:
            return JSONResponse(
                {"error": str(refused), **refused.details}, status_code=refused.status
            )
        return JSONResponse(
            {"outcome": receipt.outcome, "shop": receipt.entity, "state": receipt.to_state}
        )

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "events": await service.engine.store.count("events")})

    return Starlette(
        routes=[
            Route("/webhooks/{platform}", webhook, methods=["POST"]),
            Route("/oauth/tiktok/callback", oauth_callback, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ]
    )


def _not_json(body: bytes) -> bool:
    try:
        from_json(body)
    except ValueError:
        return True
    return False
