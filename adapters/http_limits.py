"""Connection limits under uvicorn (SEC-1): what a stalled client may hold.

uvicorn bounds idle keep-alive time but not the time to send headers or a
body, and asyncio's accept loop, when descriptors run out, stops accepting for
a whole second. Here the server accepts connections itself (adapters.http_listener), never
more than a capacity kept below RLIMIT_NOFILE (`connection_capacity`), and
each connection (`LimitedHttpProtocol`, uvicorn's httptools protocol with a
deadline per phase) is closed when it does not deliver its headers or its body
in time, or sits idle too long. At the capacity, the connection that has
waited longest without a complete request is evicted to make room, so a
genuine webhook is accepted at once however many clients stall. A connection
whose request is complete (the app is at work on it) is never evicted.
"""

from __future__ import annotations

import asyncio
import enum
import os
import resource
import time
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from engine.logs import get_logger

log = get_logger("channelsync.http")

_WARN_EVERY = 10.0  # seconds between two warnings about evictions
_CLOSE_GRACE = 1.0  # seconds a closed connection may take to flush before it is aborted
_EARLY = 0.001  # seconds a loop's timer may fire before its time
_TIMEOUT_ANSWER = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_HEADERS_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n"
    b"connection: close\r\n\r\n"
)


def connection_capacity(wanted: int) -> int:
    """How many client connections may be open at once: ``wanted``, but kept
    below the descriptor limit with room for the store, the platforms' clients
    and everything else the process opens (an eighth of the limit, at least 32)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    spare = soft - _open_descriptors() - max(32, soft // 8)
    if spare < 1:
        raise ValueError(
            f"the process may open only {soft} files (RLIMIT_NOFILE): too few to serve;"
            " raise it (ulimit -n)"
        )
    return min(wanted, spare)


def _open_descriptors() -> int:
    for directory in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(directory))
        except OSError:
            continue
    return 0


class Phase(enum.Enum):
    HEADERS = "headers"  # waiting for a request's headers
    BODY = "body"  # headers in, waiting for the body
    BUSY = "busy"  # request complete: the app is at work, no deadline
    IDLE = "idle"  # response sent, keep-alive: waiting for the next request


class ConnectionRegistry:
    """The open connections, and which of them may be evicted, oldest first."""

    def __init__(
        self,
        capacity: int,
        *,
        header_timeout: float,
        body_timeout: float,
        keep_alive: float,
        max_header_bytes: int,
        linger_bytes: int,
    ) -> None:
        self.capacity = capacity
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.keep_alive = keep_alive
        self.max_header_bytes = max_header_bytes
        # Bytes of a refused body read (and dropped) after its answer, so the
        # client can read the answer before the connection closes.
        self.linger_bytes = linger_bytes
        self.pending = 0  # sockets accepted, not yet handed to a protocol
        self.evicted = 0
        self.on_free: Callable[[], None] | None = None
        self._live: set[LimitedHttpProtocol] = set()
        # Insertion-ordered: the first is the one that has waited longest.
        self._waiting: dict[LimitedHttpProtocol, None] = {}
        self._warned_at = 0.0
        self._evicted_since_warning = 0

    def live(self) -> list[LimitedHttpProtocol]:
        """The connections open now, handed to their protocol."""
        return list(self._live)

    @property
    def open(self) -> int:
        return len(self._live) + self.pending

    def full(self) -> bool:
        return self.open >= self.capacity

    def add(self, conn: LimitedHttpProtocol) -> None:
        """A handed-off socket now has its protocol (counted once, not twice)."""
        self.pending -= 1
        self._live.add(conn)
        self._waiting[conn] = None

    def waiting(self, conn: LimitedHttpProtocol) -> None:
        """``conn`` has no request in the app's hands: it may be evicted."""
        if conn in self._live:
            self._waiting.pop(conn, None)
            self._waiting[conn] = None

    def busy(self, conn: LimitedHttpProtocol) -> None:
        self._waiting.pop(conn, None)

    def remove(self, conn: LimitedHttpProtocol) -> None:
        self._live.discard(conn)
        self._waiting.pop(conn, None)
        if self.on_free is not None:
            self.on_free()

    def evict_oldest(self) -> bool:
        """Abort the connection that has waited longest; False if all are busy."""
        for conn in self._waiting:
            del self._waiting[conn]
            conn.evict()
            self.evicted += 1
            self._evicted_since_warning += 1
            now = time.monotonic()
            if now - self._warned_at >= _WARN_EVERY:
                log.warning(
                    "connections at capacity: stalled ones evicted",
                    capacity=self.capacity,
                    evicted=self._evicted_since_warning,
                )
                self._warned_at, self._evicted_since_warning = now, 0
            return True
        return False


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each phase of a request
    and a cap on the bytes of headers; registered for eviction while it waits."""

    def __init__(self, registry: ConnectionRegistry, **uvicorn_args: Any) -> None:
        super().__init__(**uvicorn_args)
        self.registry = registry
        self.phase = Phase.HEADERS
        # When the current phase's time is up (loop time; None: no deadline),
        # and the one timer that enforces it (see `_arm`).
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._write_deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._dropped = 0
        self._lingering = False

    # ---------------------------------------------------------------- transport

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.registry.add(self)
        self._arm(self.registry.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._timer is not None:  # a closed connection keeps no timer
            self._timer.cancel()
            self._timer = None
        if self._write_deadline is not None:
            self._write_deadline.cancel()
        super().connection_lost(exc)
        self.registry.remove(self)

    def data_received(self, data: bytes) -> None:
        if self.phase is not Phase.BODY:
            self._header_bytes += len(data)
        elif self.cycle is not None and self.cycle.response_complete:
            # The app answered before the body was in (a 413): uvicorn drops the
            # rest as it comes, up to a bound, then the connection closes.
            self._dropped += len(data)
            if self._dropped > self.registry.linger_bytes:
                self._shut()
                return
        super().data_received(data)
        if (
            self.phase is Phase.HEADERS
            and self._header_bytes > self.registry.max_header_bytes
            and not self.transport.is_closing()
        ):
            self._close_with(_HEADERS_TOO_LARGE, "headers too large")

    def pause_writing(self) -> None:
        # A client that does not read its responses holds the app's task: it
        # gets the body timeout to read on, and may be evicted meanwhile.
        super().pause_writing()
        self.registry.waiting(self)
        if self._write_deadline is None:
            self._write_deadline = self.loop.call_later(self.registry.body_timeout, self._shut)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._write_deadline is not None:
            self._write_deadline.cancel()
            self._write_deadline = None
        if self.phase is Phase.BUSY:
            self.registry.busy(self)

    # ---------------------------------------------------------------- parser

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.phase is not Phase.HEADERS:
            self.phase = Phase.HEADERS
            self._arm(self.registry.header_timeout)

    def on_headers_complete(self) -> None:
        self.phase = Phase.BODY
        self._header_bytes = self._dropped = 0
        self._arm(self.registry.body_timeout)
        super().on_headers_complete()
        if self.cycle is not None:
            self.cycle.transport = _LingeringClose(self.transport, self)  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.phase = Phase.BUSY
        self._disarm()
        self.registry.busy(self)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # uvicorn arms its keep-alive timer only when no pipelined request follows.
        if self.timeout_keep_alive_task is not None:
            self.registry.waiting(self)
            if self.phase is Phase.BUSY:
                self.phase = Phase.IDLE
                self._arm(self.registry.keep_alive)

    # ---------------------------------------------------------------- limits

    def body_pending(self) -> bool:
        """Whether the request's body is still coming (its answer went out early)."""
        return self.phase is Phase.BODY and not self.transport.is_closing()

    def linger(self) -> None:
        """Close after an answer sent before the body was in (a 413 with
        ``Connection: close``): shut the sending side, so the client reads the
        whole answer and sees the end, drop what it still sends (up to the
        linger bound, or until the body timeout), then close. Closing at once
        would reset the connection under a client still sending, which then
        never reads its answer."""
        if self._lingering:
            return
        self._lingering = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._arm(self.registry.body_timeout)

    def evict(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.abort()

    def _arm(self, seconds: float) -> None:
        """The current phase ends in ``seconds``.

        A request moves through three or four phases, each with its own
        deadline: a timer made and cancelled for each would cost every request
        that many timers of the loop's. Instead one timer per connection is
        kept, and a phase only writes its deadline; the timer, when it fires
        early for a deadline since moved later, waits again for the rest.
        Each deadline is still enforced at its time: a timer is (re)made
        only when the new deadline comes before the one it waits for."""
        deadline = self.loop.time() + seconds
        self._deadline = deadline
        timer = self._timer
        if timer is None or deadline < timer.when():
            if timer is not None:
                timer.cancel()
            self._timer = self.loop.call_at(deadline, self._expired)

    def _disarm(self) -> None:
        self._deadline = None

    def _expired(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None:
            return
        # The deadline moved on since this timer was set (a timer may fire up
        # to a millisecond early: that is not a move).
        if self.loop.time() + _EARLY < deadline:
            self._timer = self.loop.call_at(deadline, self._expired)
            return
        self._deadline = None
        if self.transport.is_closing():
            return
        started = self.phase is Phase.BODY or (
            self.phase is Phase.HEADERS and self._header_bytes > 0
        )
        # A client that has begun a request is told why it is cut off; an idle
        # one, or one that never sent a byte, is simply closed.
        self._close_with(_TIMEOUT_ANSWER if started else b"", f"{self.phase.value} timeout")

    def _may_answer(self) -> bool:
        """Whether an answer written now would be the only one to its request."""
        cycle = self.cycle
        if cycle is None:
            return True
        if self.phase is Phase.BODY:  # uvicorn's cycle is this request's
            return not cycle.response_started
        return cycle.response_complete  # a previous request's: it must be finished

    def _close_with(self, answer: bytes, reason: str) -> None:
        log.debug("connection closed", reason=reason, phase=self.phase.value)
        if answer and self._may_answer():
            self.transport.write(answer)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # The app's task sees a client that has gone away, and answers no one.
            cycle.disconnected = True
            cycle.message_event.set()
        self._shut()

    def _shut(self) -> None:
        self._write_deadline = None
        self.transport.close()
        # A client that reads nothing must not keep its socket by never draining it.
        self.loop.call_later(_CLOSE_GRACE, self.transport.abort)


class _LingeringClose:
    """The socket as uvicorn's request cycle sees it: its close() of a
    connection whose request body is still coming becomes a lingering close
    (`LimitedHttpProtocol.linger`); everything else goes to the transport."""

    def __init__(self, transport: asyncio.Transport, protocol: LimitedHttpProtocol) -> None:
        self._transport = transport
        self._protocol = protocol

    def close(self) -> None:
        if self._protocol.body_pending():
            self._protocol.linger()
        else:
            self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
