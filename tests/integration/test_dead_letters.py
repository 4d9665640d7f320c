"""SEC-1: dead letters are stored once per (source, digest) and expire."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import sqlite3

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Engine
from engine.dead_letters import PREFIX_BYTES, RETENTION
from engine.sample import chart_package
from engine.settings import EngineSettings
from engine.store.schema import MIGRATIONS
from tests.conftest import invoke_cli
from tests.loop_engine import LoopEngine

DAY = 86400.0


# Bodies an adapter may fail to use: empty, invalid UTF-8, multi-byte text cut
# anywhere (also across the prefix's end), larger than the prefix.
bodies = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=40).map(str.encode),
    st.builds(
        lambda char, count, tail: (char * count).encode()[: PREFIX_BYTES - 1] + tail,
        st.sampled_from(["é", "€", "😀", "x"]),
        st.integers(PREFIX_BYTES // 4, PREFIX_BYTES + 8),
        st.binary(max_size=6),
    ),
)


def test_sec1_every_input_is_one_row_per_source_and_digest(tmp_path):
    """SEC-1, for any deliveries: one row per (source, sha256 of the input), its
    count the number of deliveries, its size the input's, its raw text the
    input's first 4 KB; nothing else."""
    box = LoopEngine(tmp_path / "letters.db")
    runs = itertools.count()

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        pool=st.lists(bodies, min_size=1, max_size=4),
        picks=st.lists(
            st.tuples(st.integers(0, 3), st.sampled_from(["tiktok", "shoplazza"])), max_size=8
        ),
        as_text=st.booleans(),
    )
    def deliveries(pool, picks, as_text):
        run = next(runs)
        expected: dict[tuple[str, str], tuple[int, bytes]] = {}
        for index, platform in picks:
            body = pool[index % len(pool)]
            source = f"{platform}-{run}"
            raw = body.decode("utf-8", errors="surrogateescape") if as_text else body
            receipt = box.run(box.engine.record_dead_letter(raw, source, "not a webhook"))
            assert receipt.outcome == "dead_letter"
            data = raw.encode("utf-8", errors="surrogatepass") if as_text else body
            key = (source, hashlib.sha256(data).hexdigest())
            expected[key] = (expected.get(key, (0, data))[0] + 1, data)
        stored = [
            letter
            for letter in box.run(box.engine.dead_letters())
            if letter.source.endswith(f"-{run}")
        ]
        assert sorted((d.source, d.digest) for d in stored) == sorted(expected)
        for letter in stored:
            count, data = expected[letter.source, letter.digest]
            assert (letter.count, letter.size) == (count, len(data))
            assert letter.raw == data[:PREFIX_BYTES].decode("utf-8", errors="replace")

    try:
        deliveries()
    finally:
        box.close()


async def test_sec1_a_cut_body_keeps_the_size_it_was_known_to_have(sample_engine):
    read = b"x" * 10_000
    await sample_engine.record_dead_letter(read, "tiktok", "body too large", size=5_000_000)
    [letter] = await sample_engine.dead_letters()
    assert (letter.size, len(letter.raw), letter.digest) == (
        5_000_000,
        PREFIX_BYTES,
        hashlib.sha256(read).hexdigest(),
    )


async def test_sec1_dead_letters_last_seen_beyond_the_retention_are_purged(db_path, clock):
    """SEC-1: the purge deletes what was last seen more than the retention ago;
    input that keeps coming keeps its row. The engine runs it periodically."""
    engine = await Engine.open(
        db_path,
        [chart_package()],
        clock=clock,
        settings=EngineSettings(run_timers=False, run_outbox=False),
    )
    try:
        assert engine.dead_letter_retention == RETENTION == 30 * DAY
        await engine.record_dead_letter(b"old junk", "tiktok", "not json")
        await engine.record_dead_letter(b"recurring junk", "tiktok", "not json")
        clock.advance(20 * DAY)
        await engine.record_dead_letter(b"recurring junk", "tiktok", "not json")
        clock.advance(10 * DAY + 1)
        assert await engine.purge_dead_letters() == 1
        [kept] = await engine.dead_letters()
        assert (kept.raw, kept.count) == ("recurring junk", 2)
        assert kept.last_seen - kept.received_at == 20 * DAY
    finally:
        await engine.stop()

    engine = await Engine.open(
        db_path,
        [chart_package()],
        clock=clock,
        settings=EngineSettings(run_outbox=False, dead_letter_retention=DAY, purge_interval=0.01),
    )
    try:
        for _ in range(300):  # the loop runs every 10 ms
            if not await engine.dead_letters():
                break
            await asyncio.sleep(0.01)
        assert await engine.dead_letters() == []
    finally:
        await engine.stop()


async def test_sec1_rows_from_before_digests_are_kept_as_they_were(db_path, clock):
    """The migration keeps older rows whole (NULL digest, never merged)."""
    with sqlite3.connect(db_path) as db:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        # Every migration before the one that added digests.
        digests = next(i for i, m in enumerate(MIGRATIONS) if "ADD COLUMN digest" in m)
        for version, migration in enumerate(MIGRATIONS[:digests], start=1):
            db.executescript(migration)
            db.execute("INSERT INTO schema_version VALUES (?)", (version,))
        db.execute(
            "INSERT INTO dead_letters (received_at, source, entity, raw, error)"
            " VALUES (5.0, 'tiktok', NULL, 'héllo', 'not json')"
        )
    engine = await Engine.open(
        db_path,
        [chart_package()],
        clock=clock,
        settings=EngineSettings(run_timers=False, run_outbox=False),
    )
    try:
        await engine.record_dead_letter("héllo", "tiktok", "not json")
        old, new = await engine.dead_letters()
        assert (old.digest, old.size, old.count, old.last_seen) == (None, 6, 1, 5.0)
        assert (new.digest, new.size, new.count) == (
            hashlib.sha256("héllo".encode()).hexdigest(),
            6,
            1,
        )
    finally:
        await engine.stop()


async def test_sec1_the_dead_letters_command_shows_count_and_size(sample_engine, db_path):
    for _ in range(3):
        await sample_engine.publish_raw(b"{not json", "test")
    shown = await invoke_cli("state", "--db", str(db_path), "--dead-letters", "--json")
    [letter] = json.loads(shown.stdout)
    assert (letter["count"], letter["size"], letter["raw"]) == (3, 9, "{not json")
    table = await invoke_cli("state", "--db", str(db_path), "--dead-letters")
    assert "count" in table.stdout and "size" in table.stdout
