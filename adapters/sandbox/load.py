"""Drive `channelsync serve` from outside, as a platform would.

Starts `serve` as its own process on a free loopback port with the sandbox's
credentials, and builds signed TikTok webhooks (as bodies, and as whole HTTP
requests for a load generator that writes raw bytes). The reliability tests
and the benchmarks both use it, so neither imports the other.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import httpx

from adapters.sandbox import story
from adapters.tiktok_shop import webhook_signature

SHOP_ID = "7495540735365777507"
# A port nothing listens on: serve's platform calls fail fast when a test
# gives it no sandbox.
CLOSED_URL = "http://127.0.0.1:9"


def free_port() -> int:
    """A loopback port free at the time of asking."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve_environment(**urls: str) -> dict[str, str]:
    """This process's environment plus the sandbox's credentials and platform
    URLs (closed ports unless ``urls`` names them: TIKTOK_API_URL, ...)."""
    return {
        **os.environ,
        "TIKTOK_APP_KEY": story.APP_KEY,
        "TIKTOK_APP_SECRET": story.APP_SECRET,
        "SHOPLAZZA_CLIENT_SECRET": story.CLIENT_SECRET,
        "SHOPLAZZA_ACCESS_TOKEN": story.SHOPLAZZA_TOKEN,
        "SHOPLAZZA_RATE_PER_SECOND": "50",
        "TIKTOK_API_URL": CLOSED_URL,
        "SHOPLAZZA_API_URL": CLOSED_URL,
        **urls,
    }


async def start_serve(
    db: Path,
    port: int,
    *,
    args: Sequence[str] = (),
    output: IO[bytes] | None = None,
    **urls: str,
) -> subprocess.Popen[bytes]:
    """`channelsync serve` on ``db`` and ``port``, returned once /health answers.

    ``urls``: TIKTOK_API_URL, TIKTOK_AUTH_URL, SHOPLAZZA_API_URL... (a sandbox,
    or a closed port when the caller needs no platform); ``args``: more options
    of serve; ``output``: a file for its stdout and stderr (default: none).
    Raises AssertionError (and kills the child) if it does not answer in ~15 s."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.cli.main",
            "serve",
            "--db",
            str(db),
            "--port",
            str(port),
            "--pull-interval",
            "0",
            *args,
        ],
        env=serve_environment(**urls),
        stdout=output or subprocess.DEVNULL,
        stderr=output or subprocess.DEVNULL,
    )
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                if (await client.get(f"http://127.0.0.1:{port}/health")).status_code == 200:
                    return child
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    child.kill()
    raise AssertionError("serve did not start")


def webhook_bodies(count: int, prefix: str = "load") -> list[bytes]:
    """``count`` distinct TikTok return-request webhooks (type 12), each one
    event ``tiktok:{prefix}-{n}`` in the log once accepted."""
    return [
        json.dumps(
            {
                "type": 12,
                "tts_notification_id": f"{prefix}-{n}",
                "shop_id": SHOP_ID,
                "timestamp": 1718305585,
                "data": {
                    "order_id": str(576653688135258178 + n % 2000),
                    "return_role": "BUYER",
                    "return_type": "REFUND",
                    "return_status": "RETURN_OR_REFUND_REQUEST_PENDING",
                    "return_id": f"r{n}",
                    "create_time": 1718305585,
                    "update_time": 1718305585,
                },
            },
            separators=(",", ":"),
        ).encode()
        for n in range(count)
    ]


def signature(body: bytes) -> str:
    """The Authorization header TikTok would send with ``body`` to the sandbox app."""
    return webhook_signature(story.APP_KEY, story.APP_SECRET, body)


def raw_request(host: str, port: int, path: str, body: bytes) -> bytes:
    """``body`` as a whole signed HTTP/1.1 POST, ready to write to a socket."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nAuthorization: {signature(body)}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body
