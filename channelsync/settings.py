"""`ChannelSettings`: everything the channel runs with, typed and checked once.

`ChannelSettings.from_env` reads the platforms' secrets from the environment;
the command line (`channelsync serve`) and tests replace single fields with
`dataclasses.replace`. The engine's own knobs are nested (`EngineSettings`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.health import HealthLimits
from adapters.limits import HttpLimits
from adapters.tiktok_shop.oauth import STATE_TTL
from engine.settings import EngineSettings

REQUIRED_ENV = ("TIKTOK_APP_KEY", "TIKTOK_APP_SECRET", "SHOPLAZZA_CLIENT_SECRET")
TIKTOK_API_URL = "https://open-api.tiktokglobalshop.com"
TIKTOK_AUTH_URL = "https://auth.tiktok-shops.com"


class ConfigError(ValueError):
    """The environment does not hold what the channel needs; the message says what."""


@dataclass(frozen=True)
class ChannelSettings:
    # A SQLite file, or a PostgreSQL URL (docs/scaling.md).
    db: Path | str
    # The platforms' app credentials (from the environment in production).
    tiktok_app_key: str = ""
    tiktok_app_secret: str = ""
    shoplazza_client_secret: str = ""
    shoplazza_access_token: str = ""
    tiktok_api_url: str = TIKTOK_API_URL
    tiktok_auth_url: str = TIKTOK_AUTH_URL
    shoplazza_api_url: str = ""
    # The charts' own values (`ChartSet.load`), e.g. ``{"review_timeout": "30m"}``.
    chart_settings: Mapping[str, Any] = field(default_factory=dict)
    # Seconds between scheduled pulls (0: off). TikTok's orders and product
    # statuses change often and its webhooks can be lost for good; Shoplazza
    # retries its webhooks for two days, so its pull is a slower backstop.
    pull_interval: float = 300.0
    shoplazza_pull_interval: float = 900.0
    shoplazza_rate: float = 2.0
    # How long an OAuth `state` nonce stays usable (CONN-7).
    oauth_state_ttl: float = STATE_TTL
    # Supervision and health (ENG-12): restarts of a dead writer process allowed
    # within the window before serve gives up, the wait before a restart, and
    # when the outbox backlog makes the service not ready.
    writer_max_restarts: int = 5
    writer_restart_window: float = 60.0
    writer_restart_delay: float = 0.05
    health: HealthLimits = field(default_factory=HealthLimits)
    # What one client may take of the receiver (SEC-1): body size, connections, timeouts.
    limits: HttpLimits = field(default_factory=HttpLimits)
    engine: EngineSettings = field(default_factory=EngineSettings)

    def __post_init__(self) -> None:
        for name in ("pull_interval", "shoplazza_pull_interval", "writer_restart_delay"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"ChannelSettings.{name} must be >= 0 (0: off), not {value!r}")
        for name in ("shoplazza_rate", "oauth_state_ttl", "writer_restart_window"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"ChannelSettings.{name} must be > 0, not {value!r}")
        restarts = self.writer_max_restarts
        if restarts < 0:
            raise ValueError(f"ChannelSettings.writer_max_restarts must be >= 0, not {restarts!r}")

    @classmethod
    def from_env(
        cls, db: Path | str, env: Mapping[str, str] | None = None, **overrides: Any
    ) -> ChannelSettings:
        """The settings with the platforms' secrets and addresses from ``env``
        (default: the process environment); ``overrides`` set other fields.
        Raises `ConfigError` naming every secret that is missing."""
        env = dict(os.environ if env is None else env)
        missing = [name for name in REQUIRED_ENV if not env.get(name)]
        if missing:
            raise ConfigError(
                "missing environment variable(s): "
                + ", ".join(missing)
                + " (the platforms' app credentials; see the README)"
            )
        try:
            rate = float(env.get("SHOPLAZZA_RATE_PER_SECOND", "2"))
        except ValueError:
            raise ConfigError("SHOPLAZZA_RATE_PER_SECOND must be a number") from None
        return cls(
            db=db,
            tiktok_app_key=env["TIKTOK_APP_KEY"],
            tiktok_app_secret=env["TIKTOK_APP_SECRET"],
            shoplazza_client_secret=env["SHOPLAZZA_CLIENT_SECRET"],
            shoplazza_access_token=env.get("SHOPLAZZA_ACCESS_TOKEN", ""),
            tiktok_api_url=env.get("TIKTOK_API_URL", TIKTOK_API_URL),
            tiktok_auth_url=env.get("TIKTOK_AUTH_URL", TIKTOK_AUTH_URL),
            shoplazza_api_url=env.get("SHOPLAZZA_API_URL", ""),
            shoplazza_rate=rate,
            **overrides,
        )
