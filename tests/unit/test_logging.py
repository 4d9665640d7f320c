"""Secrets and personal data never reach a log line."""

from __future__ import annotations

import io
import json

import structlog

from engine.logs import configure_logging


def test_tokens_secrets_and_addresses_are_redacted():
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    try:
        structlog.get_logger("t").info(
            "token refreshed",
            entity="shop:1",
            access_token="ROW_secret_token",
            payload={
                "app_secret": "s3cr3t",
                "recipient_address": {"name": "Ada"},
                "nested": [{"refresh_token": "r"}],
                "order_id": "576",
            },
            sign="abcdef",
        )
    finally:
        configure_logging("WARNING", json=True)
    line = stream.getvalue()
    record = json.loads(line)
    for secret in ("ROW_secret_token", "s3cr3t", "Ada", "abcdef"):
        assert secret not in line
    assert record["payload"]["order_id"] == "576"
    assert record["entity"] == "shop:1"
