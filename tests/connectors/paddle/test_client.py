"""connectors.paddle.client: the SDK's own code runs against a fake Paddle API (`responses`).

List pages carry the published samples (edited in code where the API's shape differs from a
notification's: `tax_rates_used` is a list, a discount has `times_used`). Error bodies and the
notification-setting object have no published sample; they are built from the fields the SDK reads.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import responses
from responses import matchers

from connectors.paddle import client
from connectors.paddle.constants import SUBSCRIBED_EVENTS
from connectors.paddle.translate import translate
from core.connectors import ConnectError, Delivery, SourceContext
from core.events import Referral, Refund, Sale
from core.money import Money
from tests.conftest import fixture_json

API = "https://api.paddle.com"
SANDBOX_API = "https://sandbox-api.paddle.com"
KEY = "pdl_live_apikey_01abc_secretpart"
WEBHOOK_URL = "https://touchpoint.test/webhooks/paddle/src_1"
SINCE = datetime(2024, 1, 1, tzinfo=timezone.utc)
DISCOUNT_ID = "dsc_01hv6scyf7qdnzcdq01t2y8dx4"


def source(secret: str | None = "pdl_ntfset_x", settings: dict[str, Any] | None = None,
           **credentials: str) -> SourceContext:
    creds = {"api_key": KEY, **credentials}
    return SourceContext(id="src_1", program_id="prg_1", platform="paddle", webhook_secret=secret,
                         credentials={k: v for k, v in creds.items() if v},
                         settings=settings or {}, webhook_url=WEBHOOK_URL)


def page(items: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    return {"data": items, "meta": {"request_id": "req_1", "pagination": {
        "per_page": 50, "next": next_url, "has_more": next_url is not None,
        "estimated_total": len(items)}}}


def error(code: str, detail: str) -> dict[str, Any]:
    return {"error": {"type": "request_error", "code": code, "detail": detail,
                      "documentation_url": f"https://developer.paddle.com/errors/shared/{code}"},
            "meta": {"request_id": "req_err"}}


def query(call: Any) -> dict[str, list[str]]:
    return parse_qs(urlparse(call.request.url).query)


# --- fetch_history --------------------------------------------------------------------------------

def transactions() -> tuple[dict[str, Any], dict[str, Any]]:
    completed = fixture_json("paddle", "transaction.completed.data.json")
    paid = fixture_json("paddle", "transaction.paid.data.json")
    paid["id"] = "txn_01second"  # another transaction, still only paid
    return completed, paid


def adjustments() -> tuple[dict[str, Any], dict[str, Any]]:
    recent = fixture_json("paddle", "adjustment.updated.data.json")
    recent.update(status="approved", tax_rates_used=[])
    old = fixture_json("paddle", "adjustment.created.data.json")
    old.update(id="adj_01old", status="approved", tax_rates_used=[],
               created_at="2023-06-01T00:00:00.000000Z", updated_at="2023-06-01T00:00:00.000000Z")
    return recent, old


def fake_history(rsps: responses.RequestsMock) -> None:
    completed, paid = transactions()
    second_page = f"{API}/transactions?after={completed['id']}&status=completed%2Cpaid"
    rsps.get(f"{API}/transactions", json=page([completed], second_page),
             match=[matchers.query_param_matcher({"status": "completed,paid"}, strict_match=False)])
    rsps.get(second_page, json=page([paid]),
             match=[matchers.query_param_matcher({"after": completed["id"]}, strict_match=False)])
    recent, old = adjustments()
    rsps.get(f"{API}/adjustments", json=page([old, recent]))


@responses.activate
def test_fetch_history_follows_pages_and_yields_notification_shaped_deliveries():
    fake_history(responses.mock)
    deliveries = list(client.fetch_history(source(), SINCE))

    assert [(d.delivery_id, d.topic) for d in deliveries] == [
        ("backfill:txn_01hv8wptq8987qeep44cyrewp9:completed", "transaction.completed"),
        ("backfill:txn_01second:paid", "transaction.paid"),
        ("backfill:adj_01hvgf2s84dr6reszzg29zbvcm:approved", "adjustment.updated"),
    ]  # the adjustment approved before `since` is left out
    completed, paid = transactions()
    assert deliveries[0].payload["data"] == completed  # the API's JSON, untouched
    assert deliveries[1].payload["data"] == paid
    for delivery in deliveries:
        assert delivery.payload["event_id"] == delivery.delivery_id
        assert delivery.payload["event_type"] == delivery.topic
        assert json.loads(delivery.body) == delivery.payload
        assert delivery.occurred_at is not None and delivery.occurred_at.tzinfo is not None

    calls = [c.request for c in responses.calls]
    assert len(calls) == 3  # two transaction pages, one adjustment page
    first = query(responses.calls[0])
    assert first["status"] == ["completed,paid"]
    assert first["updated_at[GTE]"] == ["2024-01-01T00:00:00.000000Z"]
    assert query(responses.calls[2])["status"] == ["approved"]
    assert all(r.headers["Authorization"] == f"Bearer {KEY}" for r in calls)


@responses.activate
def test_backfilled_deliveries_translate_like_webhooks_also_when_rebuilt_from_the_body():
    fake_history(responses.mock)
    deliveries = list(client.fetch_history(source(), SINCE))
    events = [translate(d) for d in deliveries]
    # as core's inbox rebuilds them: payload from the stored body, no occurred_at
    rebuilt = [translate(Delivery(d.delivery_id, d.topic, json.loads(d.body), d.body))
               for d in deliveries]
    assert events == rebuilt
    [sale], [second], [refund] = events
    assert isinstance(sale, Sale) and sale.amount == Money(59900, "USD")
    assert sale.paid_total == Money(65215, "USD")
    assert isinstance(second, Sale) and second.order_id == "txn_01second"
    assert refund == Refund(order_id="txn_01hvcc93znj3mpqt1tenkjb04y",
                            refund_id="adj_01hvgf2s84dr6reszzg29zbvcm", amount=Money(100, "USD"),
                            occurred_at=datetime(2024, 4, 15, 8, 54, 10, 646377, tzinfo=timezone.utc))


@responses.activate
def test_second_backfill_yields_the_same_delivery_ids_and_bodies():
    fake_history(responses.mock)
    first = list(client.fetch_history(source(), SINCE))
    responses.reset()  # a fresh fake Paddle with the same data
    fake_history(responses.mock)
    second = list(client.fetch_history(source(), SINCE))
    assert [d.delivery_id for d in first] == [d.delivery_id for d in second]
    assert [d.body for d in first] == [d.body for d in second]


@responses.activate
def test_since_in_another_timezone_is_sent_as_utc():
    responses.get(f"{API}/transactions", json=page([]))
    responses.get(f"{API}/adjustments", json=page([]))
    paris = timezone(timedelta(hours=2))
    assert list(client.fetch_history(source(), datetime(2024, 6, 1, 2, 0, tzinfo=paris))) == []
    assert query(responses.calls[0])["updated_at[GTE]"] == ["2024-06-01T00:00:00.000000Z"]


@responses.activate
def test_sandbox_keys_talk_to_the_sandbox():
    responses.get(f"{SANDBOX_API}/transactions", json=page([]))
    responses.get(f"{SANDBOX_API}/adjustments", json=page([]))
    sandbox = source(api_key="pdl_sdbx_apikey_01abc_x")
    assert list(client.fetch_history(sandbox, SINCE)) == []
    assert len(responses.calls) == 2


def test_fetch_history_needs_an_api_key():
    with pytest.raises(ConnectError, match="api_key"):
        list(client.fetch_history(source(api_key=""), SINCE))


# --- lookup_referral ------------------------------------------------------------------------------

def sale(*codes: str, **referral: Any) -> Sale:
    return Sale(order_id="txn_1", amount=Money(100, "USD"), occurred_at=SINCE,
                referral=Referral(promo_codes=codes, **referral))


@responses.activate
def test_lookup_turns_a_discount_id_into_its_code():
    discount = fixture_json("paddle", "discount.created.data.json")
    discount["times_used"] = 3
    responses.get(f"{API}/discounts/{DISCOUNT_ID}", json={"data": discount})
    assert client.lookup_referral(source(), sale(DISCOUNT_ID)) == Referral(
        promo_codes=("SEWRGPB9WY",), evidence="discount")


@responses.activate
def test_lookup_of_a_missing_discount_is_no_hint():
    responses.get(f"{API}/discounts/{DISCOUNT_ID}", status=404,
                  json=error("entity_not_found", "Discount not found"))
    assert client.lookup_referral(source(), sale(DISCOUNT_ID)) is None


@responses.activate
def test_lookup_with_paddle_unreachable_is_no_hint():
    # nothing registered: `responses` refuses the connection
    assert client.lookup_referral(source(), sale(DISCOUNT_ID)) is None


@responses.activate
def test_lookup_makes_no_call_without_key_or_discount_id():
    assert client.lookup_referral(source(api_key=""), sale(DISCOUNT_ID)) is None
    assert client.lookup_referral(source(), sale("SUMMER10", click_id="clk_1")) is None
    assert len(responses.calls) == 0


# --- connect / disconnect -------------------------------------------------------------------------

def setting(destination: str = WEBHOOK_URL, setting_id: str = "ntfset_01new") -> dict[str, Any]:
    return {"id": setting_id, "description": "Touchpoint", "type": "url",
            "destination": destination, "active": True, "api_version": 1,
            "include_sensitive_fields": False, "subscribed_events": [],
            "endpoint_secret_key": f"pdl_ntfset_{setting_id}_secret", "traffic_source": "platform"}


@responses.activate
def test_connect_without_key_only_says_what_to_do():
    result = client.connect(source(api_key=""))
    assert result.webhook_secret is None
    assert WEBHOOK_URL in result.actions[0] and "transaction.completed" in result.actions[0]
    assert "PATCH /api/v1/sources/src_1" in result.actions[1]
    assert len(responses.calls) == 0


@responses.activate
def test_connect_with_key_and_secret_checks_the_key_with_one_cheap_call():
    responses.get(f"{API}/transactions", json=page([]),
                  match=[matchers.query_param_matcher({"per_page": "1"}, strict_match=False)])
    result = client.connect(source())
    assert result.webhook_secret is None
    assert result.actions[0] == "Paddle API key checked."
    assert len(responses.calls) == 1


@pytest.mark.parametrize("status,code", [(403, "forbidden"), (401, "authentication_malformed")])
@responses.activate
def test_connect_with_a_bad_key_fails_with_paddles_reason(status, code):
    responses.get(f"{API}/transactions", status=status,
                  json=error(code, "You aren't permitted to perform this request."))
    with pytest.raises(ConnectError, match=f"refused the API key \\({code}\\)"):
        client.connect(source())


@responses.activate
def test_connect_with_paddle_unreachable_fails():
    with pytest.raises(ConnectError, match="could not reach Paddle"):
        client.connect(source())


def test_connect_with_an_unknown_environment_fails():
    with pytest.raises(ConnectError, match="sandbox"):
        client.connect(source(environment="staging"))


@responses.activate
def test_connect_with_key_alone_creates_the_destination_and_keeps_its_secret():
    responses.get(f"{API}/notification-settings",
                  json=page([setting("https://elsewhere.example/hook", "ntfset_other")]))
    responses.post(f"{API}/notification-settings", status=201, json={"data": setting()})
    result = client.connect(source(secret=None))
    assert result.webhook_secret == "pdl_ntfset_ntfset_01new_secret"
    assert result.settings == {"notification_setting_id": "ntfset_01new"}
    assert "ntfset_01new" in result.actions[0]
    sent = json.loads(responses.calls[1].request.body)
    assert sent["destination"] == WEBHOOK_URL
    assert sent["subscribed_events"] == list(SUBSCRIBED_EVENTS)
    assert sent["type"] == "url" and sent["include_sensitive_fields"] is False


@responses.activate
def test_connect_reuses_an_existing_destination_for_the_same_url():
    responses.get(f"{API}/notification-settings", json=page([setting(setting_id="ntfset_old")]))
    result = client.connect(source(secret=None))
    assert result.webhook_secret == "pdl_ntfset_ntfset_old_secret"
    assert result.settings == {}  # not ours: disconnect leaves it alone
    assert len(responses.calls) == 1


@responses.activate
def test_connect_in_sandbox_by_explicit_environment():
    responses.get(f"{SANDBOX_API}/notification-settings", json=page([]))
    responses.post(f"{SANDBOX_API}/notification-settings", status=201, json={"data": setting()})
    assert client.connect(source(secret=None, environment="sandbox")).webhook_secret


@responses.activate
def test_disconnect_deletes_the_destination_touchpoint_created():
    responses.delete(f"{API}/notification-settings/ntfset_01new", status=204)
    client.disconnect(source(settings={"notification_setting_id": "ntfset_01new"}))
    assert len(responses.calls) == 1


@responses.activate
def test_disconnect_of_an_already_deleted_destination_is_fine():
    responses.delete(f"{API}/notification-settings/ntfset_01new", status=404,
                     json=error("not_found", "Entity not found"))
    client.disconnect(source(settings={"notification_setting_id": "ntfset_01new"}))


@responses.activate
def test_disconnect_reports_other_failures():
    responses.delete(f"{API}/notification-settings/ntfset_01new", status=403,
                     json=error("forbidden", "Missing permission notification_setting.write"))
    with pytest.raises(ConnectError, match="notification_setting.write"):
        client.disconnect(source(settings={"notification_setting_id": "ntfset_01new"}))


@responses.activate
def test_disconnect_without_our_destination_makes_no_call():
    client.disconnect(source())
    assert len(responses.calls) == 0
