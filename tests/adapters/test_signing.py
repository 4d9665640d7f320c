"""Platform signatures: PLAT-1, PLAT-2, PLAT-4."""

from __future__ import annotations

import base64
import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from adapters.shoplazza import signing as shoplazza
from adapters.tiktok_shop import sign_request, verify_webhook, webhook_signature

# The known-answer vector of TikTok's documentation (docs/platforms.md).
DOC_BODY = (
    b'{"type":1,"tts_notification_id":"7380066284010030890","shop_id":"7495540735365777507",'
    b'"timestamp":1718305585,"data":{"is_on_hold_order":true,"order_id":"576653688135258178",'
    b'"order_status":"UNPAID","update_time":1718305585}}'
)
DOC_SIGNATURE = "5dec0f11ec2f6783b8deee53c9ffbf8d024302f7c7e7fa55a35d17629031ac05"


def test_plat1_the_documented_webhook_vector_verifies():
    """PLAT-1: the docs' known answer (app key abcdef, secret 123)."""
    assert webhook_signature("abcdef", "123", DOC_BODY) == DOC_SIGNATURE
    assert verify_webhook("abcdef", "123", DOC_BODY, DOC_SIGNATURE)


def test_plat1_one_changed_byte_a_missing_or_uppercase_signature_fail():
    """PLAT-1: bad, missing or non-lowercase signatures are refused."""
    tampered = DOC_BODY.replace(b"UNPAID", b"UNPAIE")
    assert not verify_webhook("abcdef", "123", tampered, DOC_SIGNATURE)
    assert not verify_webhook("abcdef", "123", DOC_BODY, None)
    assert not verify_webhook("abcdef", "123", DOC_BODY, "")
    assert not verify_webhook("abcdef", "123", DOC_BODY, DOC_SIGNATURE.upper())
    assert not verify_webhook("abcdef", "124", DOC_BODY, DOC_SIGNATURE)


@given(st.binary(max_size=300), st.integers(0, 299), st.integers(1, 255))
def test_plat1_property_any_byte_flip_breaks_the_signature(body, position, flip):
    """PLAT-1: for any body, changing any one byte makes the signature fail."""
    signature = webhook_signature("key", "secret", body)
    assert verify_webhook("key", "secret", body, signature)
    if body:
        index = position % len(body)
        changed = body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :]
        assert not verify_webhook("key", "secret", changed, signature)


def independent_sign(secret: str, path: str, query: dict, body: bytes) -> str:
    """The recipe of docs/platforms.md, written out a second time, step by step."""
    keys = [k for k in query if k not in ("sign", "access_token")]
    keys.sort()
    s = path
    for key in keys:
        s += key + str(query[key])
    s = s.encode() + body
    s = secret.encode() + s + secret.encode()
    return hmac.new(secret.encode(), s, hashlib.sha256).hexdigest()


def test_plat4_api_requests_are_signed_as_tiktok_specifies():
    """PLAT-4: sorted params without sign/access_token, path first, body last, wrapped."""
    query = {
        "timestamp": 1718305585,
        "app_key": "abcdef",
        "shop_cipher": "GCP_XF90",
        "access_token": "ROW_x",
        "sign": "old",
    }
    body = b'{"page_size":20}'
    signature = sign_request("123", "/order/202309/orders/search", query, body)
    assert signature == independent_sign("123", "/order/202309/orders/search", query, body)
    assert signature == signature.lower() and len(signature) == 64
    unsigned = {k: v for k, v in query.items() if k not in ("access_token", "sign")}
    assert signature == sign_request("123", "/order/202309/orders/search", unsigned, body)
    assert sign_request("123", "/p", query, body, multipart=True) == sign_request(
        "123", "/p", query
    )


@given(
    st.dictionaries(st.text("abcdefgh_", min_size=1, max_size=8), st.text(max_size=10), max_size=6),
    st.binary(max_size=64),
)
def test_plat4_property_signature_ignores_parameter_order(query, body):
    """PLAT-4: the signature depends on the parameters, never on their order."""
    reversed_query = dict(reversed(list(query.items())))
    assert sign_request("s", "/x", query, body) == sign_request("s", "/x", reversed_query, body)


def test_plat2_shoplazza_webhooks_are_base64_hmac_of_the_body():
    """PLAT-2: X-Shoplazza-Hmac-Sha256 is the base64 HMAC-SHA256 of the raw body."""
    body = b'{"id":"1001","financial_status":"paid"}'
    expected = base64.b64encode(hmac.new(b"client-secret", body, hashlib.sha256).digest()).decode()
    assert shoplazza.webhook_signature("client-secret", body) == expected
    assert shoplazza.verify_webhook("client-secret", body, expected)
    assert not shoplazza.verify_webhook("client-secret", body + b" ", expected)
    assert not shoplazza.verify_webhook("client-secret", body, None)
    assert not shoplazza.verify_webhook("other", body, expected)
