"""The listening side of the HTTP server (SEC-1): accept only what can be held.

asyncio's server accepts every connection the kernel has queued, and when
descriptors run out it stops accepting for a whole second. `Listener` accepts
only while the `ConnectionRegistry` has room, so the process never runs out of
descriptors to its own clients; at capacity it evicts the connection that has
waited longest, but only when someone is waiting to come in.
"""

from __future__ import annotations

import asyncio
import errno
import os
import select
import socket
from collections.abc import Callable
from typing import Any

from adapters.http_limits import ConnectionRegistry, LimitedHttpProtocol
from engine.logs import get_logger

log = get_logger("channelsync.http")

# Accept errors that mean "out of descriptors or memory now", not a broken socket.
_EXHAUSTED = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_RETRY_AFTER_EXHAUSTION = 0.05  # seconds; asyncio's own accept loop waits a whole second
_ACCEPTS_PER_PASS = 64  # then other callbacks of the event loop get their turn


class Listener:
    """Accepts connections on ``sock`` only while the registry has room.

    Stands where asyncio's server would (uvicorn calls ``close`` and
    ``wait_closed`` on it at shutdown). At capacity it evicts the oldest
    waiting connection and waits for a descriptor to be freed; it never calls
    accept() without one to spare, so it never meets EMFILE from its own clients."""

    def __init__(
        self,
        sock: socket.socket,
        protocol_factory: Callable[[], LimitedHttpProtocol],
        registry: ConnectionRegistry,
    ) -> None:
        sock.setblocking(False)
        self.sockets = [sock]
        self._sock = sock
        self._factory = protocol_factory
        self._registry = registry
        self._loop = asyncio.get_running_loop()
        self._reading = False
        self._closed = False
        self._retry: asyncio.TimerHandle | None = None
        self._handoffs: set[asyncio.Task[Any]] = set()
        self._backlog = select.poll()
        self._backlog.register(sock, select.POLLIN)
        registry.on_free = self._resume
        self._resume()

    def close(self) -> None:
        self._closed = True
        self._pause()
        if self._retry is not None:
            self._retry.cancel()
        self._sock.close()

    async def wait_closed(self) -> None:
        if self._handoffs:
            await asyncio.gather(*self._handoffs, return_exceptions=True)

    def _resume(self) -> None:
        if self._closed or self._reading:
            return
        self._loop.add_reader(self._sock.fileno(), self._accept)
        self._reading = True

    def _retried(self) -> None:
        self._retry = None
        self._resume()

    def _pause(self) -> None:
        if self._reading:
            self._loop.remove_reader(self._sock.fileno())
            self._reading = False

    def _accept(self) -> None:
        for _ in range(_ACCEPTS_PER_PASS):
            if self._registry.full():
                if not self._backlog.poll(0):
                    return  # no one is waiting to come in: the reader wakes us when one is
                # The evicted socket closes on the loop's next pass, and on_free resumes
                # accepting; with every connection busy, the first to close does.
                self._registry.evict_oldest()
                self._pause()
                return
            try:
                conn, _address = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as error:
                if error.errno not in _EXHAUSTED:
                    # Linux reports a connection's network errors on accept(): that one is lost.
                    log.warning("accept failed", error=os.strerror(error.errno or 0))
                    continue
                # Descriptors ran out elsewhere in the process (the store, outbound calls).
                log.warning("accept failed: out of descriptors", error=os.strerror(error.errno))
                self._registry.evict_oldest()
                self._pause()
                if self._retry is None:
                    self._retry = self._loop.call_later(_RETRY_AFTER_EXHAUSTION, self._retried)
                return
            conn.setblocking(False)
            # asyncio sets TCP_NODELAY only on sockets whose protocol number
            # says TCP, which a socket accepted here does not carry: without it
            # every answer written in two parts (headers, body) waits ~40 ms for
            # the client's delayed acknowledgement.
            if conn.family in (socket.AF_INET, socket.AF_INET6):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._hand_off(conn)

    def _hand_off(self, conn: socket.socket) -> None:
        self._registry.pending += 1
        made: list[LimitedHttpProtocol] = []

        def protocol() -> LimitedHttpProtocol:
            made.append(self._factory())
            return made[0]

        task = self._loop.create_task(self._loop.connect_accepted_socket(protocol, conn))
        self._handoffs.add(task)

        def done(finished: asyncio.Task[Any]) -> None:
            self._handoffs.discard(finished)
            if finished.cancelled() or finished.exception() is not None:
                if not (made and made[0].transport is not None):
                    self._registry.pending -= 1  # never reached connection_made
                conn.close()
                self._resume()

        task.add_done_callback(done)
