"""Typed payloads of the channel's events.

Field names follow the platforms (docs/platforms.md) where the data comes from them.
TikTok ids are kept as strings, whatever JSON type they arrived as (PLAT-6):
`TikTokId` accepts an integer and turns it into its exact decimal text.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from engine.events import Payload
from engine.vault import PERSONAL

# A buyer's personal data (SEC-3): sealed by the engine before the event is
# written, so the log holds the sealed form (a dict) where the platform sent
# text; a redacted export holds a marker (text) where TikTok sent a record.
Personal = Annotated[dict[str, Any] | str | None, PERSONAL]


def _exact_id(value: Any) -> Any:
    if type(value) is str:  # nearly every id: one test, not three
        return value
    return _id_text(value)


def _id_text(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("an id cannot be a boolean")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise ValueError("a TikTok id must not pass through a float (precision is lost)")
    return value


# The length constraints come first so pydantic checks them in its core, under
# the conversion (after it, they would run as Python functions).
TikTokId = Annotated[str, Field(min_length=1, max_length=64), BeforeValidator(_exact_id)]
# An id field TikTok may leave empty (a line item's sku_id, for one).
OptionalTikTokId = Annotated[str, Field(max_length=64), BeforeValidator(_exact_id)]


# ---------------------------------------------------------------- connection


class StartSetup(Payload):
    store_domain: str
    store_country: str = Field(description="ISO country code of the Shoplazza store.")


class ChooseAccountType(Payload):
    account_type: str = Field(description="e.g. seller or creator, as TikTok's pop-up offers.")
    has_tiktok_shop_account: bool = True


class AcceptTerms(Payload):
    accepted: bool = True


class Authorized(Payload):
    """The result of the OAuth code exchange. The tokens themselves stay with
    the adapter's credential store: only their expiry times enter the log."""

    shop_id: TikTokId
    shop_cipher: str = ""
    shop_name: str = ""
    seller_base_region: str
    access_token_expire_in: int = Field(description="Absolute unix time (CONN-5).")
    refresh_token_expire_in: int
    granted_scopes: list[str] = Field(default_factory=list)


class TokenRefreshed(Payload):
    access_token_expire_in: int
    refresh_token_expire_in: int


class Deauthorized(Payload):
    message: str = ""
    reason: str = "seller deauthorized the app"


class Disconnect(Payload):
    """The merchant's Disconnect button (CONN-6)."""

    reason: str = ""


class AuthorizationExpiring(Payload):
    message: str = ""
    expiration_time: int


class SetFulfillmentModel(Payload):
    fulfillment_model: str = Field(pattern="^(FBS|FBT)$")


class ShippingProvider(Payload):
    id: TikTokId
    name: str


class ProvidersListed(Payload):
    """The shipping providers TikTok lists for one delivery option."""

    delivery_option_id: str = ""
    delivery_option_name: str = ""
    shipping_providers: list[ShippingProvider]


class MapCarrier(Payload):
    tracking_company_code: str = Field(min_length=1)
    shipping_provider_id: TikTokId


class UnmapCarrier(Payload):
    tracking_company_code: str


def _shoplazza_id(value: Any) -> Any:
    """Shoplazza ids are strings; an integer is taken as its decimal text."""
    if isinstance(value, bool):
        raise ValueError("an id cannot be a boolean")
    if isinstance(value, int):
        return str(value)
    return value


ShoplazzaId = Annotated[str, Field(min_length=1, max_length=64), BeforeValidator(_shoplazza_id)]


class ShoplazzaImage(Payload):
    src: str
    width: int | None = None
    height: int | None = None


class ShoplazzaVariant(Payload):
    id: ShoplazzaId
    sku: str = ""
    price: str | float | int = "0"
    inventory_quantity: int = 0
    weight: float | None = None
    weight_unit: str = "kg"
    option1: str | None = None
    option2: str | None = None
    option3: str | None = None


class ShoplazzaProduct(Payload):
    """A Shoplazza product as its OpenAPI returns it. Only Shoplazza's own
    fields are kept on the listing (see statecharts.shoplazza_product): what
    TikTok alone needs comes from the merchant (`listing.attributes_set`)."""

    id: ShoplazzaId
    title: str = ""
    description: str = ""
    published: bool = True
    images: list[ShoplazzaImage] = Field(default_factory=list)
    variants: list[ShoplazzaVariant] = Field(default_factory=list)
    collection_ids: list[str] = Field(default_factory=list)
    updated_at: str | None = None


