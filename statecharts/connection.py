"""Guards and actions of the shop_connection chart."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.charts.configuration import is_active
from engine.rules import Rules, StepContext
from statecharts import confirmations
from statecharts import payloads as p

US = "US"
AUTHORIZED = "authorized"  # the compound state of an authorized shop (CONN-4)
AUTHORIZED_IN_VERSION_1 = ("active", "expiring")  # flat, before `authorized` held them


def register(rules: Rules) -> None:
    rules.register_events(
        {
            "connection.start_setup": p.StartSetup,
            "connection.connect": None,
            "connection.choose_account_type": p.ChooseAccountType,
            "connection.accept_terms": p.AcceptTerms,
            "connection.authorized": p.Authorized,
            "connection.token_refreshed": p.TokenRefreshed,
            "connection.refresh_token_expired": p.Deauthorized,
            "connection.deauthorized": p.Deauthorized,
            "connection.authorization_expiring": p.AuthorizationExpiring,
            "connection.authorization_expired": None,
            "connection.app_uninstalled": p.Deauthorized,
            "connection.disconnected": p.Disconnect,
            "logistics.set_fulfillment_model": p.SetFulfillmentModel,
            "logistics.providers_listed": p.ProvidersListed,
            "logistics.map_carrier": p.MapCarrier,
            "logistics.unmap_carrier": p.UnmapCarrier,
            "products.add": p.AddProducts,
            "products.add_collection": p.AddCollection,
        }
    )
    confirmations.register(rules)
    rules.guard("store_in_us")(store_in_us)
    rules.guard("has_tiktok_shop_account")(has_tiktok_shop_account)
    rules.guard("terms_checked", refusal="TikTok's data-usage terms must be accepted to continue")(
        terms_checked
    )
    rules.guard("seller_base_region_us")(seller_base_region_us)
    rules.guard("sent_since_authorized")(sent_since_authorized)
    rules.guard(
        "refresh_outlasts_warning",
        refusal="the refreshed authorization still ends at the time TikTok warned of",
    )(refresh_outlasts_warning)
    rules.guard("fulfilled_by_seller")(fulfilled_by_seller)
    rules.guard("provider_listed")(provider_listed)
    rules.register_actions(
        record_store,
        record_account_type,
        record_terms,
        record_authorization,
        resume_held_work,
        request_token_refresh,
        record_token_refresh,
        record_expiry_warning,
        clear_expiry_warning,
        record_deauthorized,
        record_refresh_token_expired,
        record_authorization_expired,
        record_uninstalled,
        record_disconnected,
        record_fulfillment_model,
        record_shipping_providers,
        record_carrier_mapping,
        remove_carrier_mapping,
        add_products_to_sync,
        add_collection_to_sync,
    )


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z")


def is_authorized(state: str) -> bool:
    """A stored configuration of the chart in which outbound work goes out:
    ``authorized`` (``authorized.active`` or ``authorized.expiring``), or the
    same states of a shop still on version 1 of the chart, until migrated."""
    return is_active(state, AUTHORIZED) or state in AUTHORIZED_IN_VERSION_1


def hold_key(shop: str) -> str:
    """What outbound work of a shop is held under while its authorization is inactive."""
    return f"authorization:{shop}"


# ------------------------------------------------------------------ guards


def store_in_us(ctx: StepContext[p.StartSetup]) -> bool:
    country = ctx.payload.store_country.strip().upper()
    if country == US:
        return True
    return ctx.refuse(
        f"the TikTok Shop channel is available only to stores based in the United States; "
        f"this store is based in {country or 'an unknown country'} (CONN-1)"
    )


def has_tiktok_shop_account(ctx: StepContext[p.ChooseAccountType]) -> bool:
    if ctx.payload.has_tiktok_shop_account:
        return True
    return ctx.refuse(
        "no TikTok Shop account: create one in TikTok Shop Seller Center first, then connect again"
    )


def terms_checked(ctx: StepContext[p.AcceptTerms]) -> bool:
    return bool(ctx.payload.accepted)


def seller_base_region_us(ctx: StepContext[p.Authorized]) -> bool:
    region = ctx.payload.seller_base_region.strip().upper()
    if region == US:
        return True
    return ctx.refuse(
        f"the TikTok Shop is based in {region}; only US TikTok Shops can connect (CONN-1)"
    )


def sent_since_authorized(ctx: StepContext) -> bool:
    """TikTok's webhooks carry when they were sent (``occurred_at``)."""
    sent = ctx.event.occurred_at
    authorized_at = ctx.data.get("authorization", {}).get("authorized_at")
    if sent is None or authorized_at is None or sent >= authorized_at:
        return True
    return ctx.refuse(
        f"sent at {_iso(sent)}, before the shop was last authorized ({_iso(authorized_at)}):"
        " it was about the authorization that one replaced"
    )


