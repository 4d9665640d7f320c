"""OPS-2 as a property: whatever operators do to outbox commands, in any order,
interleaved with the dispatcher's rounds and every kind of handler outcome,
a discarded command never runs, a done one never runs again, every run uses
the command's own idempotency key, every action is recorded, and nothing
waits without a visible reason."""

from __future__ import annotations

import tempfile
from collections import deque
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import ChartSet, CommandFailed, CommandHeld, Engine, FakeClock, RetryLater
from engine.outbox import OutboxDispatcher
from engine.outbox_admin import OPEN, CommandActionRefused, CommandNotFound
from engine.sample import chart_package
from engine.settings import EngineSettings

CHARTS = ChartSet.load([chart_package()])
OUTCOMES = ("ok", "transient", "refused", "held", "rate_limited")
# Ids no command has: at SQLite's integer limits, zero, negative.
UNKNOWN_IDS = (0, -1, 2**63 - 1, -(2**63), 2**63, 10_000)

steps = st.lists(
    st.one_of(
        st.tuples(st.just("ship"), st.integers(0, 5)),
        st.tuples(st.just("run"), st.lists(st.sampled_from(OUTCOMES), max_size=6)),
        st.tuples(st.sampled_from(["retry", "discard"]), st.integers(0, 7)),
        st.tuples(st.just("release"), st.just(0)),
        st.tuples(st.just("advance"), st.sampled_from([0, 1, 30, 600])),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps)
async def test_ops2_operator_actions_keep_the_outbox_honest(plan):
    """OPS-2: retry and discard, by id, in any order with dispatcher rounds."""
    with tempfile.TemporaryDirectory() as folder:
        clock = FakeClock()
        engine = await Engine.open(
            Path(folder) / "ops.db",
            charts=CHARTS,
            clock=clock,
            settings=EngineSettings(run_timers=False, run_outbox=False),
        )
        try:
            await play(engine, clock, plan)
        finally:
            await engine.stop()


async def play(engine: Engine, clock: FakeClock, plan: list[tuple[str, object]]) -> None:
    outcomes: deque[str] = deque()
    keys: dict[int, str] = {}
    discarded: set[int] = set()
    done: set[int] = set()
    recorded_actions = 0
    shipped: set[int] = set()

    async def handler(command):
        assert command.id not in discarded, "a discarded command ran"
        assert command.id not in done, "a done command ran again"
        assert command.idempotency_key == keys[command.id], "the key changed"
        outcome = outcomes.popleft() if outcomes else "ok"
        if outcome == "transient":
            raise ConnectionError("platform down")
        if outcome == "refused":
            raise CommandFailed("tracking number refused")
        if outcome == "held":
            raise CommandHeld("authorization inactive", hold_key="shop:1")
        if outcome == "rate_limited":
            raise RetryLater("rate limited", after=30)
        done.add(command.id)

    outbox = OutboxDispatcher(
        engine.store, {"notify_buyer": handler}, engine.publish, clock, max_attempts=3
    )
    for action, argument in plan:
        if action == "ship" and argument not in shipped:
            shipped.add(argument)
            parcel = f"parcel:{argument}"
            await engine.publish(
                engine.make_event("parcel.pack", parcel, {}, event_id=f"{parcel}p")
            )
            await engine.publish(
                engine.make_event(
                    "parcel.ship", parcel, {"tracking_number": "T"}, event_id=f"{parcel}s"
                )
            )
        elif action == "run":
            outcomes.clear()
            outcomes.extend(argument)  # type: ignore[arg-type]
            await outbox.run_once()
        elif action in ("retry", "discard"):
            ids = sorted(keys)
            index = int(argument)  # type: ignore[call-overload]
            command_id = ids[index] if index < len(ids) else UNKNOWN_IDS[index % len(UNKNOWN_IDS)]
            before = await status_of(engine, command_id)
            try:
                if action == "retry":
                    after = await engine.commands.retry(command_id, actor="prop")
                else:
                    after = await engine.commands.discard(command_id, "prop", actor="prop")
            except CommandNotFound:
                assert before is None
            except CommandActionRefused as refused:
                assert before in ("done", "discarded") and refused.status == before
            else:
                assert before in OPEN
                recorded_actions += 1
                assert after.status == ("pending" if action == "retry" else "discarded")
                assert after.actions[-1].status_before == before
                if action == "discard":
                    discarded.add(command_id)
                else:
                    assert after.next_attempt_at is not None
                    assert after.next_attempt_at <= clock.now()
        elif action == "release":
            await engine.release_held_commands()
        else:
            clock.advance(float(argument))  # type: ignore[arg-type]
        for view in await engine.commands.list("all"):
            keys.setdefault(view.id, view.idempotency_key)
            assert view.idempotency_key == keys[view.id]
            if view.status in ("held", "parked", "discarded"):
                assert view.reason, f"{view.status} without a reason"
            if view.status == "pending" and view.attempts:
                assert view.reason, "a failed attempt without its error"
            assert (view.status == "done") == (view.id in done)
            assert (view.status == "discarded") == (view.id in discarded)
        assert await engine.store.count("outbox_actions") == recorded_actions


async def status_of(engine: Engine, command_id: int) -> str | None:
    try:
        return (await engine.commands.get(command_id)).status
    except CommandNotFound:
        return None
