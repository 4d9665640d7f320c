"""The listing request's package weight, for every mix of Shoplazza units (PROD-10)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from statecharts.tiktok_request import listing_request, package_weight, quick_fields

KG_PER = {"kg": Decimal(1), "g": Decimal("0.001"), "lb": Decimal("0.45359237"), "oz": None}
KG_PER["oz"] = KG_PER["lb"] / 16
POUNDS_PER_KG = Decimal("2.20462262185")

variant = st.fixed_dictionaries(
    {
        "id": st.text("abc123", min_size=1, max_size=4),
        "weight": st.one_of(
            st.none(),
            st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(5000), places=6).map(str),
        ),
        "weight_unit": st.sampled_from(["kg", "g", "lb", "oz", "KG"]),
    }
)


@given(st.lists(variant, max_size=6), st.sampled_from([None, "CENTIMETER", "INCH"]))
def test_prod10_package_weight_is_never_lighter_than_the_heaviest_variant(variants, unit):
    """Whatever the units, the weight sent is in the dimensions' system, within
    TikTok's precision, positive, and not below the heaviest variant."""
    weight = package_weight(variants, unit)
    weighed = [
        Decimal(v["weight"]) * KG_PER[v["weight_unit"].lower()]
        for v in variants
        if v["weight"] is not None and Decimal(v["weight"]) > 0
    ]
    if not weighed:
        assert weight is None
        return
    assert weight is not None
    if unit:
        assert weight["unit"] == {"CENTIMETER": "KILOGRAM", "INCH": "POUND"}[unit]
    value = Decimal(weight["value"])
    assert value > 0
    places = -value.as_tuple().exponent
    assert places <= {"KILOGRAM": 3, "POUND": 2}[weight["unit"]]
    in_kg = value if weight["unit"] == "KILOGRAM" else value / POUNDS_PER_KG
    assert in_kg >= max(weighed) * Decimal("0.99999"), (in_kg, max(weighed))


def test_quick_fields_and_skus_share_the_seller_sku_key():
    product = {
        "id": "1",
        "title": "Hat",
        "images": [{"src": "a.jpg"}],
        "variants": [
            {"id": "v1", "sku": "HAT-1", "price": "9.90", "inventory_quantity": 3},
            {"id": "v2", "price": "8", "inventory_quantity": -2},
        ],
    }
    request = listing_request(product, {}, None)
    assert [s["seller_sku"] for s in request["skus"]] == ["HAT-1", "v2"]
    assert quick_fields(product)["prices"] == {"HAT-1": "9.90", "v2": "8"}
    assert quick_fields(product)["inventory"] == {"HAT-1": 3, "v2": 0}
    assert "package_dimensions" in request and request["package_dimensions"] is None
