"""`channelsync serve --inspector`: the inspector under /inspector of the
running service, behind the token it wrote beside the database; the token
appears in none of serve's output; serve still stops at once with a live
page open."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx

from adapters.sandbox.load import free_port, start_serve


async def test_serve_mounts_the_inspector_behind_its_token_and_stops_with_a_page_open(
    tmp_path: Path,
) -> None:
    db, port = tmp_path / "serve.db", free_port()
    log = tmp_path / "serve.log"
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        child = await start_serve(db, port, args=["--inspector"], output=output)
        try:
            token = (tmp_path / "serve.db.inspector-token").read_text().strip()
            async with httpx.AsyncClient(timeout=10) as client:
                assert (await client.get(f"{base}/inspector/")).status_code == 401
                bearer = {"Authorization": f"Bearer {token}"}
                page = await client.get(f"{base}/inspector/", headers=bearer)
                assert page.status_code == 200 and "<h1>Entities</h1>" in page.text
                assert "held by a running engine" not in page.text  # its own engine
                assert (await client.get(f"{base}/health")).status_code == 200
                async with client.stream("GET", f"{base}/inspector/live", headers=bearer) as live:
                    await live.aiter_lines().__anext__()  # the stream is open
                    child.send_signal(signal.SIGTERM)
                    started = time.monotonic()
                    while child.poll() is None and time.monotonic() - started < 15:
                        await asyncio.sleep(0.05)
            assert child.returncode == 0
            assert time.monotonic() - started < 10, "an open live page held serve up"
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=10)
    said = log.read_text()
    assert "inspector under /inspector/" in said and "inspector-token" in said
    assert token not in said
