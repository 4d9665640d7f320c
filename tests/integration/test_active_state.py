"""`ActiveState`: filtering stored configurations by any active state, in SQL.

The SQL must select exactly what `engine.charts.configuration.is_active` says,
for every configuration and id, including those that trip a naive filter: a
name that is a prefix of a sibling's (``sync`` vs ``sync_x``, ``syncing``),
``_`` and ``%`` (LIKE's wildcards), an id that is a child's name elsewhere
(``failed`` vs ``sync.failed``). The store's `entities(state=)` and
`find_entities(states=)` use it; flat charts' states filter as before.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st

from engine.charts.configuration import is_active, join_states
from engine.store.read_models_sql import ActiveState, active_in_any
from engine.store.sqlite import SQLiteStore, dumps

# Names chosen to collide: prefixes of each other, LIKE wildcards, dots' neighbours.
NAMES = st.sampled_from(["sync", "sync_x", "syncing", "s", "x", "failed", "a_b", "a%b", "ab", "é"])
IDS = st.lists(NAMES, min_size=1, max_size=3).map(".".join)
CONFIGURATIONS = st.lists(IDS, max_size=4).map(join_states)


def _sql_selects(configuration: str, state_id: str) -> bool:
    sql, params = ActiveState(state_id).clause("state")
    with sqlite3.connect(":memory:") as db:
        row = db.execute(f"SELECT {sql} FROM (SELECT ? AS state)", [*params, configuration])
        return bool(row.fetchone()[0])


@given(configuration=CONFIGURATIONS, state_id=IDS)
def test_sql_selects_a_configuration_exactly_when_the_state_is_active(configuration, state_id):
    assert _sql_selects(configuration, state_id) == is_active(configuration, state_id)


@given(configuration=CONFIGURATIONS, data=st.data())
def test_every_ancestor_of_an_active_state_is_found(configuration, data):
    if not configuration:
        return
    leaf = data.draw(st.sampled_from(configuration.split(",")))
    parts = leaf.split(".")
    ancestor = ".".join(parts[: data.draw(st.integers(1, len(parts)))])
    assert _sql_selects(configuration, ancestor)


@given(name=st.text(min_size=1, max_size=8).filter(lambda t: "," not in t and "\x00" not in t))
def test_a_flat_state_is_plain_equality(name):
    assert _sql_selects(name, name)
    assert not _sql_selects(name + "x", name)
    assert not _sql_selects("x" + name, name)


@pytest.mark.parametrize("bad", ["", "a,b"])
def test_an_id_that_is_not_one_state_is_refused(bad):
    with pytest.raises(ValueError, match="dotted names"):
        ActiveState(bad)


def test_any_of_several_states():
    sql, params = active_in_any("state", ["sync.failed", "lifecycle.on_hold"])
    assert sql.count("instr") == 4 and len(params) == 4
    assert active_in_any("state", []) == ("", [])


# ------------------------------------------------------------------ the store uses it

in_module_loop = pytest.mark.asyncio(loop_scope="module")

ROWS: list[tuple[str, str, str]] = [
    ("order:1", "order", "lifecycle.paid,sync.failed,fulfillment.idle"),
    ("order:2", "order", "lifecycle.paid,sync_x.failed,fulfillment.idle"),
    ("order:3", "order", "lifecycle.on_hold,sync.syncing,fulfillment.pushed"),
    ("parcel:1", "parcel", "packed"),
    ("parcel:2", "parcel", "packed_late"),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def store(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SQLiteStore]:
    opened = await SQLiteStore.open(tmp_path_factory.mktemp("active_state") / "a.db")
    for key, chart, state in ROWS:
        await opened.execute_write(
            "INSERT INTO entities (key, kind, chart, state, data, version, last_seq, updated_at)"
            " VALUES (?, ?, ?, ?, ?, 1, 0, 0)",
            (key, chart, chart, state, dumps({})),
        )
    try:
        yield opened
    finally:
        await opened.close()


async def _keys(found: Any) -> list[str]:
    return [entity.key for entity in await found]


@in_module_loop
@pytest.mark.parametrize(
    ("state", "keys"),
    [
        ("sync.failed", ["order:1"]),
        ("sync", ["order:1", "order:3"]),
        ("lifecycle", ["order:1", "order:2", "order:3"]),
        ("failed", []),
        ("packed", ["parcel:1"]),
        ("packed_late", ["parcel:2"]),
    ],
)
async def test_entities_filter_by_any_active_state(store, state, keys):
    assert await _keys(store.entities(state=state)) == keys


@in_module_loop
async def test_read_models_find_entities_in_any_of_the_states(store):
    found = store.find_entities("order", states=["sync.failed", "lifecycle.on_hold"])
    assert await _keys(found) == ["order:1", "order:3"]
    assert await _keys(store.find_entities("parcel", states=["packed"])) == ["parcel:1"]
    assert await _keys(store.find_entities("parcel")) == ["parcel:1", "parcel:2"]


# ------------------------------------------------------------------ the CLI uses it


def test_channelsync_state_lists_the_entities_in_which_a_state_is_active(tmp_path):
    import asyncio
    import json

    from typer.testing import CliRunner

    from engine.cli.main import build_cli

    db = tmp_path / "cli.db"

    async def fill() -> None:
        opened = await SQLiteStore.open(db)
        try:
            for key, chart, state in ROWS:
                await opened.execute_write(
                    "INSERT INTO entities (key, kind, chart, state, data, version, last_seq,"
                    " updated_at) VALUES (?, ?, ?, ?, ?, 1, 0, 0)",
                    (key, chart, chart, state, dumps({})),
                )
        finally:
            await opened.close()

    asyncio.run(fill())

    def keys(*args: str) -> list[str]:
        shown = CliRunner().invoke(build_cli(), ["state", "--db", str(db), "--json", *args])
        assert shown.exit_code == 0, shown.output
        return [entity["key"] for entity in json.loads(shown.stdout)]

    assert keys("--state", "sync.failed") == ["order:1"]
    assert keys("--state", "sync") == ["order:1", "order:3"]
    assert keys("--state", "packed") == ["parcel:1"]
    assert keys("--state", "lifecycle", "--chart", "parcel") == []
    refused = CliRunner().invoke(build_cli(), ["state", "--db", str(db), "--state", "a,b"])
    assert refused.exit_code == 1 and "one state id" in refused.stderr
