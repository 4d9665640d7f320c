"""Shoplazza: webhook verification."""

from adapters.shoplazza.signing import verify_webhook, webhook_signature

__all__ = ["verify_webhook", "webhook_signature"]
