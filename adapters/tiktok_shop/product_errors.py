"""TikTok Shop's refusals of product calls, as the merchant reads them.

Each code TikTok answers a product call with (docs/tiktok-products.md lists
them, and which are TikTok's documented codes and which are chosen where the
docs give none) maps to a `ProductRefusal`: the field it is about, a sentence
for the Product Sync List, and what to do. A create or edit refused this way
becomes ``listing.submit_failed``; a price, stock or (de)activation refused
this way parks the command with the sentence as its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapters.tiktok_shop.client import PRODUCT_NOT_FOUND, TikTokError

INVALID_PARAMETER = 12052001
CATEGORY_NOT_LEAF = 12052007
CATEGORY_NOT_RECOMMENDED = 12052008
PACKAGE_WEIGHT_INVALID = 12052024
PACKAGE_DIMENSIONS_INVALID = 12052025
IMAGE_URI_UNKNOWN = 12052060
MAIN_IMAGES_COUNT = 12052061
TITLE_LENGTH = 12052080
PRICE_OUT_OF_RANGE = 12052090
STOCK_OUT_OF_RANGE = 12052091
TOO_MANY_SALES_ATTRIBUTES = 12052100
SKU_NOT_IN_PRODUCT = 12052230
IMAGE_FORMAT_UNSUPPORTED = 12019003
IMAGE_SIZE_OUT_OF_RANGE = 12019004


@dataclass(frozen=True)
class ProductRefusal:
    code: int | None  # None: the channel's own refusal, before TikTok was asked
    position: str
    reason: str
    suggestion: str = ""

    def as_audit_reason(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "reasons": [self.reason],
            "suggestions": [self.suggestion] if self.suggestion else [],
        }


_KNOWN: dict[int, tuple[str, str, str]] = {
    CATEGORY_NOT_LEAF: (
        "category_id",
        "TikTok Shop needs the product's most specific (leaf) category.",
        "Choose a leaf category for the product (products set --category).",
    ),
    CATEGORY_NOT_RECOMMENDED: (
        "category_id",
        "TikTok Shop could not suggest a category for this product.",
        "Choose the product's category yourself (products set --category).",
    ),
    PACKAGE_WEIGHT_INVALID: (
        "package_weight",
        "The package weight is missing or not in kilograms or pounds.",
        "Set each variant's weight in Shoplazza.",
    ),
    PACKAGE_DIMENSIONS_INVALID: (
        "package_dimensions",
        "The package size is missing, not in whole numbers, or not in the weight's units.",
        "Set the package length, width and height (products set --dimensions).",
    ),
    IMAGE_URI_UNKNOWN: (
        "main_images",
        "TikTok Shop does not know one of the product's images.",
        "Sync the product again so its images are uploaded first.",
    ),
    MAIN_IMAGES_COUNT: (
        "main_images",
        "A product needs between 1 and 9 images on TikTok Shop.",
        "Add a JPG, PNG or WEBP image in Shoplazza.",
    ),
    IMAGE_FORMAT_UNSUPPORTED: (
        "main_images",
        "One of the product's images is not a JPG, PNG or WEBP file.",
        "Replace GIFs and other formats with JPG, PNG or WEBP images.",
    ),
    IMAGE_SIZE_OUT_OF_RANGE: (
        "main_images",
        "One of the product's images is smaller than 300x300 or larger than 4000x4000 pixels,"
        " or over 5 MB.",
        "Use images between 300x300 and 4000x4000 pixels.",
    ),
    TITLE_LENGTH: (
        "title",
        "The title must be between 1 and 255 characters.",
        "Shorten or fill in the title in Shoplazza.",
    ),
    PRICE_OUT_OF_RANGE: (
        "price",
        "A price is outside what TikTok Shop allows (0.01 to 7,600 USD).",
        "Change the variant's price in Shoplazza.",
    ),
    STOCK_OUT_OF_RANGE: (
        "inventory",
        "A stock quantity is outside what TikTok Shop allows (up to 99,999 per warehouse).",
        "",
    ),
    TOO_MANY_SALES_ATTRIBUTES: (
        "sales_attributes",
        "TikTok Shop allows at most 3 kinds of variant options.",
        "Use at most three options (such as size and color) in Shoplazza.",
    ),
    SKU_NOT_IN_PRODUCT: (
        "skus",
        "A variant is not known to TikTok Shop under this product.",
        "Sync the product again so TikTok's variant ids are refreshed.",
    ),
    PRODUCT_NOT_FOUND: (
        "product",
        "TikTok Shop no longer has this product.",
        "Sync the product again to list it anew.",
    ),
    INVALID_PARAMETER: (
        "product",
        "TikTok Shop refused the product's details.",
        "",
    ),
}


class ProductRefused(Exception):
    """TikTok refused a product call and will refuse it again unchanged."""

    def __init__(self, refusal: ProductRefusal, detail: str = "") -> None:
        super().__init__(
            f"{refusal.reason} ({refusal.code}: {detail})" if detail else refusal.reason
        )
        self.refusal = refusal
        self.detail = detail


def refusal_for(error: TikTokError) -> ProductRefusal:
    """The merchant's reading of a refusal; an unknown code keeps TikTok's own words."""
    code = _int(error.code)
    known = _KNOWN.get(code) if code is not None else None
    if known is None:
        return ProductRefusal(code, "product", f"TikTok Shop refused the product: {error.message}")
    position, reason, suggestion = known
    return ProductRefusal(code, position, reason, suggestion)


NO_WAREHOUSE = ProductRefusal(
    None,
    "inventory",
    "The TikTok shop has no sales warehouse to hold the stock.",
    "Add a warehouse in TikTok Shop Seller Center.",
)


def image_unavailable(src: str) -> ProductRefusal:
    return ProductRefusal(
        None,
        "main_images",
        f"An image could not be downloaded from Shoplazza ({src}).",
        "Check the product's images in Shoplazza.",
    )


def _int(code: Any) -> int | None:
    try:
        return int(code)
    except (TypeError, ValueError):
        return None
