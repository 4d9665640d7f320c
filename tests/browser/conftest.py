"""The inspector in a real browser: Playwright for Python driving Debian's
chromium, against the inspector served on loopback over the demo's database.

One demo database, one inspector and one browser per module; a fresh page
(1280x800) per test. Without chromium or Playwright the tests skip, saying
why; with CHANNELSYNC_REQUIRE_SERVICES=1 (CI) they fail instead.
Screenshots go to a temporary folder, or to CHANNELSYNC_SCREENSHOTS (the
docs' pictures are made with CHANNELSYNC_SCREENSHOTS=docs/screenshots).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.chartset import ChartSet, discover_packages
from engine.testing.services import unavailable

CHROMIUM = Path(os.environ.get("CHANNELSYNC_CHROMIUM", "/usr/bin/chromium"))
# An event that came before its chart was installed: a dead letter that a
# retry turns into an event once the chart is there.
LATE_EVENT = {
    "event_id": "warehouse-parcel-77-pack",
    "type": "parcel.pack",
    "source": "warehouse",
    "entity": "parcel:77",
    "payload": {"weight_kg": 2.5},
}
# Input that is no event at all: a dead letter an operator can only discard.
JUNK = b"scanner jammed: ### ### ###"
JUNK_SOURCE = "scanner"


async def _add_dead_letter(db: Path) -> None:
    from engine.runtime import Engine
    from engine.settings import EngineSettings

    packages = [p for name, p in discover_packages().items() if name != "sample"]
    settings = EngineSettings(run_timers=False, run_outbox=False)
    engine = await Engine.open(db, packages, settings=settings)
    try:
        receipt = await engine.publish_raw(json.dumps(LATE_EVENT), "warehouse")
        assert receipt.outcome == "dead_letter", receipt
        junk = await engine.publish_raw(JUNK, JUNK_SOURCE)  # nothing to retry: discarded
        assert junk.outcome == "dead_letter", junk
    finally:
        await engine.stop()


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("inspector") / "demo.db"
    subprocess.run(
        [sys.executable, "-m", "engine.cli.main", "demo", "--db", str(db)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # On a thread of its own: Playwright's sync API keeps a loop on this one.
    adding = threading.Thread(target=lambda: asyncio.run(_add_dead_letter(db)))
    adding.start()
    adding.join(120)
    return db


@pytest.fixture(scope="module")
def charts() -> ChartSet:
    return ChartSet.load(discover_packages().values())


class ServedInspector:
    """`channelsync inspect`'s app on a loopback port, on a thread of its own."""

    def __init__(self, db: Path, charts: ChartSet) -> None:
        self.db = db
        self.charts = charts
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.started = threading.Event()
        self.server: Any = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        import uvicorn

        from engine.cli.common import open_existing
        from engine.inspector import Detached, Presenter, build_inspector

        store = await open_existing(self.db)
        backend = Detached(
            store,
            self.charts,
            Presenter(show_pii=False, vault=None),
            open_writable=lambda: open_existing(self.db, writable=True),
        )
        app = build_inspector(backend, loopback_only=True, live_interval=0.2)
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        config.timeout_graceful_shutdown = 1
        self.server = uvicorn.Server(config)
        asyncio.get_running_loop().call_soon(self.started.set)
        try:
            await self.server.serve(sockets=[self.listener])
        finally:
            await store.close()

    def __enter__(self) -> ServedInspector:
        self.thread.start()
        assert self.started.wait(30), "the inspector did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def inspector(demo_db: Path, charts: ChartSet) -> Iterator[ServedInspector]:
    with ServedInspector(demo_db, charts) as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright for Python is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        unavailable(f"no chromium at {CHROMIUM} (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("CHANNELSYNC_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path
