"""Whatever a valid Shoplazza product and the merchant's attributes look like, the
adapter's create is one TikTok takes: the strict sandbox accepts it, and the
stored product says what the merchant sent (PROD-10, the acceptance criterion
"no outbound call is refused for a malformed request")."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.sandbox import story
from adapters.sandbox.images import SandboxCdn
from adapters.sandbox.story import Sandboxes, connect_shop
from adapters.tiktok_shop.commands import TikTokCommands
from engine.outbox import OutboxCommand
from statecharts.tiktok_request import listing_request

LISTING = f"listing:{story.STORE}:p"

prices = st.one_of(
    st.sampled_from(["0.01", "7600", "7600.00", "19.90", "1"]),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal(7600), places=2).map(str),
)
weights = st.tuples(
    st.one_of(
        st.sampled_from([0.001, 0.0001, 70.0]),
        st.floats(min_value=0.0001, max_value=5000, allow_nan=False, allow_infinity=False),
    ),
    st.sampled_from(["kg", "g", "lb", "oz"]),
)
stock = st.one_of(st.sampled_from([0, 99_999, 100_000, -3]), st.integers(0, 200_000))


@st.composite
def products(draw: st.DrawFn) -> dict:
    n_variants = draw(st.integers(1, 4))
    n_options = draw(st.integers(1 if n_variants > 1 else 0, 3))
    images = draw(st.lists(st.sampled_from(["jpg", "png", "webp", "gif"]), min_size=1, max_size=12))
    if all(kind == "gif" for kind in images):
        images.append("jpg")  # the local checks reject a product left with no image
    variants = []
    for n in range(n_variants):
        weight, unit = draw(weights)
        variants.append(
            {
                "id": f"v{n}",
                "sku": draw(st.sampled_from(["", f"SKU-{n}"])),
                "price": draw(prices),
                "inventory_quantity": draw(stock),
                "weight": weight,
                "weight_unit": unit,
                **{f"option{o + 1}": f"value {n}-{o}" for o in range(n_options)},
            }
        )
    title = draw(st.sampled_from(["Hat", "  Linen shirt  ", "x" * 255, "Straw sun hat ☀"]))
    return {
        "id": "p",
        "title": title,
        "description": draw(st.sampled_from(["", "<p>Nice</p>"])),
        "images": [{"src": f"https://img.myshoplaza.com/p/{i}.{k}"} for i, k in enumerate(images)],
        "variants": variants,
    }


attributes = st.fixed_dictionaries(
    {
        "package_dimensions": st.fixed_dictionaries(
            {
                "length": st.integers(1, 500),
                "width": st.integers(1, 500),
                "height": st.integers(1, 500),
                "unit": st.sampled_from(["CENTIMETER", "INCH"]),
            }
        )
    },
    optional={"category_id": st.sampled_from(["601226", "601741", "605196"])},
)


class ConnectedSandbox:
    """One connected shop on the strict sandboxes, on a loop of its own, for
    every example: starting and connecting a shop per example cost most of the
    property's time, and each create is a new product either way."""

    def __init__(self, folder: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.box = self.loop.run_until_complete(Sandboxes.start(folder / "p.db"))
        self.loop.run_until_complete(connect_shop(self.box))
        self.commands = TikTokCommands(self.box.service.tiktok, images=SandboxCdn().source())
        self.created = 0

    def create(self, product: dict, attrs: dict) -> tuple[dict, dict]:
        return self.loop.run_until_complete(self._create(product, attrs))

    async def _create(self, product: dict, attrs: dict) -> tuple[dict, dict]:
        request = listing_request(product, attrs, attrs.get("category_id"))
        payload = {"shop": story.SHOP, "listing": LISTING, "product": request}
        # TikTok answers a repeated idempotency key with the product made first.
        self.created += 1
        key = f"create-{self.created}"
        [event] = await self.commands.create_listing(
            OutboxCommand(1, LISTING, "create_listing", payload, key, 0)
        )
        stored = self.box.tiktok.products.get(event["payload"].get("product_id", ""), {})
        return event, stored

    def close(self) -> None:
        self.loop.run_until_complete(self.box.stop())
        self.loop.close()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ConnectedSandbox]:
    with tempfile.TemporaryDirectory() as folder:
        connected = ConnectedSandbox(Path(folder))
        try:
            yield connected
        finally:
            connected.close()


# Examples are cheap on one connected sandbox: many of them.
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(product=products(), attrs=attributes)
def test_prod10_every_valid_product_is_accepted_as_sent(
    sandbox: ConnectedSandbox, product: dict, attrs: dict
) -> None:
    event, stored = sandbox.create(product, attrs)
    assert event["type"] == "listing.submitted", event["payload"]
    assert len(stored["main_images"]) == min(
        9, sum(1 for i in product["images"] if "gif" not in i["src"])
    )
    assert len(stored["skus"]) == len(product["variants"])
    sent = {s["seller_sku"]: s for s in stored["skus"].values()}
    for variant in product["variants"]:
        sku = sent[variant["sku"] or variant["id"]]
        assert Decimal(sku["price"]["amount"]) == Decimal(variant["price"])
        assert sku["inventory"][0]["quantity"] == min(99_999, max(0, variant["inventory_quantity"]))
    weight_unit = {"CENTIMETER": "KILOGRAM", "INCH": "POUND"}[attrs["package_dimensions"]["unit"]]
    assert stored["package_weight"]["unit"] == weight_unit
    if "category_id" in attrs:
        assert stored["category_id"] == attrs["category_id"]