def refresh_outlasts_warning(ctx: StepContext[p.TokenRefreshed]) -> bool:
    """Webhook 7 warned the authorization ends at ``expiration_time``; a refresh
    whose refresh token lives past it means it no longer does."""
    warned = ctx.data.get("expiry_warning", {}).get("expiration_time")
    renewed = ctx.payload.refresh_token_expire_in
    return warned is None or renewed > warned


def fulfilled_by_seller(ctx: StepContext) -> bool:
    model = ctx.data.get("logistics", {}).get("fulfillment_model")
    if model == "FBS":
        return True
    if model == "FBT":
        return ctx.refuse(
            "logistics mapping applies to Fulfilled by Seller shops only; "
            "this shop is Fulfilled by TikTok (LOGI-1)"
        )
    return ctx.refuse("choose Fulfilled by Seller (FBS) or by TikTok (FBT) first")


def provider_listed(ctx: StepContext[p.MapCarrier]) -> bool:
    provider = ctx.payload.shipping_provider_id
    listed = {sp["id"] for sp in ctx.data.get("logistics", {}).get("shipping_providers", [])}
    if provider in listed:
        return True
    return ctx.refuse(
        f"shipping provider {provider} is not in this shop's TikTok shipping provider list (LOGI-2)"
    )


# ------------------------------------------------------------------ actions


def record_store(ctx: StepContext[p.StartSetup]) -> None:
    payload = ctx.payload
    ctx.data["store"] = {"domain": payload.store_domain, "country": payload.store_country.upper()}


def record_account_type(ctx: StepContext[p.ChooseAccountType]) -> None:
    ctx.data["account_type"] = ctx.payload.account_type


def record_terms(ctx: StepContext) -> None:
    ctx.data["terms_accepted_at"] = ctx.now


def record_authorization(ctx: StepContext[p.Authorized]) -> None:
    payload = ctx.payload
    ctx.data.pop("ended", None)
    ctx.data["tiktok_shop"] = {
        "shop_id": payload.shop_id,
        "shop_cipher": payload.shop_cipher,
        "shop_name": payload.shop_name,
        "seller_base_region": payload.seller_base_region,
    }
    ctx.data["authorization"] = {
        "access_token_expire_in": payload.access_token_expire_in,
        "refresh_token_expire_in": payload.refresh_token_expire_in,
        "granted_scopes": payload.granted_scopes,
        "authorized_at": ctx.now,
    }
    ctx.data.pop("inactive_reason", None)
    ctx.data.pop("expiry_warning", None)


def resume_held_work(ctx: StepContext) -> None:
    """Authorized again: outbound work held while inactive goes out now, in its
    order, then the orders refused meanwhile are retried (CONN-4). Both are
    commands of the shop, so the release runs before the retries."""
    ctx.release_held(hold_key(ctx.event.entity))
    ctx.emit(
        "resume_refused_work",
        {"shop": ctx.event.entity, "shop_id": ctx.data["tiktok_shop"]["shop_id"]},
    )


def request_token_refresh(ctx: StepContext) -> None:
    """Refresh ahead of the absolute expiry time TikTok gave (CONN-5)."""
    ctx.emit(
        "refresh_access_token",
        {
            "shop": ctx.event.entity,
            "access_token_expire_in": ctx.data["authorization"]["access_token_expire_in"],
        },
    )


def record_token_refresh(ctx: StepContext[p.TokenRefreshed]) -> None:
    payload = ctx.payload
    authorization = ctx.data.setdefault("authorization", {})
    authorization["access_token_expire_in"] = payload.access_token_expire_in
    authorization["refresh_token_expire_in"] = payload.refresh_token_expire_in
    authorization["refreshed_at"] = ctx.now


def record_expiry_warning(ctx: StepContext[p.AuthorizationExpiring]) -> None:
    payload = ctx.payload
    ctx.data["expiry_warning"] = {
        "expiration_time": payload.expiration_time,
        "message": payload.message,
        "received_at": ctx.now,
    }


def clear_expiry_warning(ctx: StepContext) -> None:
    ctx.data.pop("expiry_warning", None)


def _go_inactive(ctx: StepContext, reason: str) -> None:
    ctx.data["inactive_reason"] = reason
    ctx.data["inactive_since"] = ctx.now


def record_deauthorized(ctx: StepContext) -> None:
    _go_inactive(ctx, "the seller deauthorized the app on TikTok Shop")


