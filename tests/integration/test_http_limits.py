"""SEC-1 in process: the connection registry's eviction, the header cap, and
the receiver's size cap as it streams (real uvicorn on loopback)."""

from __future__ import annotations

import asyncio
import hashlib
import resource
import socket
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.bounded_body import BodyTooLarge, read_bounded
from adapters.http_limits import connection_capacity
from adapters.http_server import HttpLimits, HttpServer
from adapters.sandbox import story
from adapters.service import ChannelService
from adapters.tiktok_shop import webhook_signature
from channelsync.bootstrap import open_service
from channelsync.settings import ChannelSettings


async def _connect(server: HttpServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.port)


async def _closed(reader: asyncio.StreamReader, within: float = 2.0) -> bool:
    """Whether the server closed (or reset) this connection within ``within`` s."""
    try:
        return await asyncio.wait_for(reader.read(1024), within) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def test_sec1_at_capacity_the_oldest_waiting_connection_makes_room_never_a_busy_one():
    """SEC-1: with room for 3 connections, the oldest holds a complete request
    the app is still working on; two more wait for headers. A fourth is let in
    by evicting the oldest *waiting* one; the busy one still gets its answer."""
    release = asyncio.Event()

    async def slow(request: Request) -> Response:
        await release.wait()
        return Response(b"done")

    app = Starlette(routes=[Route("/slow", slow)])
    server = await HttpServer(app, "127.0.0.1", 0, HttpLimits(max_connections=3)).start()
    try:
        busy_reader, busy = await _connect(server)
        busy.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        await busy.drain()
        await asyncio.sleep(0.1)
        waiting = [await _connect(server) for _ in range(2)]
        await asyncio.sleep(0.1)
        newcomer_reader, newcomer = await _connect(server)
        newcomer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        await newcomer.drain()
        assert await _closed(waiting[0][0]), "the oldest waiting connection was evicted"
        assert not await _closed(waiting[1][0], within=0.2)
        release.set()
        assert (await busy_reader.readuntil(b"done")).startswith(b"HTTP/1.1 200")
        assert (await newcomer_reader.readuntil(b"done")).startswith(b"HTTP/1.1 200")
        assert server.connections is not None and server.connections.evicted == 1
        for _reader, writer in [*waiting, (busy_reader, busy), (newcomer_reader, newcomer)]:
            writer.close()
    finally:
        release.set()  # a graceful stop waits for the app's tasks
        await server.stop()


async def test_sec1_headers_beyond_the_cap_get_431():
    server = await HttpServer(Starlette(), "127.0.0.1", 0, HttpLimits()).start()
    try:
        reader, writer = await _connect(server)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
        for number in range(2000):
            writer.write(b"X-Filler-%d: %s\r\n" % (number, b"y" * 60))
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(1024), 5)
        assert answer.startswith(b"HTTP/1.1 431")
        writer.close()
    finally:
        await server.stop()


def test_sec1_the_connection_cap_stays_below_the_descriptor_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        capacity = connection_capacity(10_000)
        assert 0 < capacity <= 256 - 32
        assert connection_capacity(10) == 10
        resource.setrlimit(resource.RLIMIT_NOFILE, (40, hard))
        with pytest.raises(ValueError, match="ulimit"):
            connection_capacity(10)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
async def service(tmp_path) -> AsyncIterator[ChannelService]:
    config = ChannelSettings(
        db=tmp_path / "limits.db",
        tiktok_app_key=story.APP_KEY,
        tiktok_app_secret=story.APP_SECRET,
        shoplazza_client_secret=story.CLIENT_SECRET,
        pull_interval=0,
        limits=HttpLimits(max_body=10_000),
    )
    opened = await open_service(config, run_loops=False)
    await opened.serve()
    try:
        yield opened
    finally:
        await opened.stop()


async def test_sec1_a_chunked_body_is_cut_at_the_cap_whatever_its_signature(service):
    """SEC-1: no Content-Length, a correctly signed body over the cap: 413 once
    the running count passes it; the dead letter holds the digest and size of
    what was read and only a 4 KB prefix. The connection then serves again."""
    body = b'{"type":1,"data":"' + b"z" * 50_000 + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    signed = {"Authorization": webhook_signature(story.APP_KEY, story.APP_SECRET, body)}
    async with httpx.AsyncClient(base_url=service.http.url) as client:
        answer = await client.post("/webhooks/tiktok", content=chunks(), headers=signed)
        assert answer.status_code == 413
        assert (await client.get("/health")).status_code == 200
    [letter] = await service.engine.dead_letters()
    assert 10_000 < letter.size < 10_000 + 65_536 and len(letter.raw) == 4096
    assert letter.digest == hashlib.sha256(body[: letter.size]).hexdigest()
    assert letter.raw == body[:4096].decode()
    assert await service.engine.store.count("events") == 0


