"""Shoplazza webhook signatures (PLAT-2): ``X-Shoplazza-Hmac-Sha256`` is the
base64 of HMAC-SHA256 of the raw body, keyed with the app's client secret."""

from __future__ import annotations

import base64
import hashlib
import hmac


def webhook_signature(client_secret: str, body: bytes) -> str:
    digest = hmac.new(client_secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_webhook(client_secret: str, body: bytes, header: str | None) -> bool:
    if not header:
        return False
    expected = webhook_signature(client_secret, body)
    return hmac.compare_digest(expected.encode(), header.strip().encode())
