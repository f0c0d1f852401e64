"""The Shopify Admin API through ShopifyAPI (`import shopify`), every SDK call wrapped once:
OAuth for the public app, App Bridge session tokens, webhook registration, the shop, the
order's customer journey (GraphQL) and the order history for `touchpoint backfill`.

The SDK keeps its state on classes: `Session.setup(api_key=, secret=)` would set the app's
credentials for the whole process, so each call here uses a throwaway `Session` subclass that
carries them; `ShopifyResource.activate_session` is per thread, and `admin()` clears it after
each use, so nothing holds a shop's session between calls (or across a backfill's `yield`).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import shopify
from pyactiveresource import connection as http
from shopify import session_token
from shopify.session import ValidationException

from connectors.shopify.translate import WAS_PAID, WEBHOOK_TOPICS, url_query
from core.connectors import ConnectError, ConnectResult, Delivery, SourceContext
from core.events import Referral, Sale

log = logging.getLogger(__name__)

# The newest Admin API version ShopifyAPI 12.7 lists (`shopify.ApiVersion.define_known_versions`).
# Shopify serves a retired version as the oldest supported one ("falls forward"), so bump it
# with the SDK.
API_VERSION = "2024-10"
# The least the connector needs: orders, their refunds, and the order's customer journey all
# come under read_orders (the order's customer and email are "protected customer data", granted
# in the Partner Dashboard, not by a scope). Discount codes arrive on the order; read_discounts
# would only be needed to read price rules. Backfills older than 60 days need read_all_orders.
SCOPES = ("read_orders",)
TIMEOUT_SECONDS = 20
PAGE_SIZE = 250  # the REST maximum
JOURNEY_QUERY = """
query TouchpointJourney($id: ID!) {
  order(id: $id) {
    customerJourneySummary {
      ready
      firstVisit { ...visit }
      lastVisit { ...visit }
    }
  }
}
fragment visit on CustomerVisit {
  landingPage
  referralCode
  referrerUrl
  utmParameters { source medium campaign content term }
}"""


class SessionTokenInvalid(Exception):
    """An App Bridge session token failed verification (signature, expiry, aud, iss/dest)."""


# --- OAuth for the public app ---------------------------------------------------------------------

def _app_session(api_key: str | None, api_secret: str | None) -> type[shopify.Session]:
    """`shopify.Session` with the app's credentials on a subclass instead of the SDK's class."""
    return type("AppSession", (shopify.Session,), {"api_key": api_key, "secret": api_secret})


def oauth_permission_url(shop: str, api_key: str, api_secret: str,
                         scopes: tuple[str, ...] | list[str], redirect_uri: str,
                         state: str) -> str:
    """Shopify's grant screen for `shop` (offline access: no `grant_options[]=per-user`)."""
    return _app_session(api_key, api_secret)(shop, API_VERSION).create_permission_url(
        list(scopes), redirect_uri, state)


def validate_callback(params: dict[str, str], api_secret: str) -> bool:
    """The callback's `hmac` over its other parameters, and a `timestamp` under a day old (the
    SDK's rule against replays). The state nonce is the caller's to check."""
    try:
        return bool(_app_session(None, api_secret).validate_params(dict(params)))
    except (TypeError, ValueError):  # a timestamp that is not a number
        return False


def exchange_code(shop: str, params: dict[str, str], api_key: str, api_secret: str) -> str:
    """The shop's offline access token for the callback's `code` (the SDK checks the HMAC
    again first). ConnectError when Shopify refuses or the parameters are not genuine."""
    session = _app_session(api_key, api_secret)(shop, API_VERSION)
    try:
        return str(session.request_token(dict(params)))
    except ValidationException:
        raise ConnectError("the callback's HMAC or timestamp is not valid") from None
    except Exception as exc:  # urllib's HTTPError/URLError, or the SDK's bare Exception
        raise ConnectError(f"Shopify refused the authorization code: {exc}") from None


def decode_session_token(header_value: str, api_key: str, api_secret: str) -> dict[str, Any]:
    """The claims of `Authorization: Bearer <JWT>` from App Bridge, after the SDK checked the
    HS256 signature with the app secret, `aud` = the API key, `exp`/`nbf` (10 s leeway), that
    `iss` is a myshopify admin and `dest` the same shop. `dest` is the shop's URL."""
    if not isinstance(header_value, str):
        raise SessionTokenInvalid("no Authorization header")
    try:
        claims = session_token.decode_from_header(header_value, api_key, api_secret)
    except session_token.SessionTokenError as exc:
        raise SessionTokenInvalid(str(exc) or type(exc).__name__) from None
    if "exp" not in claims:  # the SDK requires iss/dest/sub/jti/sid but not an expiry
        raise SessionTokenInvalid("the token has no expiry")
    return dict(claims)


# --- the Admin API with a shop's token ------------------------------------------------------------