def record_refresh_token_expired(ctx: StepContext) -> None:
    _go_inactive(ctx, "the refresh token expired: authorize again")


def record_authorization_expired(ctx: StepContext) -> None:
    warning = ctx.data.pop("expiry_warning", {})
    _go_inactive(
        ctx,
        "the authorization expired at the time TikTok warned of"
        f" ({_iso(warning.get('expiration_time', ctx.now))}): authorize again",
    )


# What a connection keeps when it ends: the store, the TikTok shop it was (so
# the authorization gate still recognises and holds that shop's work), the
# logistics mapping and the collections added, which are the merchant's own
# settings. What it forgets is what setup must ask for again (CONN-2, CONN-6).
_FORGOTTEN_AT_END = (
    "account_type",
    "terms_accepted_at",
    "authorization",
    "expiry_warning",
    "inactive_reason",
    "inactive_since",
)


def _end_connection(ctx: StepContext, by: str, reason: str) -> None:
    for key in _FORGOTTEN_AT_END:
        ctx.data.pop(key, None)
    ctx.data["ended"] = {"by": by, "reason": reason, "at": ctx.now}


def record_uninstalled(ctx: StepContext) -> None:
    _end_connection(
        ctx,
        "uninstall",
        "the app was uninstalled from the Shoplazza store: set up the channel again,"
        " accepting TikTok's data-usage terms, to reconnect",
    )


def record_disconnected(ctx: StepContext[p.Disconnect]) -> None:
    payload = ctx.payload
    _end_connection(
        ctx,
        "merchant",
        payload.reason
        or "the merchant disconnected the TikTok Shop: set up the channel again to reconnect",
    )


def record_fulfillment_model(ctx: StepContext[p.SetFulfillmentModel]) -> None:
    """FBS shops map carriers to TikTok's providers, so fetch the provider list."""
    model = ctx.payload.fulfillment_model
    ctx.data.setdefault("logistics", {})["fulfillment_model"] = model
    if model == "FBS":
        ctx.emit("fetch_shipping_providers", {"shop": ctx.event.entity})


def record_shipping_providers(ctx: StepContext[p.ProvidersListed]) -> None:
    """Providers per delivery option (a package names one of its order's option),
    and their union, from which a carrier is mapped (LOGI-2)."""
    payload = ctx.payload
    logistics = ctx.data.setdefault("logistics", {})
    providers = [{"id": sp.id, "name": sp.name} for sp in payload.shipping_providers]
    if not payload.delivery_option_id:
        logistics["shipping_providers"] = providers
        return
    options = logistics.setdefault("delivery_options", {})
    options[payload.delivery_option_id] = {
        "name": payload.delivery_option_name,
        "shipping_providers": providers,
    }
    union = {sp["id"]: sp for o in options.values() for sp in o["shipping_providers"]}
    logistics["shipping_providers"] = list(union.values())


def record_carrier_mapping(ctx: StepContext[p.MapCarrier]) -> None:
    """Map a carrier, then retry the fulfillments that failed for want of it (LOGI-3)."""
    payload = ctx.payload
    logistics = ctx.data.setdefault("logistics", {})
    logistics.setdefault("carrier_mapping", {})[payload.tracking_company_code] = (
        payload.shipping_provider_id
    )
    ctx.emit(
        "retry_unmapped_fulfillments",
        {"shop": ctx.event.entity, "tracking_company_code": payload.tracking_company_code},
    )


def remove_carrier_mapping(ctx: StepContext[p.UnmapCarrier]) -> None:
    code = ctx.payload.tracking_company_code
    ctx.data.setdefault("logistics", {}).setdefault("carrier_mapping", {}).pop(code, None)


def _send_products(ctx: StepContext, products: list[p.ShoplazzaProduct]) -> None:
    store = ctx.event.entity_id
    for product in products:
        ctx.send(
            f"listing:{store}:{product.id}",
            "listing.added",
            {"shop": ctx.event.entity, "product": product.model_dump(mode="json")},
            suffix=f":{product.id}",
        )


def add_products_to_sync(ctx: StepContext[p.AddProducts]) -> None:
    _send_products(ctx, ctx.payload.products)


def add_collection_to_sync(ctx: StepContext[p.AddCollection]) -> None:
    """A collection adds the products it holds now; later additions are not followed (PROD-1)."""
    payload = ctx.payload
    collections = ctx.data.setdefault("collections_added", [])
    if payload.collection_id not in collections:
        collections.append(payload.collection_id)
    _send_products(ctx, payload.products)
