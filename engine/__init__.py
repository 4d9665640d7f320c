"""channelsync's engine: declarative statecharts over a durable SQLite event log.

The public face; everything else is private to the package.
"""

from engine.bus import Receipt
from engine.charts.loader import ChartLoadError, ChartProblem, load_chart
from engine.charts.schema import chart_json_schema
from engine.chartset import ChartPackage, ChartSet, discover_packages
from engine.clock import Clock, FakeClock, SystemClock
from engine.events import EmptyPayload, Event, EventRejected, EventTypes, Payload, TimerPayload
from engine.logs import configure_logging
from engine.outbox import CommandFailed, CommandHeld, OutboxCommand, RetryLater
from engine.rules import Command, Rules, StepContext
from engine.runtime import Engine
from engine.step import EntityState, Outcome, StepResult, step

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
