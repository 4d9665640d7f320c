"""What the PostgreSQL store adds to the conformance suite: commit guards
(the hook a cluster's fence uses), plugins' migrations on PostgreSQL, and the
databases it refuses to open."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.store.commands import Done
from engine.store.errors import NotChannelsyncDatabase, SchemaMismatch, WriteNotAcknowledged
from engine.store.migrate import Migration, MigrationFailed
from engine.store.postgres import PostgresStore
from engine.store.postgres_commit import CommitGuard, Statement
from engine.store.rows import Batch
from engine.testing.store_builders import batch, command, event_row

pytestmark = pytest.mark.services


class Refused(Exception):
    """A guard's own error: it must reach the caller as it is."""


async def test_guards_statements_go_first_in_the_commit_and_can_refuse_it(
    pg_database_url: str,
) -> None:
    store = await PostgresStore.open(pg_database_url)
    await store.execute_write("CREATE TABLE fence_marks (name TEXT, events_before BIGINT)")
    await store.execute_write(
        "CREATE FUNCTION refuse(why text) RETURNS void LANGUAGE plpgsql"
        " AS $$ BEGIN RAISE EXCEPTION '%%', why; END $$"
    )
    seen: list[tuple[str, list[str]]] = []

    def guard(name: str, *, veto: bool = False, sql: str | None = None) -> CommitGuard:
        def statements(checked: Batch) -> list[Statement]:
            seen.append((name, [row.event_id for row in checked.events]))
            if veto:
                raise Refused(f"{name} says no")
            # Sent inside the transaction, before the batch's rows.
            mark = "INSERT INTO fence_marks SELECT %s::text, COUNT(*) FROM events"
            return [(sql or mark, (name,))]

        def refusal(error: psycopg.Error) -> Exception | None:
            mine = error.sqlstate == "P0001" and error.diag.message_primary == name
            return Refused(f"{name} refused in the database") if mine else None

        return CommitGuard(statements, refusal)

    async def marks() -> list[tuple[Any, ...]]:
        return await store.fetchall("SELECT name, events_before FROM fence_marks ORDER BY name")

    try:
        store.commit_guards += [guard("lease"), guard("offsets")]
        await store.commit(batch([event_row("order:1", "a")]))
        assert seen == [("lease", ["a"]), ("offsets", ["a"])]
        assert await marks() == [("lease", 0), ("offsets", 0)]
        # Refused in Python, before anything is sent.
        store.commit_guards.append(guard("stale", veto=True))
        doomed = event_row("order:2", "b", commands=[command("k")])
        with pytest.raises(Refused, match="stale says no"):
            await store.commit(batch([doomed]))
        assert doomed.seq == 0, "a vetoed batch has no sequence numbers"
        # Refused by a statement raising in the database, after the others.
        store.commit_guards[-1] = guard("db", sql="SELECT refuse(%s)")
        with pytest.raises(Refused, match="db refused in the database"):
            await store.commit(batch([doomed]))
        assert doomed.seq == 0
        # An error no guard claims is the store's: "not recorded, try again".
        store.commit_guards[-1] = guard("loose", sql="SELECT 1 / 0 WHERE %s::text IS NOT NULL")
        with pytest.raises(WriteNotAcknowledged, match="DivisionByZero"):
            await store.commit(batch([doomed]))
        assert await store.known_event_ids(["a", "b"]) == {"a"}
        assert await store.entity("order:2") is None and await store.list_commands() == []
        assert await marks() == [("lease", 0), ("offsets", 0)], "the guards' own writes rolled back"
        # A failure of the store's own rows is "not recorded, try again", as SQLite's.
        store.commit_guards.clear()
        with pytest.raises(WriteNotAcknowledged):
            await store.commit(batch([event_row("order:1", "a")]))
        await store.commit(batch([event_row("order:3", "c")]))
        seqs = [row[0] async for row in store.iter_events()]
        assert len(seqs) == 2 and seqs[0] < seqs[1]
    finally:
        await store.close()


TICKETS = Migration(
    "helpdesk",
    "tickets",
    "CREATE TABLE helpdesk_tickets (id TEXT PRIMARY KEY, opened REAL, body BLOB) WITHOUT ROWID",
)
NOTES = Migration(
    "helpdesk",
    "notes",
    "CREATE TABLE helpdesk_notes (id INTEGER PRIMARY KEY AUTOINCREMENT, ticket TEXT);"
    " CREATE INDEX helpdesk_notes_by_ticket ON helpdesk_notes (ticket)",
)


