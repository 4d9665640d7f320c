"""Conformance of a `Store`'s log, entities, duplicates, timers, dead letters,
cursors and read-only refusal (part of `engine.testing.store_conformance`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.rules import TimerRequest
from engine.store.errors import WriteRefused
from engine.store.protocol import Store
from engine.store.rows import COUNTED, Batch, DuplicateRow
from engine.testing.store_builders import StoreCase, batch, command, dead_letter, event_row

_KEYS = st.sampled_from(["order:1", "order:2", "shop:a", "shop:b"])
_STATES = st.sampled_from(["open", "paid", "shipped"])
_TIMES = st.sampled_from([10.0, 20.0, 30.0])


def _examples(case: type[StoreCase]) -> settings:
    return settings(max_examples=case.examples, deadline=None)


class LogConformance(StoreCase):
    async def test_the_log_keeps_commit_order_and_reads_back_in_batches(self, store: Store) -> None:
        ids = [f"e{n}" for n in range(25)]
        for start in range(0, 25, 7):
            await store.commit(
                batch(event_row(f"order:{n % 3}", ids[n]) for n in range(start, min(start + 7, 25)))
            )
        logged = [row async for row in store.iter_events()]
        assert [row[1] for row in logged] == ids, "read in the order committed"
        seqs = [row[0] for row in logged]
        assert seqs == sorted(set(seqs)), "sequence numbers strictly increase"
        chunks = [rows async for rows in store.iter_event_batches(batch=4)]
        assert all(len(rows) <= 4 for rows in chunks)
        assert [row for rows in chunks for row in rows] == logged
        later = [row[1] async for row in store.iter_events(since_seq=seqs[9])]
        assert later == ids[10:], "since_seq starts after that number"
        mine = [row[1] async for row in store.iter_events(entity="order:1")]
        assert mine == [i for n, i in enumerate(ids) if n % 3 == 1]
        assert await store.entities_logged_after(seqs[-2]) == {"order:0"}
        assert await store.count("events") == 25

    async def test_a_failed_commit_writes_nothing(self, store: Store) -> None:
        await store.commit(batch([event_row("order:1", "first")]))
        armed = TimerRequest("remind", 50.0, "order.remind")
        doomed = event_row("order:2", "second", commands=[command("k2")], timers=[armed])
        again = event_row("order:1", "first", state="paid", version=2)
        with pytest.raises(Exception):  # noqa: B017 - any error will do, as long as it raises
            await store.commit(batch([doomed, again]))
        assert await store.known_event_ids(["second"]) == set()
        assert await store.entity("order:2") is None
        kept = await store.entity("order:1")
        assert kept is not None and kept.state == "open", "the earlier commit stands"
        assert await store.list_commands() == [] and await store.timers() == []
        await store.commit(batch([event_row("order:2", "second")]))
        seqs = [row[0] async for row in store.iter_events()]
        assert len(seqs) == 2 and seqs[0] < seqs[1], "numbering goes on after a failure"

    def test_known_event_ids_are_exactly_those_committed(self) -> None:
        @given(st.sets(st.integers(0, 40)), st.sets(st.integers(0, 40)))
        @_examples(type(self))
        def check(committed: set[int], asked: set[int]) -> None:
            async def work(store: Store) -> set[str]:
                if committed:
                    await store.commit(batch(event_row("order:1", f"e{n}") for n in committed))
                return await store.known_event_ids([f"e{n}" for n in asked])

            assert self.with_store(work) == {f"e{n}" for n in committed & asked}

        check()

    async def test_many_known_event_ids_at_once(self, store: Store) -> None:
        await store.commit(batch(event_row("order:1", f"e{n}") for n in range(0, 1500, 2)))
        known = await store.known_event_ids([f"e{n}" for n in range(1500)])
        assert known == {f"e{n}" for n in range(0, 1500, 2)}

    async def test_duplicates_are_counted(self, store: Store) -> None:
        await store.commit(batch([event_row("order:1", "e1")]))
        seen = [DuplicateRow("e1", "order:1", 1001.0), DuplicateRow("e1", "order:1", 1002.0)]
        await store.commit(Batch(duplicates=seen))
        await store.commit(Batch(duplicates=[DuplicateRow("e9", "order:9", 1003.0)]))
        assert await store.duplicate_count("e1") == 2
        assert await store.duplicate_count() == 3
        assert await store.count("events") == 1, "a duplicate is not logged again"

    def test_an_entity_holds_its_last_state(self) -> None:
        updates = st.lists(st.lists(st.tuples(_KEYS, _STATES), min_size=1, max_size=6), max_size=5)

        @given(updates)
        @_examples(type(self))
        def check(batches: list[list[tuple[str, str]]]) -> None:
            expected: dict[str, tuple[str, int]] = {}

            async def work(store: Store) -> None:
                number = 0
                for changes in batches:
                    rows = []
                    for key, state in changes:
                        number += 1
                        before = expected.get(key)
                        version = before[1] + 1 if before else 1
                        moved = before is None or before[0] != state
                        expected[key] = (state, version)
                        data = {"n": number}
                        rows.append(
                            event_row(
                                key,
                                f"e{number}",
                                state=state,
                                data=data,
                                version=version,
                                moved=moved,
                            )
                        )
                    await store.commit(batch(rows))
                loaded = await store.load_entities([*expected, "order:none"])
                assert {k: (e.state, e.version) for k, e in loaded.items()} == expected
                listed = await store.entities()
                assert [e.key for e in listed] == sorted(expected), "by key"
                for state in ("open", "paid"):
                    chosen = await store.entities(state=state)
                    assert {e.key for e in chosen} == {
                        k for k, v in expected.items() if v[0] == state
                    }
                shops = await store.entities(kind="shop")
                assert {e.key for e in shops} == {k for k in expected if k.startswith("shop:")}

            self.with_store(work)

        check()

    async def test_history_lists_an_entitys_events_in_order(self, store: Store) -> None:
        await store.commit(
            batch([event_row("order:1", "a", payload={"x": 1}), event_row("order:2", "b")])
        )
        await store.commit(batch([event_row("order:1", "c", state="paid", version=2)]))
        history = await store.history("order:1")
        assert [h["event_id"] for h in history] == ["a", "c"]
        assert history[0]["payload"] == {"x": 1} and history[1]["to_state"] == "paid"
        latest = await store.entity("order:1")
        assert latest is not None and (latest.state, latest.version) == ("paid", 2)

    def test_due_timers_come_by_time_then_entity_then_name(self) -> None:
        timer = st.tuples(_KEYS, st.sampled_from(["a", "b"]), _TIMES)

        @given(st.lists(timer, max_size=12), _TIMES, st.integers(1, 12))
        @_examples(type(self))
        def check(timers: list[tuple[str, str, float]], now: float, limit: int) -> None:
            armed: dict[tuple[str, str], float] = {}
            for key, name, due in timers:
                armed[(key, name)] = due

            async def work(store: Store) -> None:
                rows = [
                    event_row(key, f"e{n}", timers=[TimerRequest(name, due, "order.remind")])
                    for n, (key, name, due) in enumerate(timers)
                ]
                if rows:
                    await store.commit(batch(rows))
                due = await store.due_timers(now, limit)
                want = sorted((d, k, n) for (k, n), d in armed.items() if d <= now)[:limit]
                assert [(t.due_at, t.entity, t.name) for t in due] == want
                assert all(t.event_type == "order.remind" for t in due)

            self.with_store(work)

        check()

    async def test_timers_fire_once_and_can_be_cancelled_or_moved(self, store: Store) -> None:
        remind = TimerRequest("remind", 100.0, "order.remind")
        expire = TimerRequest("expire", 200.0, "order.expire")
        await store.commit(batch([event_row("order:1", "a", timers=[remind, expire])]))
        [first, second] = await store.timers("order:1")
        assert (first.name, second.name) == ("remind", "expire")
        moved = TimerRequest("expire", 300.0, "order.expire")
        cancel = TimerRequest("remind", None)
        await store.commit(batch([event_row("order:1", "b", version=2, timers=[moved, cancel])]))
        [left] = await store.timers("order:1")
        assert (left.name, left.due_at) == ("expire", 300.0)
        fired = event_row("order:1", left.event_id, version=3)
        await store.commit(batch([fired]), timers_fired=[left.event_id])
        assert await store.timers() == [] and await store.due_timers(1e9) == []

    async def test_dead_letters_are_kept_once_per_source_digest_and_reason(
        self, store: Store
    ) -> None:
        letters = [
            dead_letter("tiktok", "d1", "bad json", 10.0),
            dead_letter("tiktok", "d1", "bad json", 30.0),
            dead_letter("tiktok", "d1", "unsigned", 20.0, entity="order:1"),
            dead_letter("shoplazza", "d1", "bad json", 40.0),
        ]
        await store.commit(Batch(dead_letters=letters[:2]))
        await store.commit(Batch(dead_letters=letters[2:]))
        await store.commit(Batch(dead_letters=[dead_letter("tiktok", "d1", "bad json", 25.0)]))
        kept = await store.dead_letters()
        assert [(d.source, d.error, d.count) for d in kept] == [
            ("tiktok", "bad json", 3),
            ("tiktok", "unsigned", 1),
            ("shoplazza", "bad json", 1),
        ], "in the order first seen, a repeat counted"
        assert (kept[0].received_at, kept[0].last_seen) == (10.0, 30.0)
        assert [d.error for d in await store.dead_letters("order:1")] == ["unsigned"]
        assert await store.purge_dead_letters(before=30.0) == 1
        assert [d.error for d in await store.dead_letters()] == ["bad json", "bad json"]

    async def test_cursors_remember_the_last_value(self, store: Store) -> None:
        assert await store.cursor("orders") is None
        await store.save_cursor("orders", "page-1", 1.0)
        await store.save_cursor("orders", "page-2", 2.0)
        await store.save_cursor("products", "p", 2.0)
        assert (await store.cursor("orders"), await store.cursor("products")) == ("page-2", "p")

    async def test_counts_name_known_tables_only(self, store: Store) -> None:
        await store.commit(batch([event_row("order:1", "a", commands=[command("k")])]))
        counts = {table: await store.count(table) for table in COUNTED}
        assert (counts["events"], counts["entities"], counts["outbox"]) == (1, 1, 1)
        with pytest.raises(ValueError):
            await store.count("events; DROP TABLE events")

    async def test_a_read_only_store_reads_and_refuses_writes(self, tmp_path: Path) -> None:
        read_only_factory = type(self).read_only_factory
        if read_only_factory is None:
            pytest.skip("this store has no read-only mode")
        writable = await type(self).factory(tmp_path)
        assert not writable.read_only
        await writable.commit(batch([event_row("order:1", "a", commands=[command("k")])]))
        await writable.close()
        store = await read_only_factory(tmp_path)
        try:
            assert store.read_only and await store.count("events") == 1
            assert (await store.entity("order:1")) is not None
            with pytest.raises(WriteRefused):
                await store.commit(batch([event_row("order:2", "b")]))
            with pytest.raises(WriteRefused):
                await store.save_cursor("orders", "x", 1.0)
            with pytest.raises(WriteRefused):
                await store.claim_commands("t", 2000.0, 60.0, ["notify"])
            with pytest.raises(WriteRefused):
                await store.purge_dead_letters(1e9)
            assert await store.count("events") == 1
        finally:
            await store.close()


__all__ = ["LogConformance"]
