"""Masking text that looks like personal data or a secret, whatever its key.

The last line of defence of the log pipeline (docs/logging.md): the log call
sites are written not to log bodies, codes or tokens, and `engine.logs`
redacts values by their key; this masks what still slips through under an
innocent key (an exception's text, a platform's error message, a reason):

- an email address -> ``[email]``;
- a phone number: digit groups with separators or a leading ``+`` / ``(+1)``,
  7 to 15 digits in all -> ``[phone]``. A bare run of digits is left alone:
  platform ids are exactly that (TikTok's are 18-19 digits);
- a long token: a run of at least 24 letters, digits, ``_`` and ``-`` holding
  a stretch of 16 or more letters and digits that mixes both (a random
  token, a hex digest, base64) -> ``[token]``. Dashed UUIDs, ids and words are
  left alone, and so is the lowercase hex digest (32 or 64 characters) that
  follows a colon in this project's own event ids.

Names and street addresses have no shape a pattern can catch: they are kept
out of logs by the call sites and by key redaction, not here.
"""

from __future__ import annotations

import functools
import re

EMAIL = "[email]"
PHONE = "[phone]"
TOKEN = "[token]"

_EMAIL = r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+"
# A phone candidate starts at a digit, "+" or "(" that does not continue a word.
_PHONE = r"(?<![\w+\-.:/])(?:\+|\(\+?)?\d[\d\s().\-]{5,22}\d(?![\w])"
_TOKEN = r"(?<![\w\-])[A-Za-z0-9_\-]{24,}={0,2}(?![\w\-])"
_PATTERN = re.compile(f"(?P<email>{_EMAIL})|(?P<phone>{_PHONE})|(?P<token>{_TOKEN})")
# What a phone candidate must not be: a date, a time, a decimal number.
_NOT_PHONE = re.compile(r"\d{4}-\d{2}-\d{2}.*|\d+(?:\.\d+)?|\d{1,3}(?:\.\d{1,3}){3}")
_MIXED_STRETCH = re.compile(r"(?=[A-Za-z0-9]*\d)(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{16,}")
_LOWER_HEX = re.compile(r"[0-9a-f]+")
_LONG_RUN = re.compile(r"[A-Za-z0-9_\-]{24}")
_PHONE_SEPARATOR = re.compile(r"[\s+(.\-]")
_DROP_DIGITS = str.maketrans("", "", "0123456789")
# Cheap pre-checks: most log strings are short words and keys.
_MIN_LENGTH = 7
_CACHED_LENGTH = 256


def _replace(match: re.Match[str]) -> str:
    text = match.group()
    if match.group("email") is not None:
        return EMAIL
    if match.group("phone") is not None:
        return PHONE if _is_phone(text) else text
    if _is_id_digest(match):
        return text
    return TOKEN if _MIXED_STRETCH.search(text) else text


def _is_id_digest(match: re.Match[str]) -> bool:
    """A digest this project writes into its own ids (``tiktok:sha256:<hex>``,
    ``shoplazza:<hex>``, ``...:<uuid hex>``): lowercase hex right after a colon."""
    text, start = match.group(), match.start()
    return (
        len(text) in (32, 64)
        and start > 0
        and match.string[start - 1] == ":"
        and _LOWER_HEX.fullmatch(text) is not None
    )


def _is_phone(text: str) -> bool:
    stripped = text.strip()
    if _NOT_PHONE.fullmatch(stripped):
        return False
    digits = sum(ch.isdigit() for ch in stripped)
    return 7 <= digits <= 15


def mask(text: str) -> str:
    """``text`` with emails, phone numbers and long tokens replaced by markers."""
    if len(text) < _MIN_LENGTH:
        return text
    if len(text) <= _CACHED_LENGTH:
        return _mask_cached(text)
    return _mask(text)


@functools.lru_cache(maxsize=8192)
def _mask_cached(text: str) -> str:
    """Log lines repeat their strings (messages, states, command types, entity
    keys while an entity is busy): a cache hit costs a tenth of a scan."""
    return _mask(text)


def _mask(text: str) -> str:
    if not _may_hold_any(text):
        return text
    return _PATTERN.sub(_replace, text)


def _may_hold_any(text: str) -> bool:
    """Most strings cannot hold any of the three: no "@", shorter than a token,
    fewer than seven digits or digits with nothing that separates a phone's
    groups (an entity key, a command id). String methods say so at a fraction
    of the cost of the patterns."""
    if "@" in text:
        return True
    if len(text) >= 24 and _LONG_RUN.search(text) is not None:
        return True
    digits = len(text) - len(text.translate(_DROP_DIGITS))
    return digits >= 7 and _PHONE_SEPARATOR.search(text) is not None
