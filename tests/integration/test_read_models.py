"""The store's read models (engine.store.read_models) on a real SQLite file:
entity lists filtered by state and data fields, records an adapter keeps, and
the single-use and move guarantees those records give under concurrency."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.store.read_models import Equals
from engine.store.read_models_sql import matches
from engine.store.sqlite import SQLiteStore, dumps

pytestmark = pytest.mark.asyncio(loop_scope="module")
_namespaces = itertools.count(1)
INT64 = (-(2**63), 2**63 - 1)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def store(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SQLiteStore]:
    opened = await SQLiteStore.open(tmp_path_factory.mktemp("read_models") / "rm.db")
    try:
        yield opened
    finally:
        await opened.close()


async def put_entities(store: SQLiteStore, rows: list[tuple[str, str, str, Any]]) -> None:
    """Entities as the engine leaves them, (key, chart, state, data), replacing all."""
    await store.execute_write("DELETE FROM entities")
    for key, chart, state, data in rows:
        await store.execute_write(
            "INSERT INTO entities (key, kind, chart, state, data, version, last_seq, updated_at)"
            " VALUES (?, ?, ?, ?, ?, 1, 0, 0)",
            (key, chart, chart, state, dumps(data)),
        )


# ------------------------------------------------------------------ filters, for all inputs

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=INT64[0], max_value=INT64[1]),
    st.sampled_from([0, 1, -1, INT64[0], INT64[1], 0.5, 1.0, -0.0]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["", "failed", "FAILED", "Failed", "ünï", "☃", "\U0001d530", "a\x00b"]),
)
FIELDS = st.sampled_from(["a", "b", "n"])
VALUES = st.recursive(
    SCALARS, lambda inner: st.dictionaries(FIELDS, inner, max_size=3), max_leaves=6
)
DATA = st.dictionaries(FIELDS, VALUES, max_size=3)
PATHS = st.sampled_from(["a", "b", "n", "n.a", "n.b", "a.a", "n.n.a"])


@st.composite
def wanted(draw: st.DrawFn, pool: list[Any]) -> Any:
    """A filter value: often one the data holds, so filters find something."""
    value = draw(st.sampled_from(pool) if pool and draw(st.booleans()) else SCALARS)
    if isinstance(value, dict):
        value = None
    if draw(st.booleans()):
        return value
    missing = draw(st.one_of(st.none(), st.just(value), SCALARS))
    return Equals(value, missing=missing, any_case=draw(st.booleans()))


def _scalars(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [s for inner in value.values() for s in _scalars(inner)]
    return [value]


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.lists(DATA, max_size=8), states=st.lists(st.sampled_from("xyz")), draw=st.data())
async def test_find_entities_selects_what_the_reference_filter_selects(store, data, states, draw):
    """For all data (unicode, NUL, ints at the 64-bit limits, floats, booleans,
    nulls, nested objects, missing fields) and filters (equality, a value a
    missing field counts as, any case): the store lists exactly the entities
    of the chart, in the states, whose data the Python reference matches, by key."""
    rows = [(f"k:{i:02}", "c", "xyz"[i % 3], d) for i, d in enumerate(data)]
    rows.append(("other:0", "other", "x", data[0] if data else {}))
    await put_entities(store, rows)
    pool = [s for d in data for s in _scalars(d)]
    where = draw.draw(st.dictionaries(PATHS, wanted(pool), max_size=3))

    found = await store.find_entities("c", states=states, where=where)

    expected = [
        key
        for key, chart, state, d in rows
        if chart == "c" and (not states or state in states) and matches(d, where)
    ]
    assert [e.key for e in found] == expected
    assert all(e.data == dict(data[int(e.key[2:])]) for e in found)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.lists(DATA, max_size=6), draw=st.data())
async def test_find_records_filters_values_as_entities_filter_data(store, data, draw):
    """The same filters over records' values: a record is found exactly when
    the reference matches its value, and only in its namespace."""
    namespace = f"test.filter{next(_namespaces)}"
    for i, value in enumerate(data):
        await store.put_record(namespace, f"r{i}", value)
        await store.put_record(namespace + "x", f"r{i}", value)
    pool = [s for d in data for s in _scalars(d)]
    where = draw.draw(st.dictionaries(PATHS, wanted(pool), max_size=2))

    found = await store.find_records(namespace, where=where)

    assert [r.key for r in found] == [f"r{i}" for i, d in enumerate(data) if matches(d, where)]
    assert {r.namespace for r in found} <= {namespace}


KEY_TEXT = st.text(alphabet="ab%_\\:Aé", max_size=4)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(keys=st.sets(KEY_TEXT.map(lambda k: "listing:" + k), max_size=8), ends=KEY_TEXT)
async def test_entity_keys_match_prefix_and_suffix_literally(store, keys, ends):
    """LIKE's wildcards (% and _) and its escape in a key are plain characters;
    case counts; prefix and suffix do not overlap."""
    await put_entities(store, [(k, "listing", "x", {}) for k in keys])
    found = await store.entity_keys("listing", prefix="listing:", suffix=ends)
    assert found == sorted(
        k for k in keys if k.startswith("listing:") and k[len("listing:") :].endswith(ends)
    )


# ------------------------------------------------------------------ filters, by example


async def test_filters_compare_json_types_and_count_missing_fields_as_told(store):
    await put_entities(
        store,
        [
            ("o:1", "order", "new", {"channel": "TikTok Shop", "sync": {"status": "synced"}}),
            ("o:2", "order", "new", {"channel": "tiktok shop", "sync": {}}),
            ("o:3", "order", "done", {"channel": 1, "sync": "odd"}),
            ("o:4", "order", "done", {"channel": True, "n": 1.0}),
        ],
    )

    async def keys(**kwargs: Any) -> list[str]:
        return [e.key for e in await store.find_entities("order", **kwargs)]

    assert await keys(where={"channel": "TikTok Shop"}) == ["o:1"]
    assert await keys(where={"channel": Equals("TIKTOK SHOP", any_case=True)}) == ["o:1", "o:2"]
    assert await keys(where={"channel": 1}) == ["o:3"], "true is no number"
    assert await keys(where={"channel": True}) == ["o:4"]
    assert await keys(where={"n": 1}) == ["o:4"], "1 and 1.0 are one number"
    not_synced = Equals("not_synced", missing="not_synced")
    assert await keys(where={"sync.status": not_synced}) == ["o:2", "o:3", "o:4"]
    assert await keys(where={"sync.status": None}) == ["o:2", "o:3", "o:4"]
    assert await keys(states=["done"], order_by="-key", limit=1) == ["o:4"]
    assert await keys(limit=0) == []
    assert (await store.find_entity("order", where={"channel": "nobody"})) is None
    assert await store.entity_exists("o:1") and not await store.entity_exists("o:9")


async def test_lookups_by_ids_at_their_limits_find_exactly_their_entity(store):
    """Ids as platforms send them: very long, unicode, the largest 64-bit
    number, and that number written as a string (a different id)."""
    long_id, top = "7" * 10_000, INT64[1]
    await put_entities(
        store,
        [
            ("p:long", "listing", "x", {"tiktok_product_id": long_id}),
            ("p:short", "listing", "x", {"tiktok_product_id": long_id[:-1]}),
            ("p:top", "listing", "x", {"tiktok_product_id": top}),
            ("p:top-text", "listing", "x", {"tiktok_product_id": str(top)}),
            ("p:unicode", "listing", "x", {"tiktok_product_id": "ид-☃-\U0001d530"}),
        ],
    )

    async def key(value: Any) -> str | None:
        found = await store.find_entity("listing", where={"tiktok_product_id": value})
        return found.key if found else None

    assert await key(long_id) == "p:long"
    assert await key(top) == "p:top"
    assert await key(str(top)) == "p:top-text"
    assert await key("ид-☃-\U0001d530") == "p:unicode"
    assert await key("ИД-☃-\U0001d530") is None


@pytest.mark.parametrize(
    ("where", "error"),
    [
        ({"a b": 1}, ValueError),
        ({"$.a": 1}, ValueError),
        ({"a..b": 1}, ValueError),
        ({"a": 2**63}, ValueError),
        ({"a": float("nan")}, ValueError),
        ({"a": [1]}, TypeError),
    ],
)
async def test_a_filter_the_store_cannot_keep_exactly_is_refused(store, where, error):
    with pytest.raises(error):
        await store.find_entities("order", where=where)


async def test_an_unknown_order_or_a_negative_limit_is_refused(store):
    with pytest.raises(ValueError, match="order_by"):
        await store.find_entities("order", order_by="state")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit"):
        await store.find_entities("order", limit=-1)


# ------------------------------------------------------------------ records


async def test_a_record_is_kept_replaced_found_and_deleted(store):
    ns = f"test.records{next(_namespaces)}"
    await store.put_record(ns, "k", {"token": "secret", "n": 1}, at=5.0)
    record = await store.get_record(ns, "k")
    assert record is not None and record.value == {"token": "secret", "n": 1}
    assert record.stored_at == 5.0 and record.expires_at is None and record.used_at is None
    assert "secret" not in repr(record)
    await store.put_record(ns, "k", {"token": "other"})
    assert (await store.get_record(ns, "k")).value == {"token": "other"}
    assert await store.get_record(ns + "2", "k") is None
    assert await store.delete_record(ns, "k") and not await store.delete_record(ns, "k")
    assert await store.get_record(ns, "k") is None


async def test_use_record_tells_unknown_live_used_and_expired(store):
    ns = f"test.use{next(_namespaces)}"
    await store.put_record(ns, "n", {"shop": "s"}, at=0.0, expires_at=10.0)
    await store.put_record(ns, "late", {"shop": "s"}, at=0.0, expires_at=10.0)
    assert await store.use_record(ns, "missing", 1.0) == ("unknown", None)
    verdict, record = await store.use_record(ns, "n", 1.0)
    assert verdict == "live" and record is not None and record.used_at == 1.0
    assert (await store.use_record(ns, "n", 2.0))[0] == "used"
    assert (await store.use_record(ns, "late", 10.0))[0] == "expired"
    assert (await store.use_record(ns, "late", 9.0))[0] == "live", "an expired check spends nothing"


async def test_purge_deletes_only_the_namespace_s_expired_records(store):
    ns = f"test.purge{next(_namespaces)}"
    await store.put_record(ns, "old", {}, expires_at=1.0)
    await store.put_record(ns, "new", {}, expires_at=5.0)
    await store.put_record(ns, "forever", {})
    await store.put_record(ns + "x", "old", {}, expires_at=1.0)
    assert await store.purge_records(ns, expired_before=2.0) == 1
    assert [r.key for r in await store.find_records(ns)] == ["forever", "new"]
    assert await store.get_record(ns + "x", "old") is not None


async def test_move_record_replaces_the_target_and_leaves_no_source(store):
    ns = f"test.move{next(_namespaces)}"
    await store.put_record(ns + ".staged", "e1", {"v": 2}, at=3.0)
    await store.put_record(ns, "shop", {"v": 1})
    assert await store.move_record(ns + ".staged", "e1", ns, "shop")
    assert (await store.get_record(ns, "shop")).value == {"v": 2}
    assert await store.get_record(ns + ".staged", "e1") is None
    assert not await store.move_record(ns + ".staged", "e1", ns, "shop")
    assert (await store.get_record(ns, "shop")).value == {"v": 2}, "nothing moved, nothing lost"


@pytest.mark.parametrize("writer", ["thread", "process"])
async def test_a_single_use_record_is_spent_once_by_racing_stores(tmp_path: Path, writer: str):
    """Twenty callers on two stores (two writers of one file, as two processes
    of the channel are) race to spend one record: exactly one gets it live."""
    db = tmp_path / "race.db"
    one = await SQLiteStore.open(db, writer=writer)
    two = await SQLiteStore.open(db, writer=writer)
    try:
        await one.put_record("test.race", "nonce", {"shop": "s"}, at=0.0, expires_at=60.0)
        verdicts = await asyncio.gather(
            *(s.use_record("test.race", "nonce", 1.0) for s in [one, two] * 10)
        )
        assert sorted(v for v, _ in verdicts) == ["live"] + ["used"] * 19
        assert {r.value["shop"] for _, r in verdicts if r} == {"s"}
        moves = await asyncio.gather(
            *(s.move_record("test.race", "nonce", "test.moved", "k") for s in [one, two] * 5)
        )
        assert sorted(moves) == [False] * 9 + [True]
    finally:
        await one.close()
        await two.close()


# ------------------------------------------------------------------ the log and the outbox


async def test_event_outcomes_are_given_in_log_order(store):
    for seq, event_id, outcome in [(3, "e:b", "refused"), (4, "e:a", "transitioned")]:
        await store.execute_write(
            "INSERT INTO events (seq, event_id, type, source, entity, chart, received_at,"
            " payload, outcome) VALUES (?, ?, 't', 's', 'x', 'c', 0, '{}', ?)",
            (seq, event_id, outcome),
        )
    outcomes = await store.event_outcomes(["e:a", "e:missing", "e:b"])
    assert list(outcomes.items()) == [("e:b", "refused"), ("e:a", "transitioned")]
    assert await store.event_outcomes([]) == {}


async def test_has_command_and_outbox_backlog_read_the_outbox(store):
    rows = [
        (1, "o:1", "push", "pending", None, 5.0),
        (2, "o:1", "push", "held", "shop:a", 1.0),
        (3, "o:2", "push", "done", None, 0.0),
        (4, "o:2", "fetch", "pending", None, 50.0),
    ]
    for id_, entity, command, status, hold, available in rows:
        await store.execute_write(
            "INSERT INTO outbox (id, event_seq, entity, command, payload, idempotency_key,"
            " status, created_at, available_at, hold_key) VALUES (?, 0, ?, ?, '{}', ?, ?, 0, ?, ?)",
            (id_, entity, command, f"i{id_}", status, available, hold),
        )
    assert await store.has_command("o:1", "push", statuses=("pending", "held"))
    assert await store.has_command("o:1", "push", statuses=("held",), hold_key="shop:a")
    assert not await store.has_command("o:1", "push", statuses=("held",), excluding=2)
    assert not await store.has_command("o:2", "push", statuses=("pending", "held"))
    assert not await store.has_command("o:1", "push", statuses=())
    due = await store.outbox_backlog(10.0)
    assert (due.count, due.oldest_available_at) == (1, 5.0)
    assert (await store.outbox_backlog(0.0)).count == 0
    assert await store.schema_version() >= 1


async def test_a_read_only_store_reads_models_and_refuses_records(store):
    await put_entities(store, [("s:1", "shop", "active", {"id": "1"})])
    reader = await SQLiteStore.open_readonly(store.path)
    try:
        assert [e.key for e in await reader.find_entities("shop", where={"id": "1"})] == ["s:1"]
        with pytest.raises(Exception, match="read-only"):
            await reader.put_record("test.ro", "k", {})
    finally:
        await reader.close()
