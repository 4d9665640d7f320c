"""SEC-3: the vault's sealing, for all values, and redaction, for all trees."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.vault import (
    PERSONAL_KEYS,
    REDACTED,
    PersonalDataErased,
    Vault,
    VaultError,
    is_sealed,
    redact,
    redact_raw,
)

MARK = "ZZ-secret-7c1f"

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=8,
)
entities = st.text(min_size=1, max_size=40).map(lambda s: f"order:{s}")


@pytest.fixture(scope="module")
def vault():
    opened = Vault(":memory:")
    yield opened
    opened.close()


@settings(max_examples=80, deadline=None)
@given(entity=entities, other=entities, value=json_values)
def test_sec3_a_sealed_value_opens_only_for_its_own_entity_and_holds_no_plaintext(
    vault, entity, other, value
):
    """SEC-3: sealing round-trips every JSON value; it does not open under
    another entity, and its text never contains the plaintext's."""
    box = vault.seal(entity, "recipient_address", {"name": MARK, "v": value}, now=1.0)
    assert is_sealed(box) and MARK not in json.dumps(box)
    assert vault.open(entity, box) == {"name": MARK, "v": value}
    if other != entity:
        with pytest.raises(VaultError):
            vault.open(other, box)
    with pytest.raises(VaultError):
        vault.open(entity, {**box, "field": "buyer_email"})


def test_sec3_an_erased_entity_opens_nothing_and_seals_nothing(tmp_path):
    """SEC-3: after erasure the value is gone, and later personal data is dropped."""
    vault = Vault(str(tmp_path / "x.keys"))
    try:
        box = vault.seal("order:1", "buyer_email", MARK, now=1.0)
        assert vault.erase("order:1", reason="asked", requested_by="dpo", now=2.0) is True
        with pytest.raises(PersonalDataErased):
            vault.open("order:1", box)
        assert vault.open_or_none("order:1", box) is None
        assert vault.seal("order:1", "buyer_email", MARK, now=3.0) is None
        assert vault.erase("order:1", reason="again", requested_by="dpo", now=4.0) is False
        assert vault.erased_at("order:1") == 2.0
    finally:
        vault.close()


def _plant(tree, key):
    """``tree`` with a personal key holding the marker added at every dict."""
    if isinstance(tree, dict):
        return {**{k: _plant(v, key) for k, v in tree.items()}, key: {"name": MARK}}
    if isinstance(tree, list):
        return [_plant(v, key) for v in tree]
    return tree


@settings(max_examples=60, deadline=None)
@given(
    tree=st.dictionaries(st.text(max_size=8), json_values, max_size=5),
    key=st.sampled_from(sorted(PERSONAL_KEYS)),
)
def test_sec3_redaction_leaves_no_personal_value_and_no_sealed_value(vault, tree, key):
    """SEC-3: whatever the tree, redaction removes every personal key's value
    and every sealed value (`export --redact`, dead letters)."""
    planted = _plant(tree, key)
    planted["sealed_copy"] = vault.seal("order:r", "recipient_address", MARK, now=1.0)
    cleaned = redact(planted)
    text = json.dumps(cleaned)
    assert MARK not in text and '"sealed": "v1"' not in text
    assert cleaned[key] == REDACTED and cleaned["sealed_copy"] == REDACTED
    assert MARK not in redact_raw(json.dumps(planted))