@contextmanager
def admin(shop: str, token: str) -> Iterator[None]:
    """The shop's session active on this thread for the block (not re-entrant)."""
    shopify.ShopifyResource.timeout = TIMEOUT_SECONDS
    shopify.ShopifyResource.activate_session(shopify.Session(shop, API_VERSION, token))
    try:
        yield
    finally:
        shopify.ShopifyResource.clear_session()


def _shop_and_token(source: SourceContext) -> tuple[str, str] | None:
    token = source.credentials.get("access_token")
    shop = source.account or source.credentials.get("shop")
    return (shop, token) if shop and token else None


def _reason(exc: Exception, shop: str) -> str:
    """A sentence the merchant can act on, for an Admin API failure."""
    if isinstance(exc, http.UnauthorizedAccess):
        return f"Shopify refused the access token for {shop} (revoked, or not this shop's)"
    if isinstance(exc, http.ForbiddenAccess):
        return f"the access token for {shop} lacks a scope; give the app {', '.join(SCOPES)}"
    if isinstance(exc, http.ResourceNotFound):
        return f"Shopify has no shop {shop}"
    return f"Shopify could not be reached for {shop}: {exc}"


def shop_details(shop: str, token: str) -> dict[str, Any]:
    """`GET shop.json`: name, currency (the shop's, in which orders are counted) and domain."""
    with admin(shop, token):
        current = shopify.Shop.current()
    return {"name": current.name, "currency": current.currency, "domain": current.domain}


def subscribe_webhooks(shop: str, token: str, address: str) -> list[int]:
    """One subscription per topic in WEBHOOK_TOPICS to `address`, reusing those that exist (so
    connecting again adds nothing). The compliance topics are not subscribable through the
    API: they are set in the Partner Dashboard (or `shopify.app.toml`)."""
    with admin(shop, token):
        existing = {w.topic: w.id for w in shopify.Webhook.find(address=address, limit=PAGE_SIZE)
                    if w.address == address}
        ids = []
        for topic in WEBHOOK_TOPICS:
            if topic in existing:
                ids.append(existing[topic])
                continue
            hook = shopify.Webhook.create({"topic": topic, "address": address, "format": "json"})
            if hook.errors.full_messages():
                raise ConnectError(f"Shopify refused the {topic} webhook to {address}: "
                                   f"{'; '.join(hook.errors.full_messages())}")
            ids.append(hook.id)
    return ids


def register_webhooks(source: SourceContext, address: str) -> list[int]:
    """The source's webhooks to `address`; ConnectError with the reason when Shopify refuses."""
    found = _shop_and_token(source)
    if found is None:
        raise ConnectError("an access_token is needed to register Shopify webhooks")
    if not address.startswith("https://"):
        raise ConnectError(f"Shopify delivers webhooks only to https addresses, not {address}; "
                           "set TOUCHPOINT_BASE_URL to Touchpoint's public https origin")
    try:
        return subscribe_webhooks(*found, address)
    except http.Error as exc:
        raise ConnectError(_reason(exc, found[0])) from None


def connect(source: SourceContext) -> ConnectResult:
    """`POST /api/v1/sources` for a custom app: check the token (`GET shop.json`), register the
    webhooks. Without a token the source only receives what the merchant set up by hand."""
    found = _shop_and_token(source)
    if found is None:
        return ConnectResult(account=source.account, actions=(
            "No access_token given: in the shop's admin (Settings > Notifications > Webhooks) "
            f"send {', '.join(WEBHOOK_TOPICS[:3])} as JSON to {source.webhook_url}, and give "
            "the signing key shown there as webhook_secret.",))
    shop, token = found
    try:
        details = shop_details(shop, token)
    except http.Error as exc:
        raise ConnectError(_reason(exc, shop)) from None
    ids = register_webhooks(source, source.webhook_url)
    return ConnectResult(
        account=shop, settings={"webhook_ids": ids, "currency": details["currency"]},
        actions=(f"Checked the access token of {details['name'] or shop} "
                 f"(orders counted in {details['currency']}).",
                 f"Registered the webhooks {', '.join(WEBHOOK_TOPICS)} to {source.webhook_url}."))


def disconnect(source: SourceContext) -> None:
    """Delete the webhooks `connect` registered. One already gone, or a token already revoked
    (the app was uninstalled: Shopify removed them itself), is not an error."""
    found = _shop_and_token(source)
    ids = list(source.settings.get("webhook_ids") or [])
    if found is None or not ids:
        return
    with admin(*found):
        for hook_id in ids:
            try:
                shopify.Webhook({"id": hook_id}).destroy()  # DELETE webhooks/<id>.json
            except (http.ResourceNotFound, http.UnauthorizedAccess):
                continue
            except http.Error as exc:
                raise ConnectError(f"could not remove webhook {hook_id}: "
                                   f"{_reason(exc, found[0])}") from None


# --- the customer journey -------------------------------------------------------------------------

