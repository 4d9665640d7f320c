"""Rules that raise: one event's error outcome, never a lost batch (ENG-2, ENG-3)."""

from __future__ import annotations

from engine import ChartPackage, ChartSet, Engine, Rules
from engine.events import Payload
from engine.settings import EngineSettings


class Flagged(Payload):
    explode: bool = False


def _charts(tmp_path) -> ChartSet:
    rules = Rules()
    rules.event("thing.go", Flagged)

    @rules.guard("safe", refusal="not safe")
    def safe(ctx) -> bool:
        if ctx.payload.explode:
            raise RuntimeError("the guard's lookup broke")
        return True

    @rules.action("count")
    def count(ctx) -> None:
        ctx.data["count"] = ctx.data.get("count", 0) + 1

    (tmp_path / "thing.yaml").write_text(
        "name: thing\nentity_kind: thing\ninitial: a\nstates: {a: {label: A}}\n"
        "events: [thing.go]\ntransitions:\n"
        "  - {event: thing.go, source: a, guards: [safe], actions: [count]}\n"
    )
    return ChartSet.load([ChartPackage.from_directory("t", tmp_path, rules)])


async def test_eng2_a_guard_that_raises_fails_its_event_only(tmp_path, clock):
    """ENG-2/ENG-3: a guard that raises in the middle of a batch gives its own
    event an error outcome with the reason; the events before and after it in
    the same batch are applied and stored, and a later publish of the same
    ids is a duplicate of what was stored (nothing claimed and then lost)."""
    charts = _charts(tmp_path)
    engine = await Engine.open(
        tmp_path / "rules.db",
        charts=charts,
        clock=clock,
        settings=EngineSettings(run_timers=False, run_outbox=False),
    )
    try:
        make = engine.make_event
        events = [
            make("thing.go", f"thing:{n % 3}", {"explode": n == 4}, event_id=f"go-{n}")
            for n in range(9)
        ]
        receipts = await engine.publish_many(events)
        outcomes = [r.outcome for r in receipts]
        assert outcomes == ["transitioned"] * 4 + ["error"] + ["transitioned"] * 4
        assert "guard safe failed: RuntimeError: the guard's lookup broke" in receipts[4].reason
        assert await engine.store.count("events") == 9
        counts = {e.key: e.data["count"] for e in await engine.entities()}
        assert counts == {"thing:0": 3, "thing:1": 2, "thing:2": 3}
        again = await engine.publish_many(events)
        assert {r.outcome for r in again} == {"duplicate"}
    finally:
        await engine.stop()


async def test_eng2_a_batch_that_breaks_in_the_bus_is_refused_and_its_ids_released(
    tmp_path, clock, monkeypatch
):
    """ENG-2: should stepping a batch ever break in the bus itself (a bug, an
    interrupt), its publishers get the error, nothing of it is stored, and
    publishing the same events again applies them: their ids were not left
    claimed, which would have made the retry a 'duplicate' of nothing."""
    import pytest

    import engine.bus.stepper

    charts = _charts(tmp_path)
    engine_ = await Engine.open(
        tmp_path / "bus.db",
        charts=charts,
        clock=clock,
        settings=EngineSettings(run_timers=False, run_outbox=False),
    )
    real_step = engine.bus.stepper.step_in_place

    def breaking_step(chart, entity, event, settings, **options):
        if event.event_id == "go-5":
            raise RuntimeError("a bug in the bus")
        return real_step(chart, entity, event, settings, **options)

    try:
        events = [
            engine_.make_event("thing.go", "thing:1", {}, event_id=f"go-{n}") for n in range(8)
        ]
        monkeypatch.setattr(engine.bus.stepper, "step_in_place", breaking_step)
        with pytest.raises(RuntimeError, match="a bug in the bus"):
            await engine_.publish_many(events)
        assert await engine_.store.count("events") == 0
        monkeypatch.setattr(engine.bus.stepper, "step_in_place", real_step)
        receipts = await engine_.publish_many(events)
        assert [r.outcome for r in receipts] == ["transitioned"] * 8
        assert (await engine_.entity("thing:1")).data["count"] == 8
    finally:
        await engine_.stop()
