"""`check --jobs` and `replay --jobs`: one process or several, the same answer."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from engine import Engine, FakeClock
from tests.conftest import invoke_cli
from tests.parcel_model import EVENT_TYPES, payload_for


@pytest.fixture
async def parcel_db(sample_engine: Engine, clock: FakeClock, db_path: Path) -> Path:
    """A log of 60 parcel events over 12 parcels, one minute apart."""
    for n in range(60):
        event_type = EVENT_TYPES[n % len(EVENT_TYPES)]
        clock.advance(60)
        await sample_engine.publish(
            sample_engine.make_event(
                event_type, f"parcel:{n % 12}", payload_for(event_type, n), event_id=f"e{n}"
            )
        )
    return db_path


async def _both(*args: str) -> list[tuple[int, str, str]]:
    """The exit code and output of the command with --jobs 1 and with --jobs 3."""
    runs = [await invoke_cli(*args, "--jobs", jobs) for jobs in ("1", "3")]
    return [(run.exit_code, run.stdout, run.stderr) for run in runs]


async def test_check_passes_alike_in_one_process_and_in_three(parcel_db: Path) -> None:
    single, parallel = await _both("check", "--db", str(parcel_db))
    assert single == parallel
    assert single[0] == 0 and single[1].startswith("ok: 60 events replayed, 12 entities match")


@pytest.mark.parametrize(
    ("tampering", "named"),
    [
        # Two tampered outcomes in different entities: the earlier one is named.
        (
            "UPDATE events SET to_state = 'delivered' WHERE event_id IN ('e31', 'e12')",
            "first divergent event: seq 13 (e12)",
        ),
        (
            "UPDATE entities SET version = 99 WHERE key IN ('parcel:7', 'parcel:10')",
            "stored entity parcel:10 differs",
        ),
    ],
)
async def test_check_names_the_same_difference_in_one_process_and_in_three(
    parcel_db: Path, tampering: str, named: str
) -> None:
    with sqlite3.connect(parcel_db) as db:
        db.execute(tampering)
    single, parallel = await _both("check", "--db", str(parcel_db))
    assert single == parallel
    assert single[0] == 1 and named in single[2]


# Up to seq 5, and up to half a minute past the fifth event (one a minute).
@pytest.mark.parametrize("until", [None, "5", "2023-11-14T22:18:50Z"])
async def test_replay_json_is_the_same_in_one_process_and_in_three(
    parcel_db: Path, until: str | None
) -> None:
    args = ["replay", "--db", str(parcel_db), "--json"]
    single, parallel = await _both(*args, *(["--until", until] if until else []))
    assert single == parallel and single[0] == 0
    keys = {state["key"] for state in json.loads(single[1])}
    # The first five events: parcel:0 packed, 1 and 2 ignored, 3 cancelled, 4 noted.
    assert keys == (
        {f"parcel:{n}" for n in range(12)}
        if until is None
        else {"parcel:0", "parcel:3", "parcel:4"}
    )


async def test_jobs_must_be_at_least_one(parcel_db: Path) -> None:
    refused = await invoke_cli("check", "--db", str(parcel_db), "--jobs", "0")
    assert refused.exit_code == 2 and "--jobs" in refused.output
