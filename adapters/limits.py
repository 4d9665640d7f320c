"""What one HTTP client may take of a channelsync server (SEC-1).

Kept apart from the server (adapters.http_server) so the command line can show
the defaults without importing uvicorn. See docs/input-limits.md.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class HttpLimits:
    """What one client may take of the server. Sizes in bytes, times in seconds."""

    max_body: int = 1_000_000
    # Capped below RLIMIT_NOFILE at start (adapters.http_limits.connection_capacity).
    max_connections: int = 1000
    header_timeout: float = 10.0
    body_timeout: float = 20.0
    keep_alive: float = 5.0
    max_header_bytes: int = 65_536
    # Connections the kernel queues before they are accepted.
    backlog: int = 1024

    def __post_init__(self) -> None:
        bad = [f.name for f in fields(self) if not getattr(self, f.name) > 0]
        if bad:
            raise ValueError(f"HTTP limits must be positive: {', '.join(bad)}")
