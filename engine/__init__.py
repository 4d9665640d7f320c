"""channelsync's engine: declarative statecharts over a durable SQLite event log.

The public face; everything else is private to the package.

Each name is imported on first use (PEP 562's module ``__getattr__``), not when
``engine`` is: every ``engine.*`` module, the command line's included, imports
this package first, and the whole engine (bus, pydantic models, SQLite,
structlog) takes about a second to import, which `channelsync --help` must
not pay (docs/performance.md, "Issue 18").
"""

from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.bus import Receipt
    from engine.charts.loader import ChartLoadError, ChartProblem, load_chart
    from engine.charts.schema import chart_json_schema
    from engine.chartset import ChartPackage, ChartSet, discover_packages
    from engine.clock import Clock, FakeClock, SystemClock
    from engine.events import (
        EmptyPayload,
        Event,
        EventRejected,
        EventTypes,
        Payload,
        TimerPayload,
    )
    from engine.logs import configure_logging
    from engine.outbox import CommandFailed, CommandHeld, OutboxCommand, RetryLater
    from engine.rules import Command, Rules, StepContext
    from engine.runtime import Engine
    from engine.step import EntityState, Outcome, StepResult, step

# Where each public name lives.
_HOMES = {
    "ChartLoadError": "engine.charts.loader",
    "ChartPackage": "engine.chartset",
    "ChartProblem": "engine.charts.loader",
    "ChartSet": "engine.chartset",
    "Clock": "engine.clock",
    "Command": "engine.rules",
    "CommandFailed": "engine.outbox",
    "CommandHeld": "engine.outbox",
    "EmptyPayload": "engine.events",
    "Engine": "engine.runtime",
    "EntityState": "engine.step",
    "Event": "engine.events",
    "EventRejected": "engine.events",
    "EventTypes": "engine.events",
    "FakeClock": "engine.clock",
    "OutboxCommand": "engine.outbox",
    "Outcome": "engine.step",
    "Payload": "engine.events",
    "Receipt": "engine.bus",
    "RetryLater": "engine.outbox",
    "Rules": "engine.rules",
    "StepContext": "engine.rules",
    "StepResult": "engine.step",
    "SystemClock": "engine.clock",
    "TimerPayload": "engine.events",
    "chart_json_schema": "engine.charts.schema",
    "configure_logging": "engine.logs",
    "discover_packages": "engine.chartset",
    "load_chart": "engine.charts.loader",
    "step": "engine.step",
}

__all__ = [
    "ChartLoadError",
    "ChartPackage",
    "ChartProblem",
    "ChartSet",
    "Clock",
    "Command",
    "CommandFailed",
    "CommandHeld",
    "EmptyPayload",
    "Engine",
    "EntityState",
    "Event",
    "EventRejected",
    "EventTypes",
    "FakeClock",
    "OutboxCommand",
    "Outcome",
    "Payload",
    "Receipt",
    "RetryLater",
    "Rules",
    "StepContext",
    "StepResult",
    "SystemClock",
    "TimerPayload",
    "chart_json_schema",
    "configure_logging",
    "discover_packages",
    "load_chart",
    "step",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))


class _Package(ModuleType):
    """The package, whose public names win over its submodules of the same name.

    Importing ``engine.step`` (the module) sets the package's ``step`` to it;
    ``from engine import step`` means the function, as it did when this file
    imported every name itself."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _HOMES and isinstance(value, ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
