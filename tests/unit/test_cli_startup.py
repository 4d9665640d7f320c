"""`channelsync --help` imports the command line, not the engine (issue 18).

Each check runs in a fresh interpreter: in this one the engine is long loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# What the engine's work needs and the command line's help does not: the
# event models (pydantic), SQLite and its driver, structlog, the chart loader
# (YAML), the vault's cryptography, the HTTP stack and the cluster's clients.
HEAVY = (
    "pydantic",
    "pydantic_core",
    "aiosqlite",
    "sqlite3",
    "structlog",
    "yaml",
    "cryptography",
    "httpx",
    "starlette",
    "uvicorn",
    "jinja2",
    "psycopg",
    "nats",
    "prometheus_client",
    "engine.runtime",
    "engine.step",
    "engine.events",
    "engine.chartset",
    "engine.store.sqlite",
    "statecharts.views",
)

HELP = """
import json, sys
from engine.cli.main import build_cli
try:
    build_cli()(sys.argv[1:])
except SystemExit as exit:
    assert not exit.code, exit.code
print(json.dumps(sorted(sys.modules)))
"""


def _modules_after(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", HELP, *args], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_help_imports_none_of_the_engines_heavy_modules():
    loaded = _modules_after("--help")
    assert "engine.cli.replay_cmd" in loaded and "adapters.cli" in loaded  # it did build the app
    assert sorted(m for m in HEAVY if m in loaded) == []


# A command's own help comes after the app's callback has set up logging
# (engine.logs: structlog, which quotes pydantic's JSON and the event checks).
LOGGING = {"pydantic", "pydantic_core", "structlog", "engine.events"}


# replay's work lives in a module of its own; the others are the commands that
# reach PostgreSQL, NATS, uvicorn and the inspector's templates when they run.
@pytest.mark.parametrize("command", ["replay", "serve", "workers", "inspect", "whatif"])
def test_a_commands_help_imports_only_the_logging_besides(command: str):
    loaded = _modules_after(command, "--help")
    assert sorted(m for m in HEAVY if m in loaded and m not in LOGGING) == []


def test_the_packages_names_are_imported_on_first_use_and_mean_what_they_meant():
    """``engine.step`` is a module and ``from engine import step`` the function,
    whichever is imported first."""
    script = """
import sys
import engine
assert "engine.runtime" not in sys.modules
from engine.step import step_trusted
from engine import Engine, step
assert callable(step) and step.__module__ == "engine.step" and not hasattr(step, "step")
assert Engine.__module__ == "engine.runtime" and engine.Engine is Engine
assert "Engine" in dir(engine)
try:
    engine.no_such_name
except AttributeError as error:
    assert "no_such_name" in str(error)
else:
    raise AssertionError("no AttributeError")
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr
