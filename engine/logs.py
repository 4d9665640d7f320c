"""structlog set-up: pretty on a terminal, JSON lines otherwise, secrets redacted.

Every log line of the engine goes through `redact_secrets`, so a token or a
buyer's address that ends up in an event payload or a command never reaches a
log sink, whatever the caller bound into the context; then through
`mask_sensitive_text`, which masks emails, phone numbers and long tokens in any
string, whatever its key (SEC-2, docs/logging.md).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog
from pydantic_core import from_json, to_json

from engine.scrub import mask
from engine.validation_errors import quotes_input

REDACTED = "[redacted]"

# Keys whose values are secrets or personal data. Matched case-insensitively
# against the whole key and as a substring for the broad ones.
_SECRET_SUBSTRINGS = (
    "token",
    "secret",
    "password",
    "signature",
    "authorization",
    "hmac",
    "auth_code",
    "nonce",
    "cookie",
    "credential",
    "email",
    "phone",
    "recipient",
    "buyer",
)
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


# structlog's own fields: never personal data, and the hottest strings.
_UNMASKED = frozenset({"timestamp", "level", "logger"})


def _mask_deep(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return mask(value)
    if depth > 8:
        return value
    if isinstance(value, Mapping):
        return {k: _mask_deep(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_deep(v, depth + 1) for v in value]
    return value


def mask_sensitive_text(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor, the last line of defence: emails, phone numbers and
    long tokens are masked in every string of the line (the message and a
    formatted exception included), under whatever key they travel."""
    for key, value in event_dict.items():
        if key in _UNMASKED:
            continue
        if isinstance(value, str):
            event_dict[key] = mask(value)
        elif isinstance(value, Mapping | list | tuple):
            event_dict[key] = _mask_deep(value)
    return event_dict


def error_fields(err: BaseException, text: str | None = None) -> dict[str, Any]:
    """What a log line says about an exception whose text may echo input (a
    platform's error message, a parser's complaint): its type, its code when it
    has one, and the length and a short digest of its text, never the text.
    The text itself stays where operators read it (the outbox's last error),
    and the digest ties the line to it: ``text`` is that stored text when it
    is not ``str(err)``."""
    text = str(err) if text is None else text
    fields: dict[str, Any] = {"error_type": type(err).__name__}
    code = getattr(err, "code", None)
    if isinstance(code, int | str) and not isinstance(code, bool):
        fields["error_code"] = code
    status = getattr(err, "status", None)
    if isinstance(status, int) and not isinstance(status, bool):
        fields["error_status"] = status
    fields["error_len"] = len(text)
    fields["error_digest"] = text_digest(text)
    return fields


def reason_fields(reason: str | None, payload_json: str) -> dict[str, Any]:
    """A failed step's reason, an exception's text from a chart's action or
    guard, for a log line: as it is unless it quotes the event's payload, else
    its length and digest (the event log keeps the text)."""
    text = reason or ""
    try:
        payload: Any = from_json(payload_json)
    except ValueError:
        payload = payload_json
    if quotes_input(text, payload):
        return {"reason_len": len(text), "reason_digest": text_digest(text)}
    return {"reason": text}


def text_digest(text: str) -> str:
    """A short digest that ties a log line to a stored text without carrying it."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


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
            # Formatted before the masking, so an exception's text is masked too.
            structlog.processors.format_exc_info,
            redact_secrets,
            mask_sensitive_text,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    # `transitions` logs every callback at INFO through the stdlib: keep it quiet.
    logging.getLogger("transitions").setLevel(logging.WARNING)
    # httpx logs each request's URL at INFO (TikTok's token calls carry the app
    # secret and the auth code in the query) and aiosqlite every statement with
    # its parameters at DEBUG: a host that turns the stdlib's level down must
    # not get them.
    for name in ("httpx", "httpcore", "aiosqlite"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Loggers outside structlog that print exceptions (uvicorn's traceback of a
    # route that raised, asyncio's of a task nobody awaited): their records
    # are masked as structlog's lines are. A filter on the logger survives
    # uvicorn re-applying its logging config, which replaces handlers only.
    for name in _STDLIB_EXCEPTION_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, MaskRecords) for f in logger.filters):
            logger.addFilter(MaskRecords())


_STDLIB_EXCEPTION_LOGGERS = ("uvicorn", "uvicorn.error", "asyncio")


class MaskRecords(logging.Filter):
    """Masks a stdlib record's message and exception text (`engine.scrub`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = mask(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        return True


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
