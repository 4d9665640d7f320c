"""The HTTP server every part of channelsync runs: uvicorn, with bounded input.

`HttpServer` runs an ASGI app on the caller's event loop. Its `HttpLimits`
bound what a client may hold (SEC-1): connections at once (kept below the
process's descriptor limit), bytes and seconds to deliver the headers,
seconds to deliver the body, idle seconds between two requests on a kept-alive
connection. The body's size cap is applied by the app that reads the body
(the receiver's webhook route), before anything is verified or stored.
See docs/input-limits.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvicorn

from adapters.http_limits import ConnectionRegistry, LimitedHttpProtocol, connection_capacity
from adapters.http_listener import Listener
from adapters.limits import HttpLimits
from engine.logs import get_logger

log = get_logger("channelsync.http")

__all__ = ["HttpLimits", "HttpServer", "run"]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on uvloop's event loop where it is installed (a
    dependency on Linux). A webhook through serve is mostly the loop's own
    work (callbacks, timers, socket reads and writes), which uvloop does in C:
    serve spent about 15% less CPU per webhook on it (docs/performance.md)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - not on Windows
        return asyncio.run(main)
    return uvloop.run(main)


class HttpServer:
    """A uvicorn server on this event loop; port 0 picks a free one."""

    def __init__(self, app: Any, host: str, port: int, limits: HttpLimits | None = None) -> None:
        self.limits = limits or HttpLimits()
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            ws="none",  # no upgrades: a connection stays an HTTP connection we can time
            # No app here reads the client's address, so uvicorn's rewriting of
            # it from X-Forwarded-For (a middleware around every request) is off.
            proxy_headers=False,
            timeout_keep_alive=self.limits.keep_alive,  # type: ignore[arg-type]
            backlog=self.limits.backlog,
        )
        self.server = _LimitedServer(config, self.limits)
        self.host = host
        self.port = port
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> HttpServer:
        self._task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def connections(self) -> ConnectionRegistry | None:
        """The open connections and what the limits did to them (None before start)."""
        return self.server.registry

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class _LimitedServer(uvicorn.Server):
    """uvicorn's server, listening through a `Listener` instead of asyncio's
    server: uvicorn's main loop and graceful shutdown stay as they are."""

    def __init__(self, config: uvicorn.Config, limits: HttpLimits) -> None:
        super().__init__(config)
        self.limits = limits
        self.registry: ConnectionRegistry | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await self.lifespan.startup()
        config, limits = self.config, self.limits
        registry = ConnectionRegistry(
            connection_capacity(limits.max_connections),
            header_timeout=limits.header_timeout,
            body_timeout=limits.body_timeout,
            keep_alive=limits.keep_alive,
            max_header_bytes=limits.max_header_bytes,
            linger_bytes=limits.max_body,
        )
        loop = asyncio.get_running_loop()

        def protocol() -> LimitedHttpProtocol:
            return LimitedHttpProtocol(
                registry,
                config=config,
                server_state=self.server_state,
                app_state=self.lifespan.state,
                _loop=loop,
            )

        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        sock = socket.create_server(
            (config.host, config.port), family=family, backlog=limits.backlog
        )
        self.registry = registry
        self.servers = [Listener(sock, protocol, registry)]  # type: ignore[list-item]
        log.info(
            "http limits",
            max_connections=registry.capacity,
            header_timeout=limits.header_timeout,
            body_timeout=limits.body_timeout,
            keep_alive=limits.keep_alive,
            max_body=limits.max_body,
        )
        self.started = True
