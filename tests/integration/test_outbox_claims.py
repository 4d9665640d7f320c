"""ENG-10: outbox commands are claimed, with a lease, before they run, so two
dispatchers on one database never both carry a command out."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from engine import Engine, FakeClock, SystemClock
from engine.outbox import OutboxCommand, OutboxDispatcher, list_commands
from engine.settings import EngineSettings
from engine.store.errors import DatabaseInUse
from engine.store.lock import DatabaseLock
from engine.store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]
CHILD = (sys.executable, "-m", "tests.integration.claim_child")


async def queue(store: SQLiteStore, entities: list[str], per_entity: int, at: float) -> list[str]:
    """``per_entity`` notify_buyer commands for each entity, interleaved by id as
    a busy log would record them; returns their idempotency keys in id order."""
    keys = []
    for n in range(per_entity):
        for entity in entities:
            key = f"{entity}#{n}"
            await store.execute_write(
                "INSERT INTO outbox (event_seq, entity, command, payload, idempotency_key,"
                " created_at, available_at) VALUES (1, ?, 'notify_buyer', '{}', ?, ?, ?)",
                (entity, key, at, at),
            )
            keys.append(key)
    return keys


async def open_shared(db: Path, charts, clock, outbox_lease: float = 60.0) -> Engine:
    """One of several engines on one file: ``lock=False`` lets them share it."""
    settings = EngineSettings(
        run_timers=False, run_outbox=False, lock=False, outbox_lease=outbox_lease
    )
    return await Engine.open(db, charts=charts, clock=clock, settings=settings)


async def test_eng10_two_dispatchers_running_at_once_never_run_a_command_twice(
    tmp_path, sample_charts, clock
):
    """ENG-10, ENG-4: two engines on one database (two connections, two writer
    threads), each dispatching in its own loop. Every command runs exactly once,
    the commands of one entity never overlap and run in id order."""
    db = tmp_path / "shared.db"
    first = await open_shared(db, sample_charts, clock)
    second = await open_shared(db, sample_charts, clock)
    try:
        entities = [f"parcel:{n}" for n in range(12)]
        keys = await queue(first.store, entities, per_entity=4, at=clock.now())
        calls: Counter[str] = Counter()
        ran_by: dict[str, set[str]] = defaultdict(set)
        order: dict[str, list[str]] = defaultdict(list)
        busy: set[str] = set()
        overlaps: list[str] = []
        rng = random.Random(7)

        def handler(name: str):
            async def notify(command: OutboxCommand) -> None:
                if command.entity in busy:  # noted here: the dispatcher would catch an assert
                    overlaps.append(command.idempotency_key)
                busy.add(command.entity)
                calls[command.idempotency_key] += 1
                ran_by[name].add(command.idempotency_key)
                order[command.entity].append(command.idempotency_key)
                await asyncio.sleep(rng.uniform(0, 0.004))
                busy.discard(command.entity)

            return notify

        async def loop(engine: Engine, name: str) -> None:
            # A few commands a round: the first dispatcher cannot take every
            # entity's head at once, so the second has work whatever the timing.
            dispatcher = OutboxDispatcher(
                engine.store, {"notify_buyer": handler(name)}, engine.publish, clock, claim_limit=3
            )
            while sum(calls.values()) < len(keys):
                if not await dispatcher.run_once():
                    await asyncio.sleep(0.001)

        await asyncio.wait_for(
            asyncio.gather(loop(first, "first"), loop(second, "second")), timeout=30
        )
        assert calls == Counter(keys), "every command exactly once"
        assert not overlaps, "two commands of one entity ran at once"
        assert ran_by["first"] and ran_by["second"], "both dispatchers did work"
        for entity in entities:
            assert order[entity] == [k for k in keys if k.startswith(f"{entity}#")]
        done = await list_commands(first.store, status="done")
        assert len(done) == len(keys)
        left = await first.store.fetchall(
            "SELECT COUNT(*) FROM outbox WHERE claimed_by IS NOT NULL"
        )
        assert left[0][0] == 0, "no claim outlives its command"
    finally:
        await second.stop()
        await first.stop()


async def test_a_round_claims_at_most_claim_limit_commands(tmp_path, sample_charts, clock):
    engine = await open_shared(tmp_path / "one.db", sample_charts, clock)
    try:
        keys = await queue(engine.store, [f"parcel:{n}" for n in range(5)], 1, clock.now())
        done: list[str] = []

        async def notify(command: OutboxCommand) -> None:
            done.append(command.idempotency_key)

        dispatcher = OutboxDispatcher(
            engine.store, {"notify_buyer": notify}, engine.publish, clock, claim_limit=2
        )
        assert [await dispatcher.run_once() for _ in range(4)] == [2, 2, 1, 0]
        assert sorted(done) == sorted(keys)
        with pytest.raises(ValueError, match="claim_limit"):
            OutboxDispatcher(engine.store, {}, engine.publish, clock, claim_limit=0)
    finally:
        await engine.stop()


async def test_eng10_a_stalled_dispatchers_command_is_taken_over_once_its_lease_runs_out(
    tmp_path, sample_charts
):
    """ENG-10: a dispatcher that stops renewing (frozen mid-call) keeps the
    command, and the later ones of its entity, from everyone until its lease
    runs out; then another takes it over, once. When the frozen one wakes, its
    late outcome is not recorded over the one that stands."""
    clock = FakeClock()
    db = tmp_path / "shared.db"
    first = await open_shared(db, sample_charts, clock)
    second = await open_shared(db, sample_charts, clock)
    try:
        keys = await queue(first.store, ["parcel:1"], per_entity=2, at=clock.now())
        calls: list[tuple[str, str]] = []
        wake = asyncio.Event()

        async def freezes(command: OutboxCommand) -> None:
            calls.append(("first", command.idempotency_key))
            await wake.wait()
            raise ConnectionError("woke up long after")

        async def works(command: OutboxCommand) -> None:
            calls.append(("second", command.idempotency_key))

        frozen = OutboxDispatcher(first.store, {"notify_buyer": freezes}, first.publish, clock)
        other = OutboxDispatcher(second.store, {"notify_buyer": works}, second.publish, clock)
        stalled = asyncio.create_task(frozen.run_once())
        while not calls:
            await asyncio.sleep(0.001)

        assert await other.run_until_idle() == 0, "a live claim blocks its entity"
        clock.advance(frozen.lease - 1)
        assert await other.run_until_idle() == 0
        clock.advance(2)
        assert await other.run_until_idle() == 2, "the expired claim is taken over"
        assert calls == [("first", keys[0]), ("second", keys[0]), ("second", keys[1])]

        wake.set()
        await stalled
        statuses = {
            c.idempotency_key: (c.status, c.attempts) for c in await list_commands(first.store)
        }
        assert statuses == {keys[0]: ("done", 1), keys[1]: ("done", 1)}, (
            "the frozen dispatcher's failure is not recorded over the takeover's success"
        )
    finally:
        await second.stop()
        await first.stop()


async def test_eng10_a_killed_dispatcher_process_is_taken_over_once(tmp_path, sample_charts):
    """ENG-10: a real child process (holding the database's lock) dispatches
    beside this one and is SIGKILLed mid-command. While it lives (renewing its
    lease), this process never runs its command nor the next one of that
    entity; once it is dead its lock is free at once and, once its lease runs
    out, this process runs each of the two exactly once; no other command ran
    twice."""
    lease = 1.5
    db, calls_file = tmp_path / "shared.db", tmp_path / "calls.log"
    clock = SystemClock()
    engine = await open_shared(db, sample_charts, clock, outbox_lease=lease)
    child = None
    try:
        hang = await queue(engine.store, ["parcel:hang"], per_entity=2, at=clock.now())
        others = await queue(engine.store, [f"parcel:{n}" for n in range(6)], 1, clock.now())
        child = subprocess.Popen(
            [*CHILD, str(db), str(calls_file), str(lease)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), timeout=30)
        assert line.strip() == "hanging"
        with pytest.raises(DatabaseInUse, match=f"pid {child.pid} "):
            DatabaseLock.acquire(db)

        mine: Counter[str] = Counter()

        async def notify(command: OutboxCommand) -> None:
            mine[command.idempotency_key] += 1

        dispatcher = OutboxDispatcher(
            engine.store, {"notify_buyer": notify}, engine.publish, clock, lease=lease
        )
        alive_until = time.monotonic() + lease * 1.5  # longer than an unrenewed lease
        while time.monotonic() < alive_until:
            await dispatcher.run_once()
            await asyncio.sleep(0.02)
        assert not set(hang) & set(mine), "nothing of a live claimant's entity ran here"

        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        DatabaseLock.acquire(db).release()  # the kernel dropped the dead child's lock
        deadline = time.monotonic() + 30
        while mine[hang[1]] == 0 and time.monotonic() < deadline:
            await dispatcher.run_once()
            await asyncio.sleep(0.02)
        await dispatcher.run_until_idle()

        started_by_child = Counter(
            line.split()[1] for line in calls_file.read_text().splitlines() if line
        )
        assert started_by_child[hang[0]] == 1 and started_by_child[hang[1]] == 0
        assert mine[hang[0]] == 1 and mine[hang[1]] == 1, "taken over once"
        total = started_by_child + mine
        assert all(total[key] == 1 for key in others), total
        statuses = {c.idempotency_key: c.status for c in await list_commands(engine.store)}
        assert set(statuses.values()) == {"done"}
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        await engine.stop()


async def test_eng10_a_process_taking_the_lock_voids_claims_left_by_a_dead_one(
    tmp_path, sample_charts, clock
):
    """ENG-10: claims can only have been made by a lock holder that is gone:
    the next process to take the lock runs their commands at once, without
    waiting out the lease."""
    db = tmp_path / "sync.db"
    engine = await Engine.open(
        db, charts=sample_charts, clock=clock, settings=EngineSettings(run_timers=False)
    )
    await engine.stop()
    store = await SQLiteStore.open(db)
    [key] = await queue(store, ["parcel:1"], 1, clock.now())
    await store.execute_write(
        "UPDATE outbox SET claimed_by = 'gone/pid 1/x', claim_until = ?", (clock.now() + 60,)
    )
    await store.close()

    calls = []

    async def notify(command: OutboxCommand) -> None:
        calls.append(command.idempotency_key)

    engine = await Engine.open(
        db,
        charts=sample_charts,
        clock=clock,
        handlers={"notify_buyer": notify},
        settings=EngineSettings(run_timers=False, run_outbox=False),
    )
    try:
        assert await engine.outbox.run_until_idle() == 1
        assert calls == [key]
    finally:
        await engine.stop()
