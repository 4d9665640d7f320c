"""Settling staged OAuth tokens (CONN-7, `CredentialStore.settle_staged`) on a
real SQLite file: what becomes of each staged row, for any mix of outcomes,
ages and grace periods. A cluster's workers settle with a grace period, since
a receiver's authorization is recorded only once a worker applies it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.tiktok_shop.credentials import STAGED, Credentials, CredentialStore
from engine.store.sqlite import SQLiteStore

pytestmark = pytest.mark.asyncio(loop_scope="module")
NOW = 1_800_000_000.0
OUTCOMES = st.sampled_from([None, "transitioned", "ignored", "refused"])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def store(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SQLiteStore]:
    opened = await SQLiteStore.open(tmp_path_factory.mktemp("settle") / "settle.db")
    try:
        yield opened
    finally:
        await opened.close()


def tokens(shop: str) -> Credentials:
    return Credentials(shop, f"id-{shop}", "cipher", f"access-{shop}", 1, "refresh", 2)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    staged=st.lists(st.tuples(st.integers(0, 100), OUTCOMES), max_size=6),
    keep=st.integers(0, 100),
)
async def test_settling_promotes_accepted_keeps_young_unrecorded_and_drops_the_rest(
    store: SQLiteStore, staged: list[tuple[int, str | None]], keep: int
) -> None:
    await store.execute_write("DELETE FROM records")
    await store.execute_write("DELETE FROM events")
    credentials = CredentialStore(store)
    for seq, (age, outcome) in enumerate(staged, 1):
        event_id = f"oauth:shop:{seq}:x"
        await credentials.stage(event_id, tokens(f"shop:{seq}"), at=NOW - age)
        if outcome is not None:
            await store.execute_write(
                "INSERT INTO events (seq, event_id, type, source, entity, chart, received_at,"
                " payload, outcome) VALUES (?, ?, 'connection.authorized', 'tiktok-oauth',"
                " ?, 'shop_connection', 0, '{}', ?)",
                (seq, event_id, f"shop:{seq}", outcome),
            )

    promoted, discarded = await credentials.settle_staged(now=NOW, keep_unrecorded=keep)

    left = {record.key for record in await store.find_records(STAGED)}
    for seq, (age, outcome) in enumerate(staged, 1):
        kept = outcome is None and keep > 0 and age <= keep
        assert (f"oauth:shop:{seq}:x" in left) == kept
        shops = await credentials.get(f"shop:{seq}")
        assert (shops is not None) == (outcome == "transitioned")
    assert promoted == sum(outcome == "transitioned" for _age, outcome in staged)
    assert promoted + discarded + len(left) == len(staged)