async def test_sec1_a_declared_oversized_body_is_answered_before_it_is_sent(service):
    """SEC-1: a client that waits for ``100 Continue`` before sending its body
    gets the 413 instead, at once: not a byte of the body is read."""
    with socket.create_connection(("127.0.0.1", service.http.port), timeout=5) as conn:
        started = time.monotonic()
        conn.sendall(
            b"POST /webhooks/tiktok HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        answer = await asyncio.to_thread(conn.recv, 1024)
        assert answer.startswith(b"HTTP/1.1 413") and time.monotonic() - started < 1.0
    [letter] = await service.engine.dead_letters()
    assert (letter.size, letter.raw) == (5_000_000, "")


def _request(chunks: list[bytes], declared: int | None) -> Request:
    headers = [] if declared is None else [(b"content-length", str(declared).encode())]
    messages = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks or [b""])
    ]

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    return Request(scope, receive)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 700), max_size=8),
    cap=st.integers(0, 2000),
    declare=st.booleans(),
)
def test_sec1_a_body_is_read_whole_within_the_cap_and_cut_past_it(sizes, cap, declare):
    """SEC-1, for any chunking and cap: a body within the cap is returned
    whole; one past it is refused, and no more is read than the cap plus the
    chunk that passed it (nothing at all when its Content-Length said so)."""
    body = bytes(index % 251 for index in range(sum(sizes)))
    chunks, start = [], 0
    for size in sizes:
        chunks.append(body[start : start + size])
        start += size

    def read() -> bytes:
        # Nothing in it waits on I/O: the coroutine runs to its end in one step.
        reading = read_bounded(_request(chunks, len(body) if declare else None), cap)
        try:
            reading.send(None)
        except StopIteration as done:
            return done.value
        raise AssertionError("read_bounded waited on something")

    if len(body) <= cap:
        assert read() == body
        return
    with pytest.raises(BodyTooLarge) as refused:
        read()
    if declare:
        assert (refused.value.read, refused.value.size) == (b"", len(body))
    else:
        read_bytes = refused.value.read
        assert body.startswith(read_bytes) and refused.value.size == len(read_bytes) > cap
        assert len(read_bytes) - max(len(c) for c in chunks) <= cap


async def test_sec1_after_a_413_the_same_client_sends_its_next_webhook_without_error(service):
    """SEC-1: a 413 is answered before the body is in, so that connection
    cannot carry another request: the answer says ``Connection: close`` and the
    server half-closes and drains, so a client that sent its whole body reads
    the 413, and its next webhook (on a new connection) is answered, never a
    reset. Before, the client reused the connection and got a read error."""
    oversized = b'{"type":1,"data":"' + b"z" * 15_000 + b'"}'
    good = b'{"type":99,"tts_notification_id":"1","shop_id":"1","data":{}}'
    async with httpx.AsyncClient(base_url=service.http.url) as client:
        for _round in range(3):
            refused = await client.post(
                "/webhooks/tiktok", content=oversized, headers={"Authorization": "x"}
            )
            assert refused.status_code == 413
            assert refused.headers["connection"] == "close"
            signed = {"Authorization": webhook_signature(story.APP_KEY, story.APP_SECRET, good)}
            answer = await client.post("/webhooks/tiktok", content=good, headers=signed)
            assert answer.status_code in (200, 400)


async def test_sec1_accepted_connections_send_answers_without_waiting_for_acks():
    """The server accepts sockets itself (SEC-1); each gets TCP_NODELAY as
    asyncio's own server gives it, or every answer written in two parts waits
    for the client's delayed acknowledgement (~40 ms a request on loopback:
    the whole suite ran twice as long)."""

    async def ok(request: Request) -> Response:
        return Response(b"ok")

    server = await HttpServer(Starlette(routes=[Route("/", ok)]), "127.0.0.1", 0).start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/")).text == "ok"
            registry = server.connections
            assert registry is not None
            [conn] = registry.live()
            sock = conn.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        await server.stop()


async def test_sec1_keep_alive_requests_make_no_timer_each_and_every_deadline_still_holds():
    """A connection's phases (headers, body, busy, idle) each have a deadline;
    a timer of the loop's made and cancelled per phase cost every request
    three or four. Fifty requests on one connection make at most a couple,
    and the deadlines still hold: a request begun after a long keep-alive
    wait is cut at the (earlier) header deadline, and an idle connection is
    closed at the keep-alive one."""
    made: list[str] = []
    loop = asyncio.get_running_loop()
    call_at, call_later = loop.call_at, loop.call_later

    def counting(schedule):
        def wrapped(when, callback, *args, **kwargs):
            made.append(getattr(callback, "__name__", ""))
            return schedule(when, callback, *args, **kwargs)

        return wrapped

    async def ok(request: Request) -> Response:
        return Response(b"ok")

    app = Starlette(routes=[Route("/ok", ok)])
    limits = HttpLimits(header_timeout=0.4, keep_alive=3.0)
    server = await HttpServer(app, "127.0.0.1", 0, limits).start()
    loop.call_at, loop.call_later = counting(call_at), counting(call_later)  # type: ignore[method-assign]
    try:
        reader, writer = await _connect(server)
        for _ in range(50):
            writer.write(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await reader.readuntil(b"ok")).startswith(b"HTTP/1.1 200")
        assert made.count("_expired") <= 2
        # The idle deadline (3 s) is armed; a request begun now has 0.4 s.
        writer.write(b"GET /ok HTTP/1.1\r\nHo")
        started = time.monotonic()
        answer = await asyncio.wait_for(reader.read(1024), 2.5)
        assert answer.startswith(b"HTTP/1.1 408") and time.monotonic() - started < 2.5
        writer.close()

        reader, writer = await _connect(server)
        writer.write(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await reader.readuntil(b"ok")).startswith(b"HTTP/1.1 200")
        assert not await _closed(reader, within=2.0)
        assert await _closed(reader, within=3.0), "closed at the keep-alive deadline"
        writer.close()
    finally:
        loop.call_at, loop.call_later = call_at, call_later  # type: ignore[method-assign]
        await server.stop()