def _graphql(query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """`shopify.GraphQL`'s request (its endpoint and token headers) sent through the SDK's
    connection: `GraphQL.execute` has no timeout and prints errors, and this runs while a
    webhook is being processed."""
    gql = shopify.GraphQL()
    body = json.dumps({"query": query, "variables": variables}).encode()
    headers = gql.merge_headers({"Accept": "application/json"}, gql.headers)
    response = shopify.ShopifyResource.connection.post(gql.endpoint, headers, body)
    return json.loads(response.body)  # type: ignore[no-any-return]


def visit_referral(visit: dict[str, Any] | None) -> Referral | None:
    """A visit's hints: `tp_click`/`ref`/`via` in its landing page, else Shopify's own
    `referralCode` (which it reads from `ref`, `source` or `r`; a value it took from `source`
    or `r` is ignored when the landing page shows that, since those keys carry campaign names)."""
    if not visit:
        return None
    query = url_query(visit.get("landingPage"))
    click = next(iter(query.get("tp_click") or []), None)
    ref = next(iter((query.get("ref") or []) + (query.get("via") or [])), None)
    code = visit.get("referralCode")
    if not ref and code and code not in (query.get("source") or []) + (query.get("r") or []):
        ref = code
    return Referral(click_id=click, ref=ref, evidence="customer_journey") if click or ref else None


def lookup_referral(source: SourceContext, sale: Sale) -> Referral | None:
    """For an order with no evidence of its own: the last, else the first, visit of the order's
    customer journey (Shopify's own tracking, so a store without the script still gets credit).

    Best effort: None without a token, when Shopify has not attributed the order yet
    (`ready: false`, common in the first seconds after payment), or on any API error (logged);
    a lookup never fails the delivery that asked for it."""
    found = _shop_and_token(source)
    if found is None:
        return None
    try:
        with admin(*found):
            answer = _graphql(JOURNEY_QUERY, {"id": f"gid://shopify/Order/{sale.order_id}"})
    except Exception:  # noqa: BLE001 - network, HTTP and JSON errors alike
        log.warning("customer journey of order %s on %s failed", sale.order_id, found[0],
                    exc_info=True)
        return None
    if answer.get("errors"):
        log.warning("customer journey of order %s on %s: %s", sale.order_id, found[0],
                    answer["errors"])
    summary = ((answer.get("data") or {}).get("order") or {}).get("customerJourneySummary") or {}
    for visit in (summary.get("lastVisit"), summary.get("firstVisit")):
        found_referral = visit_referral(visit)
        if found_referral is not None:
            return found_referral
    return None


# --- backfill -------------------------------------------------------------------------------------

def order_deliveries(order: dict[str, Any]) -> Iterator[Delivery]:
    """An order as the webhooks it would have sent, with ids stable across backfills: its
    payment (when it was paid), each refund (the REST order embeds them, shaped like a
    `refunds/create` body) and its cancellation (only for an order that was paid: an unpaid
    one has no conversion to reverse)."""
    paid = order.get("financial_status") in WAS_PAID
    if paid:
        yield _delivery(f"backfill:order:{order['id']}", "orders/paid", order)
    for refund in order.get("refunds") or []:
        yield _delivery(f"backfill:refund:{refund['id']}", "refunds/create", refund)
    if paid and order.get("cancelled_at"):
        yield _delivery(f"backfill:cancel:{order['id']}", "orders/cancelled", order)


def fetch_history(source: SourceContext, since: datetime) -> Iterator[Delivery]:
    """Orders updated since `since`, every status, a page of 250 at a time through the SDK's
    cursor pagination (`Link` headers). The shop's session is active only while a page is
    fetched: processing a delivery may call the API itself (the customer journey)."""
    found = _shop_and_token(source)
    if found is None:
        return
    page = None
    while True:
        with admin(*found):
            if page is None:
                page = shopify.Order.find(status="any", updated_at_min=since.isoformat(),
                                          limit=PAGE_SIZE)
            else:
                page = page.next_page(no_cache=True)
            orders = [_as_webhook_body(order) for order in page]
            more = page.has_next_page()
        for order in orders:
            yield from order_deliveries(order)
        if not more:
            return


def _as_webhook_body(order: shopify.Order) -> dict[str, Any]:
    """The order as plain JSON, as a webhook would carry it. pyactiveresource turns the nested
    refunds (and their transactions) into resources whose URL prefix is `/orders/<order_id>/`,
    which moves their `order_id` out of the attributes: it is put back."""
    data: dict[str, Any] = order.to_dict()
    for refund in data.get("refunds") or []:
        refund.setdefault("order_id", data["id"])
        for transaction in refund.get("transactions") or []:
            transaction.setdefault("order_id", data["id"])
    return data


def _delivery(key: str, topic: str, payload: dict[str, Any]) -> Delivery:
    return Delivery(delivery_id=key, topic=topic, payload=payload,
                    body=json.dumps(payload, sort_keys=True).encode())
