"""TikTok Shop signatures (docs/platforms.md, "TikTok webhooks" and "Calling the API").

Webhooks (PLAT-1): the ``Authorization`` header is the lowercase hex
HMAC-SHA256, keyed with the app secret, of the app key followed by the raw
body. API calls (PLAT-4): the query parameters except ``sign`` and
``access_token``, sorted by key and joined as ``{key}{value}``, after the path
and before the raw body (unless multipart), wrapped in the app secret on both
sides, HMAC-SHA256 keyed with the app secret, lowercase hex.

The query is turned into text once, by `encode_query`, and that same list of
pairs is both signed and sent (docs/platforms.md, "Signing = sending"): the signature
covers exactly the query TikTok receives.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

EXCLUDED_FROM_SIGN = frozenset({"sign", "access_token"})


def webhook_signature(app_key: str, app_secret: str, body: bytes) -> str:
    message = app_key.encode() + body
    return hmac.new(app_secret.encode(), message, hashlib.sha256).hexdigest()


def verify_webhook(app_key: str, app_secret: str, body: bytes, authorization: str | None) -> bool:
    """True only for the exact lowercase signature of these bytes (constant time)."""
    if not authorization:
        return False
    expected = webhook_signature(app_key, app_secret, body)
    return hmac.compare_digest(expected.encode(), authorization.strip().encode())


def encode_query(query: Mapping[str, object]) -> list[tuple[str, str]]:
    """The query as the (key, text) pairs sent, sorted by key.

    A string is sent as it is, an integer in decimal, a boolean as ``true`` or
    ``false``. Anything else is refused with a TypeError naming the key: None
    (absent and empty are different requests: leave the key out or send
    ``""``), lists (TikTok's recipe has one value per key), floats (their text
    is Python's, not TikTok's) and other objects."""
    pairs: list[tuple[str, str]] = []
    for key in sorted(query):
        if not isinstance(key, str):
            raise TypeError(f"query key {key!r} is a {type(key).__name__}, not a str")
        text = _text(key, query[key])
        for part in (key, text):
            try:
                part.encode()
            except UnicodeEncodeError:
                # A lone surrogate has no UTF-8: it could be neither signed nor sent.
                raise ValueError(f"query parameter {key!r} is not valid Unicode text") from None
        pairs.append((key, text))
    return pairs


def _text(key: str, value: object) -> str:
    if isinstance(value, bool):  # before int: True is an int too
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    raise TypeError(
        f"query parameter {key!r} is a {type(value).__name__}: a TikTok query value"
        " is a str, an int or a bool (leave a missing value out; put lists in the body)"
    )


def sign_encoded(
    app_secret: str,
    path: str,
    pairs: Sequence[tuple[str, str]],
    body: bytes = b"",
    *,
    multipart: bool = False,
) -> str:
    """The ``sign`` of a request whose query is exactly ``pairs`` (from `encode_query`)."""
    signed = sorted((key, text) for key, text in pairs if key not in EXCLUDED_FROM_SIGN)
    params = "".join(f"{key}{text}" for key, text in signed)
    message = path.encode() + params.encode() + (b"" if multipart else body)
    wrapped = app_secret.encode() + message + app_secret.encode()
    return hmac.new(app_secret.encode(), wrapped, hashlib.sha256).hexdigest()


def sign_request(
    app_secret: str,
    path: str,
    query: Mapping[str, object],
    body: bytes = b"",
    *,
    multipart: bool = False,
) -> str:
    """The ``sign`` query parameter of an API call whose query is ``query``."""
    return sign_encoded(app_secret, path, encode_query(query), body, multipart=multipart)
