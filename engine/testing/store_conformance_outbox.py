"""Conformance of a `Store`'s outbox: claims and leases, outcomes, per-entity
order, operators' actions (part of `engine.testing.store_conformance`)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.store.commands import Done, Held, OutboxCommand, Retry
from engine.store.protocol import Store
from engine.testing.store_builders import NOTIFY, StoreCase, batch, command, event_row

LEASE = 60.0
# Commands are created at 1000.0 (the rows' received_at): due from then on.
NOW = 2000.0
HANDLED = [NOTIFY]


async def _queue(store: Store, plan: list[tuple[str, str]]) -> list[OutboxCommand]:
    """One command per (entity, key), each from an event of its own, in order."""
    rows = [
        event_row(entity, f"event-{key}", version=n + 1, commands=[command(key, n=n)])
        for n, (entity, key) in enumerate(plan)
    ]
    await store.commit(batch(rows))
    return await store.list_commands()


class OutboxConformance(StoreCase):
    async def test_a_command_is_recorded_once_per_idempotency_key(self, store: Store) -> None:
        twice = [command("same", n=1), command("same", n=2)]
        await store.commit(batch([event_row("order:1", "a", commands=twice)]))
        await store.commit(batch([event_row("order:1", "b", commands=[command("same", n=3)])]))
        [only] = await store.list_commands()
        assert (only.idempotency_key, only.payload, only.status) == ("same", {"n": 1}, "pending")
        assert (only.entity, only.type, only.attempts) == ("order:1", NOTIFY, 0)

    async def test_a_claim_is_exclusive_until_its_lease_runs_out(self, store: Store) -> None:
        queued = await _queue(store, [("order:1", "a"), ("order:2", "b")])
        first = await store.claim_commands("A", NOW, LEASE, HANDLED)
        assert [c.command.id for c in first] == [c.id for c in queued]
        assert all(c.previous_claimant is None for c in first)
        assert await store.claim_commands("B", NOW + 1, LEASE, HANDLED) == []
        assert await store.renew_claims("A", [queued[0].id], NOW + 30, LEASE) == []
        # The second claim ran out at NOW + LEASE; the first was renewed until NOW + 90.
        taken = await store.claim_commands("B", NOW + LEASE + 1, LEASE, HANDLED)
        assert [(c.command.id, c.previous_claimant) for c in taken] == [(queued[1].id, "A")]
        assert await store.renew_claims("A", [c.id for c in queued], NOW + 70, LEASE) == [
            queued[1].id
        ]
        late = await store.finish_command(queued[1].id, "A", Done(1, NOW + 80))
        assert late == "lost", "only the claimant's outcome is recorded"
        assert await store.finish_command(queued[1].id, "B", Done(1, NOW + 80)) == "recorded"
        assert await store.finish_command(queued[0].id, "A", Done(1, NOW + 80)) == "recorded"
        done = await store.list_commands(status="done")
        assert [c.attempts for c in done] == [1, 1]

    def test_claims_never_overlap(self) -> None:
        plan = st.lists(st.sampled_from(["order:1", "order:2", "order:3"]), min_size=1, max_size=8)
        steps = st.lists(
            st.tuples(st.sampled_from("ABC"), st.sampled_from([0.0, 29.5, 30.0, 61.0]))
        )

        @given(plan, steps)
        @settings(max_examples=type(self).examples, deadline=None)
        def check(entities: list[str], claims: list[tuple[str, float]]) -> None:
            async def work(store: Store) -> None:
                queued = await _queue(store, [(e, f"k{n}") for n, e in enumerate(entities)])
                # Nothing finishes here: only each entity's first command is ever due.
                first_of: dict[str, int] = {}
                for queued_command in queued:
                    first_of.setdefault(queued_command.entity, queued_command.id)
                now, holder, until = NOW, dict[int, str](), dict[int, float]()
                for token, later in claims:
                    now += later
                    for claimed in await store.claim_commands(token, now, LEASE, HANDLED):
                        cid = claimed.command.id
                        assert cid in first_of.values(), "an entity's commands run in order"
                        assert until.get(cid, 0.0) <= now, "never while another's lease runs"
                        assert claimed.previous_claimant == holder.get(cid)
                        holder[cid], until[cid] = token, now + LEASE
                    assert all(until[cid] > now for cid in first_of.values()), "all due claimed"

            self.with_store(work)

        check()

    async def test_commands_of_one_entity_run_in_order(self, store: Store) -> None:
        queued = await _queue(store, [("order:1", "a"), ("order:1", "b"), ("order:2", "c")])
        due = await store.due_commands(NOW, HANDLED)
        assert [c.idempotency_key for c in due] == ["a", "c"], "b waits for a"
        [a, _c] = await store.claim_commands("A", NOW, LEASE, HANDLED)
        assert await store.due_commands(NOW, HANDLED) == [], "a claimed command still blocks"
        held = Held(1, "not authorized", "shop:1")
        assert await store.finish_command(a.command.id, "A", held) == "recorded"
        assert [c.idempotency_key for c in await store.due_commands(NOW, HANDLED)] == ["b"]
        assert await store.due_commands(NOW, ["other"]) == [], "only handled types are due"
        assert await store.release_held(NOW + 1, "shop:2") == 0
        assert await store.release_held(NOW + 1, "shop:1") == 1
        pending = await store.list_commands(status="pending", entity="order:1")
        assert [c.id for c in pending] == [queued[0].id, queued[1].id]
        assert pending[0].last_error == "not authorized", "the hold's reason stays visible"

    async def test_a_retry_waits_and_a_parked_command_waits_for_an_operator(
        self, store: Store
    ) -> None:
        [first, second] = await _queue(store, [("order:1", "a"), ("order:2", "b")])
        await store.claim_commands("A", NOW, LEASE, HANDLED)
        later = Retry("pending", 1, "rate limited", NOW + 100)
        assert await store.finish_command(first.id, "A", later) == "recorded"
        assert (
            await store.finish_command(second.id, "A", Retry("parked", 1, "no", NOW)) == "recorded"
        )
        assert await store.due_commands(NOW + 99, HANDLED) == []
        assert [c.id for c in await store.due_commands(NOW + 100, HANDLED)] == [first.id]
        failed = await store.command_views("failed", NOW)
        assert [(v.id, v.status) for v in failed] == [(first.id, "pending"), (second.id, "parked")]
        outcome = await store.retry_command(second.id, now=NOW + 5, actor="ops", reason="fixed")
        assert tuple(outcome) == ("ok", "parked", "order:2")
        view = await store.command_view(second.id, NOW + 5)
        assert view is not None and (view.status, view.attempts) == ("pending", 0)
        assert [(a.action, a.actor, a.reason, a.status_before) for a in view.actions] == [
            ("retry", "ops", "fixed", "parked")
        ]
        assert second.id in [c.id for c in await store.due_commands(NOW + 5, HANDLED)]

    async def test_operators_discard_and_are_refused_what_cannot_be_done(
        self, store: Store
    ) -> None:
        [first, second] = await _queue(store, [("order:1", "a"), ("order:2", "b")])
        await store.claim_commands("A", NOW, LEASE, HANDLED)
        running = await store.retry_command(first.id, now=NOW, actor="ops")
        assert tuple(running) == ("refused", "running", "order:1")
        assert [v.id for v in await store.command_views("running", NOW)] == [first.id, second.id]
        assert (await store.discard_command(first.id, now=NOW, actor="ops")).outcome == "ok"
        # The call in flight ends: a success still shows, a failure does not undo the discard.
        assert await store.finish_command(first.id, "A", Done(1, NOW)) == "recorded"
        discarded = await store.discard_command(second.id, now=NOW, actor="ops", reason="dup")
        assert discarded.outcome == "ok"
        overruled = await store.finish_command(second.id, "A", Retry("pending", 1, "x", NOW))
        assert overruled == "overruled"
        view = await store.command_view(second.id, NOW)
        assert (
            view is not None
            and view.status == "discarded"
            and view.reason == "discarded by ops: dup"
        )
        refused = await store.retry_command(second.id, now=NOW, actor="ops")
        assert tuple(refused) == ("refused", "discarded", "order:2")
        assert (await store.retry_command(10**6, now=NOW, actor="ops")).outcome == "missing"
        assert await store.command_view(10**6, NOW) is None
        assert [v.id for v in await store.command_views("all", NOW, entity="order:2")] == [
            second.id
        ]
        assert await store.command_views("open", NOW) == []

    async def test_claims_can_be_released_or_voided(self, store: Store) -> None:
        [first, second] = await _queue(store, [("order:1", "a"), ("order:2", "b")])
        await store.claim_commands("A", NOW, LEASE, HANDLED)
        assert await store.release_claim(first.id, "B") is False
        assert await store.release_claim(first.id, "A") is True
        assert [c.command.id for c in await store.claim_commands("B", NOW, LEASE, HANDLED)] == [
            first.id
        ]
        assert await store.void_claims() == 2
        taken = await store.claim_commands("C", NOW, LEASE, HANDLED)
        assert [(c.command.id, c.previous_claimant) for c in taken] == [
            (first.id, None),
            (second.id, None),
        ]

    async def test_an_inert_store_records_commands_that_never_run(self, store: Store) -> None:
        store.inert_commands = "ingested"
        await _queue(store, [("order:1", "a")])
        [kept] = await store.list_commands(status="inert")
        assert kept.last_error == "ingested"
        assert await store.due_commands(NOW, HANDLED) == []
        assert await store.claim_commands("A", NOW, LEASE, HANDLED) == []


__all__ = ["OutboxConformance"]
