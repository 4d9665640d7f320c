"""TikTok Shop signatures (docs/platforms.md, "TikTok webhooks" and "Calling the API").

Webhooks (PLAT-1): the ``Authorization`` header is the lowercase hex
HMAC-SHA256, keyed with the app secret, of the app key followed by the raw
body. API calls (PLAT-4): the query parameters except ``sign`` and
``access_token``, sorted by key and joined as ``{key}{value}``, after the path
and before the raw body (unless multipart), wrapped in the app secret on both
sides, HMAC-SHA256 keyed with the app secret, lowercase hex.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

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


def sign_request(
    app_secret: str,
    path: str,
    query: Mapping[str, object],
    body: bytes = b"",
    *,
    multipart: bool = False,
) -> str:
    """The ``sign`` query parameter of an API call."""
    params = "".join(f"{key}{query[key]}" for key in sorted(query) if key not in EXCLUDED_FROM_SIGN)
    text = path.encode() + params.encode() + (b"" if multipart else body)
    wrapped = app_secret.encode() + text + app_secret.encode()
    return hmac.new(app_secret.encode(), wrapped, hashlib.sha256).hexdigest()
