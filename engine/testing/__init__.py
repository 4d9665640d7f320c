"""Property-testing tools for charts (like structlog.testing: shipped with the library).

from engine.testing import ChartHarness, chart_state_machine, walks, deliveries
"""

from engine.testing.configurations import ChartShape
from engine.testing.coverage import (
    CoverageRecorder,
    Edge,
    edges,
    shortest_paths,
    transition_paths,
)
from engine.testing.drive import drive_transitions
from engine.testing.harness import ChartHarness, LogEntry
from engine.testing.stateful import chart_state_machine
from engine.testing.strategies import (
    configurations,
    deliveries,
    model_dicts,
    payloads,
    sequences,
    walks,
)

__all__ = [
    "ChartHarness",
    "ChartShape",
    "CoverageRecorder",
    "Edge",
    "LogEntry",
    "chart_state_machine",
    "configurations",
    "deliveries",
    "drive_transitions",
    "edges",
    "model_dicts",
    "payloads",
    "sequences",
    "shortest_paths",
    "transition_paths",
    "walks",
]
