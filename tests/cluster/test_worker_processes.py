"""Worker processes against the real PostgreSQL and NATS JetStream: kill -9
one of three mid-load, and SIGSTOP one past its lease (ENG-11).

The default selection kills at one random point of the load (printed, to
replay it); the slow one is a property over several kill points and victims.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.cluster.jetstream import JetStreamPublisher, connect_bus, ensure_stream
from engine.testing.services import unique_name
from tests.cluster.cluster_support import (
    LEASE_TTL,
    Load,
    all_owned,
    applied_count,
    check_exactly_once_in_order,
    commands_done,
    leases,
    notified,
    prepare,
    publish,
    wait_for,
)
from tests.reliability.figures import FIGURES

pytestmark = pytest.mark.services
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Children:
    url: str
    bus: str
    stream: str
    prefix: str
    logs: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self) -> subprocess.Popen[bytes]:
        log = (self.logs / f"worker-{len(self.procs)}.log").open("wb")
        argv = [sys.executable, "-m", "tests.cluster.worker_child"]
        argv += [self.url, self.bus, self.stream, self.prefix, str(LEASE_TTL)]
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def log_of(self, proc: subprocess.Popen[bytes]) -> str:
        return (self.logs / f"worker-{self.procs.index(proc)}.log").read_text(errors="replace")

    def stop(self) -> None:
        """Each child writes its tasks' stacks to its log (what a failed run's
        workers were waiting on), then is killed: a clean stop is not what
        these tests are about, and it takes seconds."""
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                os.kill(proc.pid, signal.SIGUSR1)
        time.sleep(0.2)
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


@dataclass
class Bus:
    stream: str
    prefix: str
    publisher: JetStreamPublisher


@pytest.fixture
async def bus(nats_server_url: str) -> AsyncIterator[Bus]:
    stream, prefix = unique_name("CLUSTER"), unique_name("cluster")
    connection = await connect_bus(nats_server_url)
    await ensure_stream(connection.js, stream=stream, prefix=prefix)
    try:
        yield Bus(stream, prefix, JetStreamPublisher(connection.js, stream=stream, prefix=prefix))
    finally:
        await connection.js.delete_stream(stream)
        await connection.close()


@pytest.fixture
def children(
    pg_database_url: str, nats_server_url: str, bus: Bus, tmp_path: Path
) -> Iterator[Children]:
    made = Children(pg_database_url, nats_server_url, bus.stream, bus.prefix, tmp_path)
    try:
        yield made
    finally:
        made.stop()


async def _owned_by(url: str, owner: str) -> set[int]:
    return {row.partition for row in await leases(url) if row.live and row.owner == owner}


async def kill_one_of_three(children: Children, bus: Bus, kill_at: int, victim: int) -> float:
    """Kill -9 worker ``victim`` once ``kill_at`` events were acknowledged;
    check ENG-11; return the seconds its partitions took to move."""
    await prepare(children.url)
    procs = [children.spawn() for _ in range(3)]
    await wait_for(lambda: all_owned(children.url, owners=3), 60, "three workers own it all")
    load = Load(unique_name("kill"), parcels=24, notes=4)  # 24 * 6 events
    # A kill point past the last acknowledgement would never fire: nothing tested.
    assert 1 <= kill_at <= len(load.events), (kill_at, len(load.events))
    killed = procs[victim]
    moved: list[float] = []

    async def on_ack(acked: int) -> None:
        if acked != kill_at:
            return
        held = await _owned_by(children.url, f"child-{killed.pid}")
        os.kill(killed.pid, signal.SIGKILL)
        start = time.monotonic()

        async def taken_over() -> bool:
            rows = {row.partition: row for row in await leases(children.url)}
            return all(rows[p].live and rows[p].owner != f"child-{killed.pid}" for p in held)

        moved.append(await wait_for(taken_over, LEASE_TTL + 10, "the victim's partitions moved"))
        assert time.monotonic() - start <= LEASE_TTL + 1.0, "partitions moved too late"

    await publish(bus.publisher, load.events, pause=0.004, on_ack=on_ack)
    await wait_for(lambda: _all_applied(children.url, load), 60, "every event applied")
    await wait_for(lambda: commands_done(children.url, load), 30, "every command done")
    await check_exactly_once_in_order(children.url, load)
    runs = await notified(children.url)
    assert len(runs) == load.parcels
    for key, pids in runs.items():
        # A command runs again only after its claimant died holding it.
        assert all(pid == killed.pid for pid in pids[:-1]), (key, pids)
    return moved[0]


async def _all_applied(url: str, load: Load) -> bool:
    return await applied_count(url, load) == len(load.events)


async def test_kill_9_one_of_three_workers_mid_load(children: Children, bus: Bus) -> None:
    draw = random.Random()
    kill_at, victim = draw.randint(20, 24 * 6 - 20), draw.randint(0, 2)
    print(f"kill point: after {kill_at} acknowledged events, worker {victim}")
    moved = await kill_one_of_three(children, bus, kill_at, victim)
    FIGURES["cluster: partitions of a killed worker moved after (s)"] = round(moved, 2)


@pytest.mark.slow
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(kill_at=st.integers(1, 24 * 6), victim=st.integers(0, 2))
def test_kill_9_at_random_points_keeps_exactly_once_and_order(
    pg_database_url: str, nats_server_url: str, tmp_path: Path, kill_at: int, victim: int
) -> None:
    from engine.testing.services import fresh_database

    async def scenario() -> None:
        stream, prefix = unique_name("CLUSTER"), unique_name("cluster")
        connection = await connect_bus(nats_server_url)
        await ensure_stream(connection.js, stream=stream, prefix=prefix)
        publisher = JetStreamPublisher(connection.js, stream=stream, prefix=prefix)
        try:
            with fresh_database() as url:
                made = Children(url, nats_server_url, stream, prefix, tmp_path)
                try:
                    await kill_one_of_three(made, Bus(stream, prefix, publisher), kill_at, victim)
                finally:
                    made.stop()
        finally:
            await connection.js.delete_stream(stream)
            await connection.close()

    asyncio.run(scenario())


async def test_sigstop_past_the_lease_then_sigcont_steps_down(children: Children, bus: Bus) -> None:
    await prepare(children.url)
    paused, other = children.spawn(), children.spawn()
    await wait_for(lambda: all_owned(children.url, owners=2), 60, "two workers own it all")
    first = Load(unique_name("before"), parcels=8, notes=2)
    await publish(bus.publisher, first.events)
    await wait_for(lambda: _all_applied(children.url, first), 30, "the first load applied")
    held = await _owned_by(children.url, f"child-{paused.pid}")
    os.kill(paused.pid, signal.SIGSTOP)
    await wait_for(
        lambda: _owns(children.url, f"child-{other.pid}", held), LEASE_TTL + 5, "taken over"
    )
    second = Load(unique_name("after"), parcels=8, notes=2)
    await publish(bus.publisher, second.events)
    await wait_for(lambda: _all_applied(children.url, second), 30, "the second load applied")
    os.kill(paused.pid, signal.SIGCONT)

    async def stepped_down() -> bool:
        log = children.log_of(paused)
        return "worker steps down" in log and '"commit failed"' in log

    await wait_for(stepped_down, 10, "the paused worker stepped down")
    lines = [json.loads(line) for line in children.log_of(paused).splitlines() if "{" in line]
    downs = [line for line in lines if line.get("event") == "worker steps down"]
    assert "lease lost" in downs[0]["reason"]
    # What it had fetched of the second load, it could not commit: the fence
    # refused it (on the epoch, or as no longer held once its round had
    # run), or its session was gone (frozen mid-transaction, PostgreSQL ended
    # it after half a lease idle).
    refused = [line for line in lines if line.get("event") == "commit failed"]
    assert refused and all(
        "lease lost" in line["error"] or "connection" in line["error"] for line in refused
    )
    await wait_for(lambda: all_owned(children.url, owners=2), 20, "it rejoined and took a share")
    await check_exactly_once_in_order(children.url, first)
    await check_exactly_once_in_order(children.url, second)


async def _owns(url: str, owner: str, partitions: set[int]) -> bool:
    return partitions <= await _owned_by(url, owner)
