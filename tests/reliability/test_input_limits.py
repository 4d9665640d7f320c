"""SEC-1: `channelsync serve` as a child process, attacked over loopback.

One server child for the module, started with RLIMIT_NOFILE lowered to 256 and
short timeouts (header 4 s, body 1 s, keep-alive 1 s): an unsigned 100 MB body
(declared, then chunked) against the child's peak RSS; more stalled clients
than the child has descriptors while a signed webhook must get its 200 within
a second; a slow body and an idle kept-alive connection cut on time; the same
junk sent 50 times kept as one dead letter.
"""

from __future__ import annotations

import hashlib
import os
import resource
import select
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from adapters.sandbox import story
from adapters.sandbox.load import free_port
from adapters.tiktok_shop import webhook_signature

ROOT = Path(__file__).resolve().parents[2]
DESCRIPTORS = 256
HEADER_TIMEOUT, BODY_TIMEOUT, KEEP_ALIVE = 3.0, 1.0, 1.0
MB = 1024 * 1024
ORDER = (
    b'{"type":1,"tts_notification_id":"7380066284010030890","shop_id":"7495540735365777507",'
    b'"timestamp":1718305585,"data":{"order_id":"576653688135258178",'
    b'"order_status":"UNPAID","update_time":1718305585}}'
)


@dataclass
class Serve:
    child: subprocess.Popen
    port: int
    db: Path
    stderr: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def peak_rss(self) -> int:
        """The child's peak resident set (VmHWM), in bytes."""
        for line in Path(f"/proc/{self.child.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM in /proc")

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)


def _low_descriptor_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (DESCRIPTORS, DESCRIPTORS))


@pytest.fixture(scope="module")
def serve(tmp_path_factory) -> Iterator[Serve]:
    home = tmp_path_factory.mktemp("limits")
    port, db, stderr = free_port(), home / "serve.db", home / "stderr.txt"
    env = {
        **os.environ,
        "TIKTOK_APP_KEY": story.APP_KEY,
        "TIKTOK_APP_SECRET": story.APP_SECRET,
        "SHOPLAZZA_CLIENT_SECRET": story.CLIENT_SECRET,
        "TIKTOK_API_URL": "http://127.0.0.1:9",
        "SHOPLAZZA_API_URL": "http://127.0.0.1:9",
    }
    command = [sys.executable, "-m", "engine.cli.main", "serve", "--db", str(db)]
    command += ["--port", str(port), "--pull-interval", "0", "--shoplazza-pull-interval", "0"]
    command += ["--header-timeout", str(HEADER_TIMEOUT), "--body-timeout", str(BODY_TIMEOUT)]
    command += ["--keep-alive", str(KEEP_ALIVE)]
    with stderr.open("wb") as errors:
        child = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            preexec_fn=_low_descriptor_limit,
        )
    started = Serve(child, port, db, stderr)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{started.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert child.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.05)
        yield started
    finally:
        child.terminate()
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
    # asyncio's own accept loop says this when it meets EMFILE, then stops accepting for 1 s.
    assert b"out of system resource" not in stderr.read_bytes()


def _signed(body: bytes) -> dict[str, str]:
    return {"Authorization": webhook_signature(story.APP_KEY, story.APP_SECRET, body)}


def _send_until_answered(conn: socket.socket, chunks: Iterator[bytes]) -> bytes:
    """Send ``chunks`` while watching for an answer; the answer's first bytes."""
    conn.setblocking(False)
    for chunk in chunks:
        readable, _, _ = select.select([conn], [], [], 0)
        if readable:
            break
        view = memoryview(chunk)
        while view:
            try:
                view = view[conn.send(view) :]
            except BlockingIOError:
                readable, _, _ = select.select([conn], [conn], [], 5)
                if conn in readable:
                    break
            except (BrokenPipeError, ConnectionResetError):
                break
        else:
            continue
        break
    conn.setblocking(True)
    conn.settimeout(5)
    try:
        return conn.recv(4096)
    except ConnectionResetError:
        return b""


def _hundred_mb(chunked: bool) -> Iterator[bytes]:
    piece = b"x" * (64 * 1024)
    for _ in range(100 * MB // len(piece)):
        yield b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
    if chunked:
        yield b"0\r\n\r\n"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_sec1_an_unsigned_100_mb_body_is_refused_before_it_is_read(serve, chunked):
    """SEC-1: 413 as soon as the body is known to be over the cap (its
    Content-Length, or the running count of a chunked body), before any
    signature check: the child's peak RSS grows by less than 20 MB."""
    before = serve.peak_rss()
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % (100 * MB)
    head = b"POST /webhooks/tiktok HTTP/1.1\r\nHost: x\r\nAuthorization: forged\r\n%s\r\n\r\n"
    with serve.connect() as conn:
        conn.sendall(head % framing)
        answer = _send_until_answered(conn, _hundred_mb(chunked))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:60]
    assert serve.peak_rss() - before < 20 * MB
    assert httpx.get(f"{serve.url}/health").status_code == 200


