"""The JetStream bus against the real NATS server: each test on its own stream and subjects."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.cluster.jetstream import (
    BusConnection,
    BusUnavailable,
    JetStreamPublisher,
    PartitionFeed,
    connect_bus,
    ensure_stream,
    partition_backlog,
)
from engine.cluster.partitions import partition_of
from engine.testing.services import unique_name

pytestmark = pytest.mark.services


@dataclass
class Bus:
    conn: BusConnection
    stream: str
    prefix: str

    def publisher(self) -> JetStreamPublisher:
        return JetStreamPublisher(self.conn.js, stream=self.stream, prefix=self.prefix)

    def feed(self, partition: int, start_after: int = 0, **tuning: float) -> PartitionFeed:
        return PartitionFeed(
            self.conn.js,
            stream=self.stream,
            prefix=self.prefix,
            partition=partition,
            start_after=start_after,
            **tuning,  # type: ignore[arg-type]
        )


@pytest.fixture
async def bus(nats_server_url: str) -> AsyncIterator[Bus]:
    conn = await connect_bus(nats_server_url)
    stream, prefix = unique_name("TEST_EVENTS"), unique_name("test.events").replace("_", ".")
    await ensure_stream(conn.js, stream=stream, prefix=prefix, duplicate_window=30.0)
    try:
        yield Bus(conn, stream, prefix)
    finally:
        await conn.js.delete_stream(stream)
        await conn.close()


def entities_in_one_partition(count: int) -> tuple[int, list[str]]:
    """``count`` entity keys that all hash to the same partition."""
    first = "order:0"
    partition = partition_of(first)
    keys = [first]
    n = 1
    while len(keys) < count:
        key = f"order:{n}"
        if partition_of(key) == partition:
            keys.append(key)
        n += 1
    return partition, keys


async def drain(
    feed: PartitionFeed, *, expect: int, timeout: float = 5.0, wait: float = 0.5
) -> list[int]:
    """The sequences of ``expect`` messages read from ``feed`` (fails if they do not come)."""
    seqs: list[int] = []
    deadline = time.monotonic() + timeout
    while len(seqs) < expect and time.monotonic() < deadline:
        msgs = await feed.fetch(50, timeout=wait)
        seqs.extend(m.seq for m in msgs)
        await feed.ack(msgs)
    return seqs


async def test_a_redelivered_publish_with_the_same_id_is_stored_once(bus: Bus) -> None:
    publisher = bus.publisher()
    first = await publisher.publish("evt-1", "order:7", b'{"n": 1}')
    again = await publisher.publish("evt-1", "order:7", b'{"n": 1}')
    other = await publisher.publish("evt-2", "order:7", b'{"n": 2}')
    assert (first.duplicate, again.duplicate, other.duplicate) == (False, True, False)
    assert again.seq == first.seq and other.seq == first.seq + 1

    feed = bus.feed(partition_of("order:7"))
    try:
        msgs = await feed.fetch(10, timeout=1.0)
        assert [(m.event_id, m.body) for m in msgs] == [
            ("evt-1", b'{"n": 1}'),
            ("evt-2", b'{"n": 2}'),
        ]
        assert all(abs(m.published_at - time.time()) < 60 for m in msgs)
    finally:
        await feed.close()


async def test_a_feed_yields_only_its_partition_after_the_offset_in_order(bus: Bus) -> None:
    partition, keys = entities_in_one_partition(3)
    outsider = next(f"x:{n}" for n in range(1000) if partition_of(f"x:{n}") != partition)
    publisher = bus.publisher()
    ours: list[int] = []
    for n in range(30):
        ack = await publisher.publish(f"evt-{n}", keys[n % 3], f"{n}".encode())
        ours.append(ack.seq)
        await publisher.publish(f"other-{n}", outsider, b"not ours")

    after = ours[9]  # as if the first ten were committed
    feed = bus.feed(partition, start_after=after)
    try:
        got = await drain(feed, expect=20)
    finally:
        await feed.close()
    assert got == ours[10:]


async def test_an_empty_partition_returns_nothing_after_the_timeout(bus: Bus) -> None:
    feed = bus.feed(5)
    try:
        started = time.monotonic()
        assert await feed.fetch(10, timeout=0.3) == []
        assert time.monotonic() - started < 3.0
    finally:
        await feed.close()


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    cut=st.integers(min_value=0, max_value=24),
    acked=st.integers(min_value=0, max_value=24),
    batch=st.integers(min_value=1, max_value=7),
)
async def test_nothing_is_lost_or_repeated_when_a_consumer_is_recreated_from_the_offset(
    bus: Bus, cut: int, acked: int, batch: int
) -> None:
    """A worker reads some, commits ``cut`` of them (maybe acks more or fewer), dies; the
    next feed from the stored offset yields exactly the rest, in order."""
    partition, keys = entities_in_one_partition(2)
    publisher = bus.publisher()
    tag = unique_name("e")
    seqs = [(await publisher.publish(f"{tag}-{n}", keys[n % 2], b"x")).seq for n in range(25)]
    base = bus.feed(partition, start_after=seqs[0] - 1)
    read: list[int] = []
    while len(read) < max(cut, acked):
        msgs = await base.fetch(batch, timeout=1.0)
        read.extend(m.seq for m in msgs)
        if acked and len(read) >= acked:
            await base.ack([m for m in msgs if m.seq <= seqs[acked - 1]])
    # the crash: the consumer is abandoned with unacked messages in flight
    stored = seqs[cut - 1] if cut else seqs[0] - 1
    resumed = bus.feed(partition, start_after=stored)
    try:
        rest = await drain(resumed, expect=25 - cut)
        assert await resumed.fetch(5, timeout=0.2) == []
    finally:
        await resumed.close()
        await base.close()
    assert read == seqs[: len(read)]
    assert rest == seqs[cut:]


async def test_deliveries_the_client_drops_are_delivered_again_not_skipped(bus: Bus) -> None:
    """A client buffer of two messages: a burst of 12 overflows it (a slow
    consumer), yet the feed hands out all 12, once each, in order."""
    partition, keys = entities_in_one_partition(2)
    publisher = bus.publisher()
    seqs = [(await publisher.publish(f"e{n}", keys[n % 2], b"x")).seq for n in range(12)]
    feed = bus.feed(partition, client_buffer=2, stall_after=0.1)
    try:
        got = await drain(feed, expect=12, timeout=15.0, wait=0.2)
    finally:
        await feed.close()
    assert got == seqs
    assert feed.restarts > 0  # the overflow did happen, and was recovered from


async def test_a_consumer_lost_on_the_server_is_made_again_from_the_position(bus: Bus) -> None:
    partition, keys = entities_in_one_partition(1)
    publisher = bus.publisher()
    first = [(await publisher.publish(f"a{n}", keys[0], b"x")).seq for n in range(3)]
    feed = bus.feed(partition, idle_check=0.1)
    try:
        assert await drain(feed, expect=3) == first
        [consumer] = [c async for c in _consumers(bus)]
        await bus.conn.js.delete_consumer(bus.stream, consumer)
        later = [(await publisher.publish(f"b{n}", keys[0], b"x")).seq for n in range(3)]
        await asyncio.sleep(0.2)
        assert await drain(feed, expect=3) == later
        assert feed.restarts == 1
    finally:
        await feed.close()


async def _consumers(bus: Bus) -> AsyncIterator[str]:
    info = await bus.conn.js.stream_info(bus.stream)
    assert info.state.consumer_count == 1
    for consumer in await bus.conn.js.consumers_info(bus.stream):
        yield consumer.name


async def test_backlog_counts_what_each_partition_has_after_its_offset(bus: Bus) -> None:
    partition, keys = entities_in_one_partition(1)
    quiet = (partition + 1) % 256
    publisher = bus.publisher()
    seqs = [(await publisher.publish(f"e{n}", keys[0], b"x")).seq for n in range(6)]
    await asyncio.sleep(0.05)

    backlog = await partition_backlog(
        bus.conn.js,
        stream=bus.stream,
        prefix=bus.prefix,
        offsets={partition: seqs[1], quiet: 0},
    )
    assert backlog[partition].pending == 4
    assert backlog[partition].oldest_age is not None and 0 <= backlog[partition].oldest_age < 60
    assert backlog[quiet].pending == 0 and backlog[quiet].oldest_age is None

    caught_up = await partition_backlog(
        bus.conn.js, stream=bus.stream, prefix=bus.prefix, offsets={partition: seqs[-1]}
    )
    assert caught_up[partition].pending == 0 and caught_up[partition].oldest_age is None


async def test_ensure_stream_is_idempotent_and_updates_the_window(bus: Bus) -> None:
    await ensure_stream(bus.conn.js, stream=bus.stream, prefix=bus.prefix, duplicate_window=30.0)
    await ensure_stream(bus.conn.js, stream=bus.stream, prefix=bus.prefix, duplicate_window=10.0)
    info = await bus.conn.js.stream_info(bus.stream)
    assert info.config.duplicate_window == 10.0
    assert info.config.subjects == [f"{bus.prefix}.*"]


async def test_nats_down_is_a_clear_error() -> None:
    with pytest.raises(BusUnavailable, match=r"cannot reach NATS at nats://127\.0\.0\.1:1"):
        await connect_bus("nats://127.0.0.1:1", connect_timeout=0.5)


async def test_a_publish_without_jetstream_answering_is_a_clear_error(bus: Bus) -> None:
    """A subject no stream listens on: JetStream never acks, so the receiver must not either."""
    stray = JetStreamPublisher(
        bus.conn.js, stream=bus.stream, prefix=unique_name("nostream").replace("_", "."), timeout=1
    )
    with pytest.raises(BusUnavailable, match="publishing event evt-9"):
        await stray.publish("evt-9", "order:1", b"x")


async def test_a_jetstream_too_slow_to_make_the_consumer_reads_as_nothing_yet(bus: Bus) -> None:
    """A consumer JetStream does not confirm in time is asked for again on the
    next fetch, rather than failing the feed (and with it the worker's round)."""
    partition, keys = entities_in_one_partition(1)
    seq = (await bus.publisher().publish("slow-1", keys[0], b"x")).seq
    impatient = PartitionFeed(
        bus.conn.nc.jetstream(timeout=1e-6),
        stream=bus.stream,
        prefix=bus.prefix,
        partition=partition,
        start_after=0,
    )
    try:
        assert await impatient.fetch(5, timeout=0.1) == []
    finally:
        await impatient.close()
    feed = bus.feed(partition)
    try:
        assert await drain(feed, expect=1) == [seq]
    finally:
        await feed.close()


async def test_a_closed_connection_fails_reads_and_publishes_clearly(nats_server_url: str) -> None:
    conn = await connect_bus(nats_server_url)
    publisher = JetStreamPublisher(conn.js, stream=unique_name("S"), prefix="never.used")
    feed = PartitionFeed(
        conn.js, stream=unique_name("S"), prefix="never.used", partition=0, start_after=0
    )
    await conn.close()
    with pytest.raises(BusUnavailable):
        await publisher.publish("evt-1", "order:1", b"x")
    with pytest.raises(BusUnavailable):
        await feed.fetch(1, timeout=0.2)
