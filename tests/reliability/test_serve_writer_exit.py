"""ENG-12: a `channelsync serve` whose writer cannot be restarted exits non-zero."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx

from adapters.cli import EXIT_WRITER_FAILED
from adapters.sandbox.load import free_port, start_serve


async def test_eng12_serve_exits_non_zero_when_its_writer_cannot_be_restarted(tmp_path):
    """ENG-12: the database file is moved away and the writer child killed;
    a new child may not create an empty database in its place, so the
    restart fails, the budget (one restart here) runs out, and serve exits
    with EXIT_WRITER_FAILED and says why, for its process manager."""
    db, port = tmp_path / "serve.db", free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        child = await start_serve(db, port, args=["--writer-max-restarts", "1"], output=output)
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                ready = (await client.get(f"http://127.0.0.1:{port}/health/ready")).json()
            os.rename(db, tmp_path / "moved.db")
            os.kill(ready["checks"]["writer"]["pid"], signal.SIGKILL)
            deadline = time.monotonic() + 60
            while child.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert child.returncode == EXIT_WRITER_FAILED
            assert EXIT_WRITER_FAILED not in (0, 1, 2), "neither success nor a usage error"
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=10)
    said = log.read_text()
    assert "writer given up" in said and "serve exits" in said
    assert not db.exists(), "no empty database was created in the moved one's place"
