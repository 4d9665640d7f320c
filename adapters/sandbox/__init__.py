"""Local stand-ins for TikTok Shop and Shoplazza, speaking their wire formats.

The adapters cannot tell them from the real platforms but for the base URL.
They run on loopback, take an injectable clock (ON_HOLD lasts an hour of it),
and can inject faults: dropped, duplicated and reordered webhooks, failed API
calls, rate limiting.
"""
