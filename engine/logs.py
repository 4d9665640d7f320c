"""structlog set-up: pretty on a terminal, JSON lines otherwise, secrets redacted.

Every log line of the engine goes through `redact_secrets`, so a token or a
buyer's address that ends up in an event payload or a command never reaches a
log sink, whatever the caller bound into the context.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog
from pydantic_core import to_json

REDACTED = "[redacted]"

# Keys whose values are secrets or personal data. Matched case-insensitively
# against the whole key and as a substring for the broad ones.
_SECRET_SUBSTRINGS = ("token", "secret", "password", "signature", "authorization", "hmac")
_SECRET_KEYS = frozenset(
    {
        "sign",
        "auth_code",
        "app_secret",
        "client_secret",
        "recipient_address",
        "buyer_email",
        "email",
        "phone",
        "phone_number",
        "address",
        "address1",
        "address2",
        "address_line1",
        "address_line2",
        "postal_code",
        "zip",
        "name_of_recipient",
        "first_name",
        "last_name",
        "full_address",
    }
)


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Cached: log keys come from a small vocabulary, and this runs per key per line."""
    lowered = key.lower()
    return lowered in _SECRET_KEYS or any(part in lowered for part in _SECRET_SUBSTRINGS)


def _scrub(value: Any, depth: int = 0) -> Any:
    if depth > 8:
        return value
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and is_secret_key(k) else _scrub(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v, depth + 1) for v in value]
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: replace secret and personal values by a marker."""
    for key in list(event_dict):
        if key == "event":
            continue
        if is_secret_key(key):
            event_dict[key] = REDACTED
        else:
            value = event_dict[key]
            if isinstance(value, Mapping | list | tuple):
                event_dict[key] = _scrub(value)
    return event_dict


def _json_line(value: Any, **_options: Any) -> str:
    """JSON for a log line; pydantic_core's encoder is several times faster than json's."""
    return to_json(value, fallback=str).decode()


class _Stderr:
    """Whatever ``sys.stderr`` is at the moment of writing (a test runner swaps it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure_logging(level: str = "INFO", json: bool | None = None, stream: Any = None) -> None:
    """Configure structlog for the process (to standard error by default).

    `json=None` picks pretty console output on a terminal and JSON lines otherwise.
    """
    stream = stream or _Stderr()
    if json is None:
        json = not (hasattr(stream, "isatty") and stream.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json_line)
        if json
        else structlog.dev.ConsoleRenderer(colors=hasattr(stream, "isatty") and stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    # `transitions` logs every callback at INFO through the stdlib: keep it quiet.
    logging.getLogger("transitions").setLevel(logging.WARNING)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