class VariantChange(Payload):
    """A variant in a products/update webhook: a field left out (or null) keeps
    its stored value."""

    id: ShoplazzaId
    sku: str | None = None
    price: str | float | int | None = None
    inventory_quantity: int | None = None
    weight: float | None = None
    weight_unit: str | None = None
    option1: str | None = None
    option2: str | None = None
    option3: str | None = None


class ProductChange(Payload):
    """A products/update webhook's product. Every field but the id may be left
    out; null stands for "not sent" (the log keeps payloads with their
    defaults, so "absent" must survive a JSON round trip to replay the same)."""

    id: ShoplazzaId
    title: str | None = None
    description: str | None = None
    published: bool | None = None
    images: list[ShoplazzaImage] | None = None
    variants: list[VariantChange] | None = None
    collection_ids: list[str] | None = None
    updated_at: str | None = None


PositiveSide = Annotated[int, Field(gt=0, le=100_000, strict=True)]


class PackageDimensions(Payload):
    """The package size TikTok asks for: whole, positive numbers in one unit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    length: PositiveSide
    width: PositiveSide
    height: PositiveSide
    unit: Literal["CENTIMETER", "INCH"] = "CENTIMETER"


class SizeChart(Payload):
    model_config = ConfigDict(extra="forbid", frozen=True)

    image_uri: str = Field(min_length=1, max_length=1024)


class Certification(Payload):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64)
    images: list[Annotated[str, Field(min_length=1, max_length=1024)]] = Field(default_factory=list)


class AttributesSet(Payload):
    """The TikTok-only attributes a merchant supplies (PROD-10). Each key is
    optional: a key left out keeps its value, a key given as null clears it.
    Only the keys given are serialized, so the log replays the same."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    category_id: Annotated[str, Field(pattern=r"^[0-9]{1,20}$")] | None = None
    package_dimensions: PackageDimensions | None = None
    size_chart: SizeChart | None = None
    certifications: Annotated[list[Certification], Field(max_length=10)] | None = None

    @model_serializer(mode="wrap")
    def _only_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped = handler(self)
        return {key: value for key, value in dumped.items() if key in self.model_fields_set}

    def changes(self) -> dict[str, Any]:
        """{key: new value, or None to clear} for each key the merchant gave."""
        return self.model_dump(mode="json")


class AddProducts(Payload):
    products: list[ShoplazzaProduct] = Field(min_length=1)


class AddCollection(Payload):
    collection_id: str
    products: list[ShoplazzaProduct] = Field(
        description="The products the collection holds at the moment it is added (PROD-1)."
    )


# ---------------------------------------------------------------- listing


class ListingAdded(Payload):
    shop: str
    product: ShoplazzaProduct


class ProductUpdated(Payload):
    product: ProductChange


class ProductRemoved(Payload):
    reason: str = Field(pattern="^(deleted|unpublished)$")


class SubmittedSku(Payload):
    """A SKU as TikTok's create/edit answer names it: price and stock updates need its id."""

    id: TikTokId
    seller_sku: str = ""


class Submitted(Payload):
    product_id: TikTokId
    category_id: str | None = None
    skus: list[SubmittedSku] = Field(default_factory=list)


class AuditFailedReason(Payload):
    position: str = ""
    reasons: list[str] = Field(default_factory=list)
    suggestions: list[str] = Field(default_factory=list)


class SubmitFailed(Payload):
    code: int | None = None
    message: str
    audit_failed_reasons: list[AuditFailedReason] = Field(default_factory=list)


class ReviewResult(Payload):
    """TikTok's product status, fetched after webhook 5/37 or by the review poll."""

    status: str
    audit_failed_reasons: list[AuditFailedReason] = Field(default_factory=list)
    update_time: int | None = None


class CategoryChanged(Payload):
    """Webhook 18: the product's category was changed on TikTok (PROD-7)."""

    category_id: TikTokId = Field(description="TikTok's current_category_id.")
    previous_category_id: str | None = None
    change_source: str = "SELLER_CENTER"
    update_time: int | None = None


class Resubmit(Payload):
    pass


class Reactivate(Payload):
    """The merchant asks for a product deactivated on TikTok to sell again."""


# ---------------------------------------------------------------- order


