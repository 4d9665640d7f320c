"""One engine on its own event loop, for a property that draws many examples
(hypothesis calls a plain function; each example runs its coroutines here)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from engine import Engine, FakeClock
from engine.sample import chart_package
from engine.settings import EngineSettings

T = TypeVar("T")


class LoopEngine:
    """The sample chart's engine on ``path``, with a `FakeClock` of its own."""

    def __init__(self, path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.engine = self.loop.run_until_complete(
            Engine.open(
                path,
                [chart_package()],
                clock=self.clock,
                settings=EngineSettings(run_timers=False, run_outbox=False, synchronous="OFF"),
            )
        )

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        self.run(self.engine.stop())
        self.loop.close()
