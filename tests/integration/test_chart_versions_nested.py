"""Versions of a chart with compound states and history (ENG-9, ENG-8), live on
a real SQLite file: an upgrade that renames a compound state takes its
children and the entity's history along, and the entity then re-enters the
renamed state through history on the new version; `check` replays all of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine import ChartSet, Engine, FakeClock
from engine.charts.compiled import CompiledChart
from engine.charts.loader import LoadedChart
from engine.charts.schema import ChartSpec
from engine.replay import check
from engine.rules import Rules
from engine.settings import EngineSettings
from engine.store.sqlite import SQLiteStore
from engine.version_migration import plan_moves, publish_moves

QUIET = EngineSettings(run_timers=False, run_outbox=False)


def ticket_chart(version: int, working: str, checking: str, **more: Any) -> dict[str, Any]:
    """A ticket: ``working`` (draft, then ``checking``) until closed; reopening
    returns to where it was (shallow history)."""
    leaf = {"label": "leaf"}
    return {
        "name": "ticket",
        "entity_kind": "ticket",
        "version": version,
        "initial": working,
        "states": {
            working: {"label": "w", "initial": "draft", "states": {"draft": leaf, checking: leaf}},
            "closed": leaf,
        },
        "events": ["ticket.submit", "ticket.close", "ticket.reopen"],
        "transitions": [
            {
                "event": "ticket.submit",
                "source": f"{working}.draft",
                "target": f"{working}.{checking}",
            },
            {"event": "ticket.close", "source": working, "target": "closed"},
            {"event": "ticket.reopen", "source": "closed", "target": working, "history": "shallow"},
        ],
        **more,
    }


def charts(*documents: dict[str, Any]) -> ChartSet:
    rules = Rules()
    for event in ("ticket.submit", "ticket.close", "ticket.reopen"):
        rules.event(event)
    compiled = [
        CompiledChart(
            LoadedChart(ChartSpec.model_validate(d), f"ticket_v{d['version']}.yaml", {}), rules
        )
        for d in documents
    ]
    return ChartSet(compiled, rules, {})


V1 = ticket_chart(1, "open", "review")
V2 = ticket_chart(
    2,
    "active",
    "checking",
    upgrades=[{"from_version": 1, "states": {"open": "active", "open.review": "active.checking"}}],
)
V1_ONLY = charts(V1)
BOTH = charts(V1, V2)


async def play(db: Path, chart_set: ChartSet, clock: FakeClock, *steps: str) -> list[Any]:
    engine = await Engine.open(db, charts=chart_set, clock=clock, settings=QUIET)
    try:
        receipts = []
        for step in steps:
            clock.advance(1)
            receipts.append(
                await engine.publish(
                    {
                        "event_id": f"{step}:{clock.now()}",
                        "type": step,
                        "source": "t",
                        "entity": "ticket:1",
                    }
                )
            )
        return receipts
    finally:
        await engine.stop()


async def test_an_upgrade_renames_a_compound_state_and_its_history(
    db_path: Path, clock: FakeClock
) -> None:
    await play(db_path, V1_ONLY, clock, "ticket.submit", "ticket.close")
    engine = await Engine.open(db_path, charts=BOTH, clock=clock, settings=QUIET)
    try:
        before = await engine.entity("ticket:1")
        assert before is not None
        assert (before.state, before.history) == ("closed", {"open": ["open.review"]})
        await publish_moves(engine, await plan_moves(engine.store, BOTH))
        moved = await engine.entity("ticket:1")
        assert moved is not None
        assert (moved.state, moved.chart_version) == ("closed", 2)
        assert moved.history == {"active": ["active.checking"]}
    finally:
        await engine.stop()

    [reopened] = await play(db_path, BOTH, clock, "ticket.reopen")
    assert reopened.to_state == "active.checking", "history re-enters the renamed state"

    store = await SQLiteStore.open_readonly(db_path)
    try:
        result = await check(store, BOTH)
        assert result.divergence is None, result.divergence.describe()
    finally:
        await store.close()
