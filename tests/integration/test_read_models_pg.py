"""The read models' tests (tests/integration/test_read_models.py) against
PostgreSQL: the same properties and examples, the filters held to the same
Python reference (`engine.store.read_models_sql.matches`), on one database of
the module's own; and single-use records spent once by racing stores."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from engine.store.errors import WriteRefused
from engine.store.postgres import PostgresStore
from engine.testing.services import fresh_database
from tests.integration.test_read_models import (  # noqa: F401 - collected here, on PostgreSQL
    put_entities,
    test_a_filter_the_store_cannot_keep_exactly_is_refused,
    test_a_record_is_kept_replaced_found_and_deleted,
    test_entity_keys_match_prefix_and_suffix_literally,
    test_event_outcomes_are_given_in_log_order,
    test_filters_compare_json_types_and_count_missing_fields_as_told,
    test_find_entities_selects_what_the_reference_filter_selects,
    test_find_records_filters_values_as_entities_filter_data,
    test_has_command_and_outbox_backlog_read_the_outbox,
    test_lookups_by_ids_at_their_limits_find_exactly_their_entity,
    test_move_record_replaces_the_target_and_leaves_no_source,
    test_purge_deletes_only_the_namespace_s_expired_records,
    test_use_record_tells_unknown_live_used_and_expired,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.services]


@pytest.fixture(scope="module")
def module_database() -> AsyncIterator[str]:
    with fresh_database() as url:
        yield url  # type: ignore[misc]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def store(module_database: str) -> AsyncIterator[PostgresStore]:
    # The SQLite tests' setup rows are written with ``?``, which the store reads as ``%s``.
    opened = await PostgresStore.open(module_database)
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_single_use_record_is_spent_once_by_racing_stores(module_database: str) -> None:
    """Twenty callers on two stores (two processes of a cluster) race to spend
    one record: exactly one gets it live; of ten racing moves one moves it."""
    one = await PostgresStore.open(module_database)
    two = await PostgresStore.open(module_database)
    try:
        await one.put_record("test.race", "nonce", {"shop": "s"}, at=0.0, expires_at=60.0)
        verdicts = await asyncio.gather(
            *(s.use_record("test.race", "nonce", 1.0) for s in [one, two] * 10)
        )
        assert sorted(v for v, _ in verdicts) == ["live"] + ["used"] * 19
        moves = await asyncio.gather(
            *(s.move_record("test.race", "nonce", "test.moved", "k") for s in [one, two] * 5)
        )
        assert sorted(moves) == [False] * 9 + [True]
    finally:
        await one.close()
        await two.close()


async def test_a_read_only_store_reads_models_and_refuses_records(
    store: PostgresStore, module_database: str
) -> None:
    await put_entities(store, [("s:1", "shop", "active", {"id": "1"})])
    reader = await PostgresStore.open_readonly(module_database)
    try:
        assert [e.key for e in await reader.find_entities("shop", where={"id": "1"})] == ["s:1"]
        with pytest.raises(WriteRefused, match="read-only"):
            await reader.put_record("test.ro", "k", {})
    finally:
        await reader.close()