async def test_plugin_steps_are_translated_applied_once_and_kept(pg_database_url: str) -> None:
    store = await PostgresStore.open(pg_database_url, migrations=[TICKETS])
    await store.execute_write(
        "INSERT INTO helpdesk_tickets (id, opened, body) VALUES ('t1', 1.5, 'x')"
    )
    await store.close()
    store = await PostgresStore.open(pg_database_url, migrations=[TICKETS, NOTES])
    try:
        rows = await store.fetchall("SELECT plugin, name FROM plugin_migrations ORDER BY position")
        assert rows == [("helpdesk", "tickets"), ("helpdesk", "notes")]
        assert await store.fetchall("SELECT id, opened FROM helpdesk_tickets") == [("t1", 1.5)]
        await store.execute_write("INSERT INTO helpdesk_notes (ticket) VALUES ('t1'), ('t1')")
        assert await store.fetchall("SELECT id FROM helpdesk_notes ORDER BY id") == [(1,), (2,)]
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("CREATE TABLE helpdesk_x (id TEXT); PRAGMA foreign_keys=ON", "PRAGMA"),
        ("INSERT OR REPLACE INTO helpdesk_x VALUES ('a')", "INSERT OR REPLACE"),
        ("CREATE TABLE helpdesk_x (; nonsense", "syntax error"),
    ],
)
async def test_a_step_postgresql_cannot_run_names_itself_and_keeps_nothing(
    pg_database_url: str, sql: str, named: str
) -> None:
    broken = Migration("helpdesk", "broken", sql)
    with pytest.raises(MigrationFailed, match=named) as failed:
        await PostgresStore.open(pg_database_url, migrations=[TICKETS, broken])
    assert (failed.value.plugin, failed.value.name) == ("helpdesk", "broken")
    store = await PostgresStore.open(pg_database_url)
    try:
        assert await store.fetchall("SELECT to_regclass('helpdesk_tickets')") == [(None,)]
    finally:
        await store.close()


async def test_another_applications_database_and_a_newer_schema_are_refused(
    pg_database_url: str,
) -> None:
    with psycopg.connect(pg_database_url, autocommit=True) as db:
        db.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(NotChannelsyncDatabase, match="invoices"):
        await PostgresStore.open(pg_database_url)
    with pytest.raises(NotChannelsyncDatabase):
        await PostgresStore.open_readonly(pg_database_url)
    with psycopg.connect(pg_database_url, autocommit=True) as db:
        db.execute("DROP TABLE invoices")
    store = await PostgresStore.open(pg_database_url)
    await store.execute_write("INSERT INTO schema_version (version) VALUES (99)")
    await store.close()
    with pytest.raises(SchemaMismatch, match="99"):
        await PostgresStore.open(pg_database_url)
    with pytest.raises(SchemaMismatch, match="99"):
        await PostgresStore.open_readonly(pg_database_url)


