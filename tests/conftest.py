from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from engine import ChartSet, Engine, FakeClock
from engine.logs import configure_logging
from engine.sample import chart_package as sample_package
from engine.settings import EngineSettings

configure_logging("WARNING", json=True)
# The CLI runs inside this process here: keep the interpreter's GC settings
# (engine.gc_tuning) for the whole suite. Subprocesses inherit it.
os.environ["CHANNELSYNC_GC_TUNING"] = "0"

# CI runs every property on the same examples, so a submission's verdict does
# not depend on luck; a developer's run draws new ones each time and keeps
# the failures it finds in the example database.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "channelsync.db"


@pytest.fixture(scope="session")
def sample_charts() -> ChartSet:
    return ChartSet.load([sample_package()])


@contextlib.asynccontextmanager
async def opened_sample_engine(
    target: Path | str, charts: ChartSet, clock: FakeClock
) -> AsyncIterator[Engine]:
    """The sample charts' engine on ``target`` (a SQLite file or a PostgreSQL
    URL), its timers and outbox left to the test; stopped on the way out."""
    engine = await Engine.open(
        target,
        charts=charts,
        clock=clock,
        settings=EngineSettings(run_timers=False, run_outbox=False),
    )
    try:
        yield engine
    finally:
        await engine.stop()


@pytest.fixture
async def sample_engine(
    db_path: Path, clock: FakeClock, sample_charts: ChartSet
) -> AsyncIterator[Engine]:
    async with opened_sample_engine(db_path, sample_charts, clock) as engine:
        yield engine


async def invoke_cli(*args: str):
    """Run the CLI on a worker thread (it runs its own event loop)."""
    import asyncio

    from typer.testing import CliRunner

    from engine.cli.main import build_cli

    try:
        return await asyncio.to_thread(CliRunner().invoke, build_cli(), list(args))
    finally:
        configure_logging("WARNING", json=True)  # the CLI set its own level


def pytest_sessionfinish(session):
    """Under pytest-xdist, a worker hands what it measured to the controller."""
    from tests.reliability.figures import FIGURES

    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["reliability_figures"] = dict(FIGURES)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """pytest-xdist's controller: gather the figures each worker measured."""
    from tests.reliability.figures import FIGURES

    FIGURES.update(getattr(node, "workeroutput", {}).get("reliability_figures", {}))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print what the reliability suite measured (kill points, fuzz cases, load)."""
    from tests.reliability.figures import FIGURES

    if FIGURES:
        terminalreporter.section("reliability figures")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture
def pg_database_url() -> Iterator[str]:
    """A fresh database on the local PostgreSQL (skips, or fails in CI, without one)."""
    from engine.testing.services import fresh_database

    with fresh_database() as url:
        yield url


@pytest.fixture
def nats_server_url() -> str:
    """The local NATS JetStream server (skips, or fails in CI, without one)."""
    from engine.testing.services import nats_url

    return nats_url()