ORDER_STATUSES = (
    "UNPAID",
    "ON_HOLD",
    "AWAITING_SHIPMENT",
    "PARTIALLY_SHIPPING",
    "AWAITING_COLLECTION",
    "IN_TRANSIT",
    "DELIVERED",
    "COMPLETED",
    "CANCELLED",
)
_KNOWN_STATUSES = frozenset(ORDER_STATUSES)
# Pre-202309 numeric codes (seen in SDKs) and the webhook docs' CANCEL spelling.
_STATUS_ALIASES = {
    "100": "UNPAID",
    "105": "ON_HOLD",
    "111": "AWAITING_SHIPMENT",
    "112": "AWAITING_COLLECTION",
    "114": "PARTIALLY_SHIPPING",
    "121": "IN_TRANSIT",
    "122": "DELIVERED",
    "130": "COMPLETED",
    "140": "CANCELLED",
    "CANCEL": "CANCELLED",
}


def _order_status(value: Any) -> str:
    if type(value) is str and value in _KNOWN_STATUSES:
        return value  # what `_status_named` returns for it, for less
    return _status_named(value)


def _status_named(value: Any) -> str:
    text = str(value).strip().upper()
    text = _STATUS_ALIASES.get(text, text)
    if text not in ORDER_STATUSES:
        raise ValueError(f"unknown TikTok order status {value!r}")
    return text


class OrderStatusChanged(Payload):
    order_id: TikTokId
    shop_id: TikTokId | None = None
    order_status: Annotated[str, BeforeValidator(_order_status)]
    update_time: int
    is_on_hold_order: bool = False


class LineItem(Payload):
    id: OptionalTikTokId = ""
    product_id: TikTokId
    sku_id: OptionalTikTokId = ""
    seller_sku: str = ""
    product_name: str = ""
    quantity: int = 1
    sale_price: str = "0"
    delivery_option_id: str = ""


class OrderDetail(Payload):
    """Get Order Detail's answer. ``recipient_address`` may be present; the chart
    drops it unless the order may show it (ORD-5). The buyer's fields are
    sealed per order before the event is written (SEC-3)."""

    id: TikTokId
    status: str
    create_time: int
    update_time: int
    fulfillment_type: str = "FULFILLMENT_BY_SELLER"
    delivery_option_id: str = Field(
        "", description="The delivery option the order's products use: its providers ship it."
    )
    delivery_option_name: str = ""
    line_items: list[LineItem] = Field(default_factory=list)
    payment: dict[str, Any] = Field(default_factory=dict)
    recipient_address: Personal = None
    buyer_email: Personal = None
    buyer_message: Personal = None
    cpf: Personal = None
    cpf_name: Personal = None


class ProductsResolved(Payload):
    """What the order resolver found for the order's line items."""

    authorization_active: bool
    unsynced: list[str] = Field(default_factory=list)
    unavailable: list[str] = Field(default_factory=list)
    shoplazza_line_items: list[dict[str, Any]] = Field(default_factory=list)


class ShoplazzaLineItem(Payload):
    id: str
    variant_id: str | None = None


class ShoplazzaOrderCreated(Payload):
    """Shoplazza's answer to the create: its id, time, statuses and line item ids."""

    shoplazza_order_id: str
    created_at: str | int | float
    status: str | None = None
    financial_status: str | None = None
    fulfillment_status: str | None = None
    line_items: list[ShoplazzaLineItem] = Field(default_factory=list)


class SyncFailed(Payload):
    reason: str


class ShoplazzaFulfilled(Payload):
    tracking_number: str
    tracking_company_code: str
    tracking_company: str = ""
    line_item_ids: list[str] = Field(default_factory=list)


class CarrierResolved(Payload):
    purpose: str = Field("ship", pattern="^(ship|correction)$")
    tracking_number: str = ""
    tracking_company_code: str
    fulfillment_model: str | None = None
    shipping_provider_id: TikTokId | None = None
    authorization_active: bool = True
    delivery_option_id: str = ""
    not_offered: str | None = Field(
        None, description="Why the mapped provider cannot ship this order's delivery option."
    )


class ShippingPushed(Payload):
    purpose: str = Field("ship", pattern="^(ship|correction)$")
    package_id: TikTokId | None = None


class ShippingPushFailed(Payload):
    purpose: str = Field("ship", pattern="^(ship|correction)$")
    code: int | None = None
    message: str


class ShoplazzaOrderChanged(Payload):
    """A change made in Shoplazza: payment status, cancel, refund or return (ORD-7)."""

    financial_status: str | None = None
    status: str | None = None
    fulfillment_status: str | None = None


class TikTokReturnChanged(Payload):
    return_id: str = ""
    return_type: str = ""
    return_status: str = ""
    cancel_status: str = ""
    update_time: int | None = None


class Nudge(Payload):
    """A merchant's or an operator's "try again"."""