async def test_a_connection_the_server_drops_fails_one_call_and_is_reopened(
    pg_database_url: str,
) -> None:
    """A server restart or an idle timeout cuts the store's sessions: the call
    under way fails (a commit as not recorded), the next ones reconnect."""
    store = await PostgresStore.open(pg_database_url)
    try:
        await store.commit(batch([event_row("order:1", "a")]))
        with psycopg.connect(pg_database_url, autocommit=True) as admin:
            cut = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = 'channelsync'"
            ).fetchall()
        assert len(cut) == 3, "the writer's, the commits' and the reader's sessions"
        with pytest.raises(WriteNotAcknowledged):
            await store.commit(batch([event_row("order:2", "b")]))
        with pytest.raises(psycopg.OperationalError):
            await store.known_event_ids(["a"])
        await store.commit(batch([event_row("order:2", "b")]))
        assert await store.known_event_ids(["a", "b"]) == {"a", "b"}
    finally:
        await store.close()


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.integers(1, 6), min_size=2, max_size=8), st.integers(2, 3))
def test_writers_sharing_a_database_never_share_a_number_and_keep_their_order(
    pg_database_url: str, sizes: list[int], writers: int
) -> None:
    """Several stores on one database (cluster workers, lock=False) committing
    at once: every event gets a number of its own, each writer's numbers rise
    in its commit order, and each entity (one writer's only) ends in the
    state of its last event."""

    async def work() -> None:
        stores = [await PostgresStore.open(pg_database_url) for _ in range(writers)]
        try:
            await stores[0].execute_write("TRUNCATE events, entities")

            async def write(number: int, store: PostgresStore) -> list[int]:
                seqs = []
                for round_no, size in enumerate(sizes):
                    rows = [
                        event_row(
                            f"order:{number}-{n}", f"w{number}-{round_no}-{n}", version=round_no + 1
                        )
                        for n in range(size)
                    ]
                    rows[-1].entity_after.state = f"r{round_no}"  # type: ignore[union-attr]
                    await store.commit(batch(rows))
                    seqs += [row.seq for row in rows]
                return seqs

            mine = await asyncio.gather(*(write(n, s) for n, s in enumerate(stores)))
            for seqs in mine:
                assert seqs == sorted(seqs), "a writer's numbers rise in its commit order"
            every = [seq for seqs in mine for seq in seqs]
            assert len(set(every)) == len(every) == writers * sum(sizes)
            logged = [row[0] async for row in stores[0].iter_events()]
            assert sorted(logged) == sorted(every)
            last = f"r{len(sizes) - 1}"
            for number in range(writers):
                entity = await stores[0].entity(f"order:{number}-{sizes[-1] - 1}")
                assert entity is not None and entity.state == last
        finally:
            for store in stores:
                await store.close()

    asyncio.run(work())


async def test_dispatchers_in_several_processes_never_hold_one_command(
    pg_database_url: str,
) -> None:
    """Three stores on one database (three processes' dispatchers) claim at
    the same moment, round after round: no command is ever held by two, an
    entity's commands run one at a time in order, and each is done once."""
    stores = [await PostgresStore.open(pg_database_url) for _ in range(3)]
    try:
        plan = [(f"order:{n % 4}", f"k{n}") for n in range(12)]
        rows = [
            event_row(entity, f"e-{key}", version=n + 1, commands=[command(key)])
            for n, (entity, key) in enumerate(plan)
        ]
        await stores[0].commit(batch(rows))
        queued = await stores[0].list_commands()
        entity_of = {c.id: c.entity for c in queued}
        finished: list[int] = []
        now = 2000.0
        while len(finished) < len(queued):
            claims = await asyncio.gather(
                *(s.claim_commands(f"d{n}", now, 60.0, ["notify"]) for n, s in enumerate(stores))
            )
            held = [c.command.id for claimed in claims for c in claimed]
            assert len(held) == len(set(held)), "never two claimants of one command"
            assert len({entity_of[cid] for cid in held}) == len(held), "one per entity at a time"
            outcomes = await asyncio.gather(
                *(
                    s.finish_command(c.command.id, f"d{n}", Done(1, now))
                    for n, (s, claimed) in enumerate(zip(stores, claims, strict=True))
                    for c in claimed
                )
            )
            assert set(outcomes) <= {"recorded"}
            finished += sorted(held)
            now += 1.0
        assert sorted(finished) == sorted(entity_of)
        for entity in {e for e, _ in plan}:
            mine = [cid for cid in finished if entity_of[cid] == entity]
            assert mine == sorted(mine), "an entity's commands ran in order"
    finally:
        for store in stores:
            await store.close()


async def test_the_duplicate_check_looks_ids_up_in_the_index_not_the_whole_log(
    pg_database_url: str,
) -> None:
    """A batch's thousand ids are checked by index lookups: a scan of the log
    per batch made long drains slow down as the log grew."""
    store = await PostgresStore.open(pg_database_url)
    sent: list[tuple[str, Any]] = []
    fetchall = store.fetchall

    async def recording(sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        sent.append((sql, params))
        return await fetchall(sql, params)

    try:
        await store.commit(batch(event_row(f"order:{n}", f"e{n}") for n in range(20_000)))
        store.fetchall = recording  # type: ignore[method-assign]
        asked = [f"new-{n}" for n in range(1_000)] + ["e7", "e19999"]
        assert await store.known_event_ids(asked) == {"e7", "e19999"}
        [(sql, params)] = sent
        plan = "\n".join(row[0] for row in await fetchall(f"EXPLAIN {sql}", params))
        assert "Seq Scan on events" not in plan, plan
    finally:
        await store.close()
