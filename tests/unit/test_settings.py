"""Typed settings: a wrong value fails when the settings are made, naming the field."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channelsync.settings import ChannelSettings, ConfigError
from engine.settings import EngineSettings

COUNTS = ("partitions", "queue_size", "max_batch", "cache_size", "pending_batches")
DURATIONS = (
    "timer_interval",
    "outbox_interval",
    "outbox_lease",
    "dead_letter_retention",
    "purge_interval",
)
SECRETS = {"TIKTOK_APP_KEY": "k", "TIKTOK_APP_SECRET": "s", "SHOPLAZZA_CLIENT_SECRET": "c"}


def test_the_defaults_are_valid_and_frozen():
    settings = EngineSettings()
    assert settings.writer == "thread" and settings.run_timers and settings.lock
    with pytest.raises(FrozenInstanceError):
        settings.partitions = 8


@given(name=st.sampled_from(COUNTS), value=st.integers(max_value=0) | st.just(True))
def test_a_count_below_one_is_refused_by_name(name, value):
    with pytest.raises(ValueError, match=f"EngineSettings.{name} must be a whole number"):
        EngineSettings(**{name: value})


@given(
    name=st.sampled_from(DURATIONS),
    value=st.floats(max_value=0) | st.just(float("nan")),
)
def test_a_duration_that_is_not_positive_is_refused_by_name(name, value):
    with pytest.raises(ValueError, match=f"EngineSettings.{name} must be a number > 0"):
        EngineSettings(**{name: value})


@given(name=st.sampled_from(COUNTS), value=st.integers(min_value=1, max_value=10**6))
def test_any_positive_count_is_kept(name, value):
    assert getattr(EngineSettings(**{name: value}), name) == value


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("writer", "fork", "EngineSettings.writer must be 'thread' or 'process', not 'fork'"),
        ("synchronous", "full", "EngineSettings.synchronous must be one of OFF, NORMAL"),
        ("lock_wait", -1.0, "EngineSettings.lock_wait must be >= 0"),
        ("inert_commands", "  ", "EngineSettings.inert_commands must be a reason"),
    ],
)
def test_a_wrong_choice_is_refused_by_name(field, value, message):
    with pytest.raises(ValueError, match=message):
        EngineSettings(**{field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pull_interval", -1.0),
        ("shoplazza_pull_interval", -0.5),
        ("shoplazza_rate", 0.0),
        ("oauth_state_ttl", 0.0),
        ("writer_max_restarts", -1),
    ],
)
def test_channel_settings_refuse_a_wrong_value_by_name(tmp_path: Path, field, value):
    with pytest.raises(ValueError, match=f"ChannelSettings.{field} must be"):
        ChannelSettings(db=tmp_path / "x.db", **{field: value})


def test_from_env_reads_secrets_and_urls_and_takes_the_other_fields(tmp_path: Path):
    env = {**SECRETS, "TIKTOK_API_URL": "http://tiktok.test", "SHOPLAZZA_RATE_PER_SECOND": "5"}
    settings = ChannelSettings.from_env(
        tmp_path / "x.db", env, pull_interval=0, engine=EngineSettings(writer="process")
    )
    assert (settings.tiktok_app_key, settings.tiktok_app_secret) == ("k", "s")
    assert settings.tiktok_api_url == "http://tiktok.test" and settings.shoplazza_rate == 5.0
    assert settings.pull_interval == 0 and settings.engine.writer == "process"
    # Settings change by copy: one service's settings never leak into another's.
    assert replace(settings, pull_interval=10).pull_interval == 10 and settings.pull_interval == 0


def test_from_env_names_every_missing_secret_and_a_bad_rate(tmp_path: Path):
    with pytest.raises(ConfigError) as missing:
        ChannelSettings.from_env(tmp_path / "x.db", {"TIKTOK_APP_KEY": "k"})
    assert "TIKTOK_APP_SECRET, SHOPLAZZA_CLIENT_SECRET" in str(missing.value)
    with pytest.raises(ConfigError, match="SHOPLAZZA_RATE_PER_SECOND must be a number"):
        ChannelSettings.from_env(tmp_path / "x.db", {**SECRETS, "SHOPLAZZA_RATE_PER_SECOND": "x"})
