"""ENG-10: outbox claims under every interleaving of claim, renew, finish,
expiry, crash and an operator's retry or discard, checked against a model."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from engine.store import outbox_sql
from engine.store.commands import DISCARDABLE, RETRYABLE, Done, Retry
from engine.store.migrate import migrate
from engine.store.outbox_sql import act

LEASE = 60.0
HANDLED = '["notify_buyer"]'


@dataclass
class Dispatcher:
    name: str
    generation: int = 0
    # The calls it has under way: command id -> when it believes its lease ends.
    calls: dict[int, float] = field(default_factory=dict)

    @property
    def token(self) -> str:
        # A restarted process is a new claimant.
        return f"{self.name}.{self.generation}"


@dataclass
class Model:
    entities: list[str]
    now: float = 1000.0
    status: dict[int, str] = field(default_factory=dict)
    claimant: dict[int, str | None] = field(default_factory=dict)
    claim_until: dict[int, float] = field(default_factory=dict)
    done_recorded: dict[int, int] = field(default_factory=dict)

    def entity(self, command_id: int) -> str:
        return self.entities[command_id - 1]

    def due(self, limit: int) -> list[int]:
        found = []
        for cid in sorted(self.status):
            if self.status[cid] != "pending":
                continue
            if self.claimant[cid] is not None and self.claim_until[cid] > self.now:
                continue
            earlier = [
                e
                for e in self.status
                if e < cid and self.entity(e) == self.entity(cid) and self.status[e] == "pending"
            ]
            if not earlier:
                found.append(cid)
        return found[:limit]

    def running(self, cid: int) -> bool:
        return (
            self.status[cid] == "pending"
            and self.claimant[cid] is not None
            and self.claim_until[cid] > self.now
        )


def fresh_db(entities: list[str]) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None)
    migrate(db, ":memory:")
    for n, entity in enumerate(entities):
        db.execute(
            "INSERT INTO outbox (event_seq, entity, command, payload, idempotency_key,"
            " created_at, available_at) VALUES (1, ?, 'notify_buyer', '{}', ?, 0, 0)",
            (entity, f"k{n}"),
        )
    return db


def claim(db: sqlite3.Connection, model: Model, d: Dispatcher, limit: int) -> None:
    expected = model.due(limit)
    rows = outbox_sql.claim(db, d.token, model.now, LEASE, HANDLED, limit)
    got = [row[0] for row in rows]
    assert got == expected, "claims exactly what is due, in id order, per-entity order kept"
    for cid in got:
        assert model.done_recorded.get(cid, 0) == 0, "a done command is never claimed again"
        model.claimant[cid] = d.token
        model.claim_until[cid] = model.now + LEASE
        d.calls[cid] = model.now + LEASE


def finish(
    db: sqlite3.Connection, model: Model, dispatchers: list[Dispatcher], kind: str, index: int
) -> None:
    """One of the calls under way ends (drawn among all of them, not one
    dispatcher's, so that late outcomes after a takeover come up often)."""
    holders = [d for d in dispatchers if d.calls]
    if not holders:
        return
    d = holders[index % len(holders)]
    cid = sorted(d.calls)[index // len(holders) % len(d.calls)]
    del d.calls[cid]
    if kind == "done":
        outcome = outbox_sql.finish(db, Done(1, model.now), cid, d.token)
    else:
        outcome = outbox_sql.finish(db, Retry(kind, 1, "boom", model.now), cid, d.token)
    if model.claimant[cid] != d.token:
        assert outcome == "lost", "only the claimant's outcome is recorded"
        return
    model.claimant[cid] = None
    if kind == "done" or model.status[cid] == "pending":
        assert outcome == "recorded"
        model.status[cid] = kind
        if kind == "done":
            model.done_recorded[cid] = model.done_recorded.get(cid, 0) + 1
    else:
        assert outcome == "overruled", "a discarded command stays discarded"


def renew(db: sqlite3.Connection, model: Model, d: Dispatcher) -> None:
    ids = sorted(d.calls)
    lost = outbox_sql.renew(db, d.token, ids, model.now, LEASE)
    assert lost == [cid for cid in ids if model.claimant[cid] != d.token]
    for cid in ids:
        if cid not in lost:
            model.claim_until[cid] = d.calls[cid] = model.now + LEASE


def operator(db: sqlite3.Connection, model: Model, action: str, index: int) -> None:
    cid = 1 + index % len(model.entities)
    allowed = RETRYABLE if action == "retry" else DISCARDABLE
    outcome, _status, _entity = act(db, cid, action, allowed, "op", None, model.now)
    refusable = action == "retry" and model.running(cid)
    if model.status[cid] not in allowed or refusable:
        assert outcome == "refused", "a running command is not retried; done ones never"
        return
    assert outcome == "ok"
    model.status[cid] = "pending" if action == "retry" else "discarded"


class ClaimMachine(RuleBasedStateMachine):
    """ENG-10, ENG-4: interleavings of claim, renew, finish, lease expiry, crash
    and an operator's retry or discard, each checked against `Model`: a claim
    takes exactly what is due (pending, unclaimed or expired, first of its
    entity, in id order); only the claimant's outcome is recorded; a lease
    still running is never taken over; a running command is not retried by an
    operator; a command is recorded done at most once; and once every lease
    has run out a surviving dispatcher finishes all of it."""

    @initialize(entities=st.lists(st.sampled_from("abc"), min_size=1, max_size=8))
    def start(self, entities: list[str]) -> None:
        self.db = fresh_db(entities)
        self.model = Model(entities)
        self.model.status = {n + 1: "pending" for n in range(len(entities))}
        self.model.claimant = {cid: None for cid in self.model.status}
        # Two dispatchers (and their restarts) collide more often than three.
        self.dispatchers = [Dispatcher("d0"), Dispatcher("d1")]

    def busy(self) -> bool:
        return any(d.calls for d in self.dispatchers)

    @rule(n=st.integers(0, 1), limit=st.integers(1, 3))
    def claim(self, n: int, limit: int) -> None:
        claim(self.db, self.model, self.dispatchers[n], limit)

    @precondition(busy)
    @rule(kind=st.sampled_from(["done", "done", "pending", "parked"]), index=st.integers(0, 9))
    def finish(self, kind: str, index: int) -> None:
        finish(self.db, self.model, self.dispatchers, kind, index)

    @precondition(busy)
    @rule(n=st.integers(0, 1))
    def renew(self, n: int) -> None:
        renew(self.db, self.model, self.dispatchers[n])

    # Awkward steps: just under, at and just past a lease.
    @rule(seconds=st.sampled_from([1.0, 59.0, 60.0, 61.0]))
    def advance(self, seconds: float) -> None:
        self.model.now += seconds

    @precondition(busy)
    @rule(n=st.integers(0, 1))
    def crash(self, n: int) -> None:
        self.dispatchers[n].calls.clear()  # abandoned: its claims stay until they run out
        self.dispatchers[n].generation += 1

    @rule(action=st.sampled_from(["retry", "discard"]), index=st.integers(0, 9))
    def operator(self, action: str, index: int) -> None:
        # Commands with a call under way come first: acting on them is the
        # awkward case (a discard while the claimant's call is in flight).
        under_way = sorted({cid for d in self.dispatchers for cid in d.calls})
        candidates = [*under_way, *self.model.status]
        operator(self.db, self.model, action, candidates[index % len(candidates)] - 1)

    @invariant()
    def running_leases_are_kept(self) -> None:
        if not hasattr(self, "db"):
            return
        claimed = dict(self.db.execute("SELECT id, claimed_by FROM outbox").fetchall())
        for d in self.dispatchers:
            for cid, until in d.calls.items():
                if until > self.model.now:
                    assert claimed[cid] == d.token, "no one takes over a lease still running"

    def teardown(self) -> None:
        if not hasattr(self, "db"):
            return
        db, model = self.db, self.model
        model.now += 10 * LEASE
        survivor = Dispatcher("survivor")
        for cid in [c for c in model.status if model.status[c] == "parked"]:
            operator(db, model, "retry", cid - 1)
        while rows := outbox_sql.claim(db, survivor.token, model.now, LEASE, HANDLED, 10):
            for row in rows:
                outcome = outbox_sql.finish(db, Done(1, model.now), row[0], survivor.token)
                assert outcome == "recorded"
                model.done_recorded[row[0]] = model.done_recorded.get(row[0], 0) + 1
        statuses = dict(db.execute("SELECT id, status FROM outbox").fetchall())
        assert set(statuses.values()) <= {"done", "discarded"}, statuses
        assert all(count == 1 for count in model.done_recorded.values())
        leftover = "SELECT COUNT(*) FROM outbox WHERE status = 'done' AND claimed_by IS NOT NULL"
        assert db.execute(leftover).fetchone()[0] == 0, "a recorded outcome drops its claim"
        db.close()


def test_eng10_claims_hold_under_any_interleaving() -> None:
    """ENG-10: the bounded run (see `ClaimMachine` for what is checked)."""
    run_state_machine_as_test(
        ClaimMachine, settings=settings(max_examples=50, stateful_step_count=30, deadline=None)
    )


@pytest.mark.slow
def test_eng10_claims_hold_under_any_interleaving_long() -> None:
    """ENG-10: the long run of the same machine."""
    run_state_machine_as_test(
        ClaimMachine, settings=settings(max_examples=2000, stateful_step_count=60, deadline=None)
    )
