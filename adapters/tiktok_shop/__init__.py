"""TikTok Shop (US): webhook verification and API request signing."""

from adapters.tiktok_shop.signing import sign_request, verify_webhook, webhook_signature

__all__ = ["sign_request", "verify_webhook", "webhook_signature"]
