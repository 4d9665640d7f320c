"""Conformance of a `Store`'s dead letter discards: kept with who, why and
when, out of the open letters, refused twice, reopened by the same input
arriving later (part of `engine.testing.store_conformance`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.store.errors import WriteRefused
from engine.store.protocol import Store
from engine.store.rows import Batch
from engine.testing.store_builders import StoreCase, dead_letter

# Arrivals of one input and discards of its letter, at times that collide.
_STEPS = st.lists(
    st.tuples(st.sampled_from(["arrive", "discard"]), st.sampled_from([10.0, 20.0, 30.0])),
    max_size=8,
)


class DeadLetterConformance(StoreCase):
    async def test_a_discarded_letter_is_kept_with_who_why_and_when(self, store: Store) -> None:
        await store.commit(
            Batch(
                dead_letters=[
                    dead_letter("tiktok", "d1", "bad json", 10.0),
                    dead_letter("tiktok", "d2", "unsigned", 11.0, entity="order:1"),
                ]
            )
        )
        junk, signed = await store.dead_letters()
        outcome, letter = await store.discard_dead_letter(
            signed.id, now=50.0, actor="ana", reason="a test shop's body"
        )
        assert outcome == "discarded" and letter is not None
        assert (letter.discarded_at, letter.discarded_by, letter.discard_reason) == (
            50.0,
            "ana",
            "a test shop's body",
        )
        assert not letter.open and letter.error == "unsigned", "the letter itself is unchanged"
        assert [d.id for d in await store.dead_letters()] == [junk.id], "no longer open"
        assert await store.dead_letters("order:1") == []
        kept = await store.dead_letters("order:1", include_discarded=True)
        assert [(d.id, d.discarded_by) for d in kept] == [(signed.id, "ana")], "kept, not deleted"
        assert await store.dead_letter(signed.id) == letter
        assert await store.count("dead_letters") == 2

    async def test_a_second_discard_is_refused_and_keeps_the_first(self, store: Store) -> None:
        await store.commit(Batch(dead_letters=[dead_letter("api", "d1", "bad json", 10.0)]))
        [letter] = await store.dead_letters()
        assert (await store.discard_dead_letter(letter.id, now=20.0, actor="ana")).outcome == (
            "discarded"
        )
        outcome, again = await store.discard_dead_letter(
            letter.id, now=30.0, actor="bo", reason="me too"
        )
        assert outcome == "refused" and again is not None
        assert (again.discarded_at, again.discarded_by, again.discard_reason) == (20.0, "ana", None)
        assert await store.discard_dead_letter(letter.id + 1000, now=30.0, actor="bo") == (
            "missing",
            None,
        )

    async def test_the_same_input_arriving_after_a_discard_reopens_it(self, store: Store) -> None:
        await store.commit(Batch(dead_letters=[dead_letter("api", "d1", "bad json", 10.0)]))
        [letter] = await store.dead_letters()
        await store.discard_dead_letter(letter.id, now=20.0, actor="ana", reason="junk\x00")
        await store.commit(Batch(dead_letters=[dead_letter("api", "d1", "bad json", 20.0)]))
        assert await store.dead_letters() == [], "seen at the discard's time: still discarded"
        await store.commit(Batch(dead_letters=[dead_letter("api", "d1", "bad json", 25.0)]))
        [reopened] = await store.dead_letters()
        assert reopened.id == letter.id and reopened.count == 3 and reopened.open
        assert (reopened.discarded_by, reopened.discard_reason) == ("ana", "junk\ufffd"), (
            "the earlier discard stays beside the new arrival"
        )
        outcome, _ = await store.discard_dead_letter(letter.id, now=26.0, actor="bo")
        assert outcome == "discarded" and await store.dead_letters() == []

    def test_open_letters_follow_arrivals_and_discards_in_any_order(self) -> None:
        @settings(max_examples=type(self).examples, deadline=None)
        @given(steps=_STEPS)
        def check(steps: list[tuple[str, float]]) -> None:
            self.with_store(lambda store: _replay(store, steps))

        check()

    async def test_a_read_only_store_refuses_a_discard(self, tmp_path: Path) -> None:
        read_only_factory = type(self).read_only_factory
        if read_only_factory is None:
            pytest.skip("this store has no read-only mode")
        writable = await type(self).factory(tmp_path)
        await writable.commit(Batch(dead_letters=[dead_letter("api", "d1", "bad", 10.0)]))
        await writable.close()
        store = await read_only_factory(tmp_path)
        try:
            [letter] = await store.dead_letters()
            with pytest.raises(WriteRefused):
                await store.discard_dead_letter(letter.id, now=20.0, actor="ana")
            assert (await store.dead_letters())[0].discarded_at is None
        finally:
            await store.close()


async def _replay(store: Store, steps: list[tuple[str, float]]) -> None:
    """Apply ``steps`` to the store and to a model of one letter; they agree."""
    last_seen: float | None = None
    discarded_at: float | None = None
    for number, (step, at) in enumerate(steps):
        if step == "arrive":
            await store.commit(Batch(dead_letters=[dead_letter("api", "d1", "bad", at)]))
            last_seen = at if last_seen is None else max(last_seen, at)
            continue
        ids = [d.id for d in await store.dead_letters(include_discarded=True)]
        outcome, _ = await store.discard_dead_letter(
            ids[0] if ids else 1, now=at, actor=f"a{number}"
        )
        was_open = last_seen is not None and (discarded_at is None or last_seen > discarded_at)
        expected = "missing" if last_seen is None else "discarded" if was_open else "refused"
        assert outcome == expected, (steps, number)
        if was_open:
            discarded_at = at
    is_open = last_seen is not None and (discarded_at is None or last_seen > discarded_at)
    assert len(await store.dead_letters()) == int(is_open), steps
    kept = await store.dead_letters(include_discarded=True)
    assert [d.discarded_at for d in kept] == ([] if last_seen is None else [discarded_at])


__all__ = ["DeadLetterConformance"]
