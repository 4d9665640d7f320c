"""The engine's own tests (tests/integration/test_engine.py, test_outbox.py,
test_dead_letters.py) that need nothing but an engine, run again with the
engine on PostgreSQL: the log, duplicates, ordering, timers, replay and
check, the outbox's retries, holds and order. Their few SQL statements are
written for SQLite (``?``), which the PostgreSQL store reads as its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine import Engine
from engine.chartset import ChartSet
from engine.clock import FakeClock
from engine.store.urls import VAULT_VARIABLE
from tests.conftest import opened_sample_engine
from tests.integration.test_dead_letters import (  # noqa: F401 - collected here, on PostgreSQL
    test_sec1_a_cut_body_keeps_the_size_it_was_known_to_have,
)
from tests.integration.test_engine import (  # noqa: F401 - collected here, on PostgreSQL
    test_eng2_a_state_change_then_self_transitions_in_one_commit_store_the_new_state,
    test_eng2_duplicate_event_id_is_recorded_and_changes_nothing,
    test_eng2_duplicates_inside_one_batch_are_caught,
    test_eng2_eng4_publish_many_returns_each_events_receipt_in_order,
    test_eng3_unknown_event_type_and_unknown_entity_kind_are_dead_letters,
    test_eng4_one_entitys_events_apply_in_publish_order,
    test_eng5_check_notices_a_stored_entity_that_disagrees,
    test_eng5_replay_rebuilds_state_and_check_names_a_tampered_event,
    test_eng7_a_timer_fired_twice_applies_once,
)
from tests.integration.test_outbox import (  # noqa: F401 - collected here, on PostgreSQL
    test_eng6_a_command_runs_once_and_its_result_events_re_enter,
    test_eng6_a_command_without_a_handler_does_not_stall_its_entity,
    test_eng6_a_crash_before_marking_done_repeats_with_the_same_key,
    test_eng6_a_failing_command_is_retried_with_backoff_then_parked,
    test_eng6_command_is_stored_in_the_same_transaction_as_its_transition,
    test_eng6_commands_of_one_entity_run_in_order,
    test_eng6_held_commands_wait_and_resume_on_release,
    test_eng6_retry_later_waits_as_told_and_failed_parks_at_once,
)

pytestmark = pytest.mark.services


@pytest.fixture
async def sample_engine(
    pg_database_url: str,
    clock: FakeClock,
    sample_charts: ChartSet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Engine]:
    """The sample charts' engine, as tests/conftest.py opens it, on PostgreSQL."""
    monkeypatch.setenv(VAULT_VARIABLE, str(tmp_path / "vault.keys"))
    async with opened_sample_engine(pg_database_url, sample_charts, clock) as engine:
        yield engine
