"""The webhook receiver: an ASGI app in front of the engine.

``POST /webhooks/tiktok`` and ``POST /webhooks/shoplazza`` read the body
within the size cap (413 as soon as it is known to be over: from its
Content-Length before a byte is read, or while it streams; SEC-1), verify the
signature (401, nothing recorded), keep a body that is not a webhook as a dead
letter (400), and answer 200 only once every event it stands for is durably
committed (PLAT-3). ``GET /oauth/tiktok/callback`` completes the merchant's
authorization (a live nonce only; 4xx JSON otherwise, CONN-7; `oauth_route`,
which a cluster's receiver serves too, where it may also answer 202).
``GET /health/live`` and ``GET /health/ready`` (and ``/health``, the same as
ready) say truthfully whether the process answers and whether a webhook would
be recorded now (ENG-12, `adapters.health`). ``GET /metrics`` is the engine's
metrics in Prometheus' text format (`engine.metrics`); every webhook answer is
counted there by platform and status code. While the store cannot write (its
writer process is being restarted, the disk is full) a route answers 503 with
Retry-After: the platform sends again later.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from pydantic_core import from_json
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.base import InboundAdapter, InboundRejected
from adapters.bounded_body import BodyRefused, BodyTooLarge, read_bounded
from adapters.tiktok_shop.oauth import CallbackPending, CallbackRefused
from engine.bus import Receipt
from engine.logs import get_logger
from engine.metrics import CONTENT_TYPE, render_metrics
from engine.store.errors import StoreError

if TYPE_CHECKING:
    from adapters.service import ChannelService

log = get_logger("channelsync.receiver")
# Seconds a platform is asked to wait before sending again while the store
# cannot write: a writer process restarts in well under a second.
RETRY_AFTER = 1


class EventSink(Protocol):
    """Where a verified webhook's events go: `engine.runtime.Engine` in one process;
    in a cluster, the receiver role's JetStream sink (engine.cluster.jetstream_sink).
    Either returns only once the event is durable (committed, or stored by
    JetStream), so the webhook is acknowledged after that and never before."""

    async def publish(self, event: Mapping[str, Any]) -> object: ...

    async def record_dead_letter(
        self,
        raw: str | bytes,
        source: str,
        error: str,
        entity: str | None = None,
        *,
        size: int | None = None,
    ) -> object: ...


def build_receiver(service: ChannelService, inbound: Mapping[str, InboundAdapter]) -> Starlette:
    """The receiver for ``service``, with one webhook route per inbound adapter."""

    async def live(request: Request) -> Response:
        ok, body = service.health.live()
        return JSONResponse(body, status_code=200 if ok else 503)

    async def ready(request: Request) -> Response:
        ok, body = await service.health.ready()
        return JSONResponse(body, status_code=200 if ok else 503)

    async def metrics(request: Request) -> Response:
        return Response(await render_metrics(service.engine), media_type=CONTENT_TYPE)

    return Starlette(
        routes=[
            webhook_route(
                service.engine,
                inbound,
                service.config.limits.max_body,
                count=service.engine.metrics.webhook,
            ),
            oauth_route(service.complete_oauth),
            Route("/health/live", live, methods=["GET"]),
            Route("/health/ready", ready, methods=["GET"]),
            Route("/health", ready, methods=["GET"]),
            Route("/metrics", _unavailable_on(metrics, (StoreError,)), methods=["GET"]),
        ]
    )


def oauth_route(
    complete: Callable[[str | None, str | None], Awaitable[Receipt]],
    unavailable: tuple[type[Exception], ...] = (StoreError,),
) -> Route:
    """``GET /oauth/tiktok/callback`` answered from ``complete`` (the service's
    or a cluster receiver's `OAuthFlow.complete`): 200 with the connection's
    state, 202 while the authorization waits to be applied, 4xx/5xx JSON with
    the reason when it changes nothing (CONN-7)."""

    async def oauth_callback(request: Request) -> Response:
        # `state` is the nonce the shop's authorization began with (CONN-7);
        # the shop comes from the nonce, never from the request.
        query = request.query_params
        try:
            receipt = await complete(query.get("state"), query.get("code"))
        except CallbackRefused as refused:
            return JSONResponse(
                {"error": str(refused), **refused.details}, status_code=refused.status
            )
        except CallbackPending as pending:
            body = {"outcome": "pending", "shop": pending.shop, "message": str(pending)}
            return JSONResponse(body, status_code=202)
        return JSONResponse(
            {"outcome": receipt.outcome, "shop": receipt.entity, "state": receipt.to_state}
        )

    endpoint = _unavailable_on(oauth_callback, unavailable)
    return Route("/oauth/tiktok/callback", endpoint, methods=["GET"])


def webhook_route(
    sink: EventSink,
    inbound: Mapping[str, InboundAdapter],
    max_body: int,
    unavailable: tuple[type[Exception], ...] = (StoreError,),
    *,
    count: Callable[[str, int], None] | None = None,
) -> Route:
    """``POST /webhooks/{platform}`` into ``sink``; ``unavailable``: the errors
    that mean "cannot record now" and are answered 503 with Retry-After;
    ``count``: told each answer's platform and status code (metrics)."""
    endpoint = _unavailable_on(_webhook_endpoint(sink, inbound, max_body), unavailable)
    if count is not None:
        endpoint = _counted(count, inbound, endpoint)
    return Route("/webhooks/{platform}", endpoint, methods=["POST"])


def _webhook_endpoint(
    sink: EventSink, inbound: Mapping[str, InboundAdapter], max_body: int
) -> Callable[[Request], Awaitable[Response]]:
    """``POST /webhooks/{platform}``: bounded, verified, recorded, then answered."""

    async def webhook(request: Request) -> Response:
        adapter = inbound.get(request.path_params["platform"])
        if adapter is None:
            return Response(status_code=404)
        try:
            body = await read_bounded(request, max_body)
        except BodyRefused as refused:
            log.warning(
                "webhook refused", platform=adapter.name, reason=refused.reason, size=refused.size
            )
            if isinstance(refused, BodyTooLarge):
                # Unverifiable, so only a small record: digest, size and a prefix
                # of what was read; the same refusal again only adds to its count.
                await sink.record_dead_letter(
                    refused.read, adapter.name, refused.reason, size=refused.size
                )
                # The connection cannot carry another request (the rest of the
                # body is still coming): the server half-closes it and drops the
                # rest (adapters.http_limits), so the client reads this answer
                # and knows not to send on it again.
                return Response(status_code=413, headers={"Connection": "close"})
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
            await sink.record_dead_letter(body, adapter.name, str(error))
            return Response(status_code=400 if _not_json(body) else 200)
        for event in events:
            await sink.publish(event)
        return Response(status_code=200)

    return webhook


def _counted(
    count: Callable[[str, int], None],
    inbound: Mapping[str, InboundAdapter],
    endpoint: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """Count every answer by platform and status code; a path naming no
    platform counts as "unknown", so a stranger cannot add label values."""

    async def counting(request: Request) -> Response:
        name = request.path_params["platform"]
        platform = name if name in inbound else "unknown"
        try:
            response = await endpoint(request)
        except Exception:
            count(platform, 500)  # what the server answers for an exception
            raise
        count(platform, response.status_code)
        return response

    return counting


def _unavailable_on(
    endpoint: Callable[[Request], Awaitable[Response]],
    unavailable: tuple[type[Exception], ...],
) -> Callable[[Request], Awaitable[Response]]:
    """A store (or bus) that cannot write now is the receiver's trouble, not
    the sender's, and passes: 503 with Retry-After, never 500 (ENG-12)."""

    async def guarded(request: Request) -> Response:
        try:
            return await endpoint(request)
        except unavailable as error:
            log.warning("store unavailable", path=request.url.path, error=type(error).__name__)
            return JSONResponse(
                {"error": "the store cannot record this now; send it again later"},
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER)},
            )

    return guarded


def _not_json(body: bytes) -> bool:
    try:
        from_json(body)
    except ValueError:
        return True
    return False