def test_sec1_stalled_clients_beyond_the_descriptor_limit_do_not_delay_a_webhook(serve):
    """SEC-1: more stalled connections than the child may open files (half of
    them with part of a request, half silent); a signed webhook then gets its
    200 within a second. The oldest were evicted to make room (closed without
    an answer); the rest are cut at the header timeout, with a 408 for those
    that had begun a request."""
    stalled = []
    try:
        for number in range(DESCRIPTORS + 64):
            conn = serve.connect()
            if number % 2:
                conn.sendall(b"POST /webhooks/tiktok HTTP/1.1\r\nHost: x\r\n")
            stalled.append(conn)
        started = time.monotonic()
        answer = httpx.post(
            f"{serve.url}/webhooks/tiktok", content=ORDER, headers=_signed(ORDER), timeout=5
        )
        elapsed = time.monotonic() - started
        assert answer.status_code == 200
        assert elapsed < 1.0, f"the webhook waited {elapsed:.2f} s"

        cut_at = started + HEADER_TIMEOUT + 3.0
        answers: dict[tuple[str, bytes], int] = {}
        for number, conn in enumerate(stalled):
            conn.settimeout(max(0.1, cut_at - time.monotonic()))
            try:
                first = conn.recv(64)[:12]
            except ConnectionResetError:
                first = b""
            except TimeoutError:
                first = b"still open"
            kind = ("partial", first) if number % 2 else ("silent", first)
            answers[kind] = answers.get(kind, 0) + 1
        # Closed without an answer: evicted, or silent and timed out; 408: timed out.
        assert set(answers) == {("silent", b""), ("partial", b""), ("partial", b"HTTP/1.1 408")}
        assert answers["partial", b""] >= 64 // 2, "at least the clients beyond the limit"
    finally:
        for conn in stalled:
            conn.close()


def test_sec1_a_slow_body_is_cut_after_the_body_timeout(serve):
    """SEC-1: headers on time, then a body that stalls: 408 and closed once the
    body timeout has passed, and nothing of it is kept."""
    with serve.connect() as conn:
        conn.sendall(b"POST /webhooks/tiktok HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        conn.sendall(b'{"type": 1')
        started = time.monotonic()
        answer = conn.recv(4096)
        elapsed = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408")
        assert conn.recv(4096) == b"", "closed after the answer"
    assert BODY_TIMEOUT - 0.2 < elapsed < BODY_TIMEOUT + 2.0


def test_sec1_an_idle_kept_alive_connection_is_closed(serve):
    """SEC-1: after its response, a kept-alive connection that sends nothing
    more is closed once the keep-alive time has passed."""
    with serve.connect() as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = conn.recv(4096)
        while not answer.endswith(b"}"):  # the JSON body may come in a second segment
            answer += conn.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        assert conn.recv(4096) == b""
        assert time.monotonic() - started < KEEP_ALIVE + 2.0


def test_sec1_the_same_junk_50_times_is_one_dead_letter(serve):
    """SEC-1: a signed body that is not JSON, sent 50 times, is one dead-letter
    row with a count of 50; an oversized body sent 3 times is one row too."""
    junk = b"{not json: " + os.urandom(16).hex().encode()
    oversized = b"x" * (1_000_000 + 1)
    with httpx.Client(base_url=serve.url) as client:
        for _ in range(50):
            assert client.post(
                "/webhooks/tiktok", content=junk, headers=_signed(junk)
            ).is_client_error
        for _ in range(3):
            refused = client.post("/webhooks/shoplazza", content=oversized)
            assert refused.status_code == 413
    with sqlite3.connect(f"file:{serve.db}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT source, count, size, raw FROM dead_letters WHERE digest = ?",
            (hashlib.sha256(junk).hexdigest(),),
        ).fetchall()
        assert rows == [("tiktok", 50, len(junk), junk.decode())]
        [(count, size, raw)] = db.execute(
            "SELECT count, size, raw FROM dead_letters WHERE source = 'shoplazza'"
        ).fetchall()
        assert (count, size, raw) == (3, len(oversized), ""), "nothing of it was read"
