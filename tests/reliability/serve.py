"""Start `channelsync serve` as a real subprocess for the reliability tests."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import httpx

from adapters.sandbox import story

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def start_serve(
    db: Path,
    port: int,
    *,
    args: Sequence[str] = (),
    output: IO[bytes] | None = None,
    **urls: str,
) -> subprocess.Popen:
    """``urls``: TIKTOK_API_URL, TIKTOK_AUTH_URL, SHOPLAZZA_API_URL... (a sandbox,
    or a closed port when the test needs no platform); ``args``: more options
    of serve; ``output``: a file for its stdout and stderr (default: none)."""
    env = {
        **os.environ,
        "TIKTOK_APP_KEY": story.APP_KEY,
        "TIKTOK_APP_SECRET": story.APP_SECRET,
        "SHOPLAZZA_CLIENT_SECRET": story.CLIENT_SECRET,
        "SHOPLAZZA_ACCESS_TOKEN": story.SHOPLAZZA_TOKEN,
        "SHOPLAZZA_RATE_PER_SECOND": "50",
        "TIKTOK_API_URL": "http://127.0.0.1:9",
        "SHOPLAZZA_API_URL": "http://127.0.0.1:9",
        **urls,
    }
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
        cwd=ROOT,
        env=env,
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
