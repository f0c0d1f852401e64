"""connectors/stripe/client.py: the stripe SDK's own request code runs against a fake
api.stripe.com (`responses` patches `requests`, which `stripe.RequestsClient` uses). Responses are
Stripe's published fixtures (tests/fixtures/stripe/fixtures3.bundle.json), changed in code."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
import stripe

from connectors.stripe import client, connector
from connectors.stripe.translate import EVENT_TYPES, translate
from core.money import Money
from core.connectors import ConnectError, ConnectResult, SourceContext
from core.events import Referral, Sale
from tests.conftest import fixture_json

API = "https://api.stripe.com/v1"
URL = "https://touchpoint.example.com/webhooks/stripe/src_1"


def resource(name: str) -> dict[str, Any]:
    return fixture_json("stripe", "fixtures3.bundle.json")["resources"][name]


def source(**changes: Any) -> SourceContext:
    values: dict[str, Any] = dict(id="src_1", program_id="prg_1", platform="stripe",
                                  credentials={"api_key": "rk_test_123"}, webhook_url=URL)
    values.update(changes)
    return SourceContext(**values)


def form(call: Any) -> dict[str, list[str]]:
    """The form-encoded body (POST) or query (GET) of a recorded request."""
    raw = call.request.body or urlsplit(call.request.url).query
    if isinstance(raw, bytes):
        raw = raw.decode()
    return parse_qs(raw)


def error(status: int, message: str, code: str | None = None, kind: str = "invalid_request_error"):
    return {"error": {"type": kind, "message": message, **({"code": code} if code else {})}}


@pytest.fixture
def fake():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


# --- connect --------------------------------------------------------------------------------------

def test_connect_creates_the_webhook_endpoint(fake):
    endpoint = resource("webhook_endpoint")
    endpoint.update(url=URL, enabled_events=list(EVENT_TYPES), secret="whsec_created")
    fake.post(f"{API}/webhook_endpoints", json=endpoint)

    result = client.connect(source())

    assert result == ConnectResult(
        webhook_secret="whsec_created",
        settings={"webhook_endpoint_id": "we_1Pgc6yB7WZ01zgkWzAudq4eU"},
        actions=(f"Created Stripe webhook endpoint we_1Pgc6yB7WZ01zgkWzAudq4eU for {URL}",))
    call = fake.calls[0]
    assert call.request.headers["Authorization"] == "Bearer rk_test_123"
    sent = form(call)
    assert sent["url"] == [URL]
    assert sorted(v for k, v in sent.items() if k.startswith("enabled_events")) \
        == sorted([e] for e in EVENT_TYPES)
    assert sent["metadata[touchpoint_source]"] == ["src_1"]


def test_connect_without_api_key_does_nothing(fake):
    assert client.connect(source(credentials={}, webhook_secret="whsec_given")) == ConnectResult()
    assert len(fake.calls) == 0


def test_connect_with_an_invalid_key_says_so(fake):
    fake.post(f"{API}/webhook_endpoints", status=401,
              json=error(401, "Invalid API Key provided: rk_test_***123"))
    with pytest.raises(ConnectError, match="Stripe refused the API key"):
        client.connect(source())


def test_connect_with_a_key_lacking_permission_says_which(fake):
    fake.post(f"{API}/webhook_endpoints", status=403,
              json=error(403, "The provided key does not have the required permissions"))
    with pytest.raises(ConnectError, match="may not create webhook endpoints"):
        client.connect(source())


def test_connect_with_an_unusable_url_passes_stripe_reason_on(fake):
    fake.post(f"{API}/webhook_endpoints", status=400,
              json=error(400, "Invalid URL: URL must be publicly accessible.", "url_invalid"))
    with pytest.raises(ConnectError, match="URL must be publicly accessible"):
        client.connect(source())


# --- disconnect -----------------------------------------------------------------------------------

def test_disconnect_deletes_the_endpoint(fake):
    fake.delete(f"{API}/webhook_endpoints/we_1Pgc6yB7WZ01zgkWzAudq4eU",
                json=resource("deleted_webhook_endpoint"))
    client.disconnect(source(settings={"webhook_endpoint_id": "we_1Pgc6yB7WZ01zgkWzAudq4eU"}))
    assert len(fake.calls) == 1


def test_disconnect_of_an_endpoint_already_gone_is_fine(fake):
    fake.delete(f"{API}/webhook_endpoints/we_gone", status=404,
                json=error(404, "No such webhook endpoint: 'we_gone'", "resource_missing"))
    client.disconnect(source(settings={"webhook_endpoint_id": "we_gone"}))


def test_disconnect_failure_is_a_connect_error(fake):
    fake.delete(f"{API}/webhook_endpoints/we_1", status=401, json=error(401, "Expired API Key"))
    with pytest.raises(ConnectError):
        client.disconnect(source(settings={"webhook_endpoint_id": "we_1"}))


def test_disconnect_without_endpoint_or_key_calls_nothing(fake):
    client.disconnect(source())
    client.disconnect(source(credentials={}, settings={"webhook_endpoint_id": "we_1"}))
    assert len(fake.calls) == 0


# --- write-back -----------------------------------------------------------------------------------

def test_write_back_sets_customer_metadata(fake):
    customer = resource("customer")
    customer["metadata"] = {"tp_partner": "alice", "tp_click": "clk_1"}
    fake.post(f"{API}/customers/cus_QXg1o8vcGmoR32", json=customer)
    client.write_back(source(), "cus_QXg1o8vcGmoR32", "alice", "clk_1")
    assert form(fake.calls[0]) == {"metadata[tp_partner]": ["alice"],
                                   "metadata[tp_click]": ["clk_1"]}


def test_write_back_without_click_leaves_tp_click_alone(fake):
    fake.post(f"{API}/customers/cus_1", json=resource("customer"))
    client.write_back(source(), "cus_1", "alice", None)
    assert form(fake.calls[0]) == {"metadata[tp_partner]": ["alice"]}


# --- lookup_referral ------------------------------------------------------------------------------

def unattributed_sale(codes: tuple[str, ...] = (),
                      customer: str | None = "cus_QXg1o8vcGmoR32") -> Sale:
    return Sale(order_id="in_1", amount=Money(1000, "USD"), occurred_at=datetime.now(timezone.utc),
                customer_id=customer,
                referral=Referral(promo_codes=codes, evidence="promotion_code") if codes
                else Referral())


def test_lookup_turns_promotion_code_ids_into_codes_and_reads_the_customer(fake):
    promo = resource("promotion_code")
    promo.update(id="promo_1", code="ANN20")
    fake.get(f"{API}/promotion_codes/promo_1", json=promo)
    customer = resource("customer")
    customer["metadata"] = {"tp_click": "clk_1", "tp_partner": "ann", "other": "x"}
    fake.get(f"{API}/customers/cus_QXg1o8vcGmoR32", json=customer)

    found = client.lookup_referral(source(), unattributed_sale(("promo_1", "FALL20")))

    assert found == Referral(click_id="clk_1", ref="ann", promo_codes=("ANN20",),
                             evidence="stripe.customer.metadata")
    assert fake.calls[0].request.headers["Authorization"] == "Bearer rk_test_123"
    assert len(fake.calls) == 2  # "FALL20" is already a code: nothing to fetch


def test_lookup_with_only_a_promotion_code(fake):
    promo = resource("promotion_code")
    fake.get(f"{API}/promotion_codes/{promo['id']}", json=promo)
    found = client.lookup_referral(source(), unattributed_sale((promo["id"],), customer=None))
    assert found == Referral(promo_codes=("FALL20",), evidence="stripe.promotion_code")


def test_lookup_of_a_customer_without_our_metadata_finds_nothing(fake):
    fake.get(f"{API}/customers/cus_QXg1o8vcGmoR32", json=resource("customer"))
    assert client.lookup_referral(source(), unattributed_sale()) is None


def test_lookup_of_deleted_or_missing_objects_finds_nothing(fake):
    fake.get(f"{API}/customers/cus_QXg1o8vcGmoR32", json=resource("deleted_customer"))
    fake.get(f"{API}/promotion_codes/promo_gone", status=404,
             json=error(404, "No such promotion code: 'promo_gone'", "resource_missing"))
    assert client.lookup_referral(source(), unattributed_sale(("promo_gone",))) is None


def test_lookup_network_trouble_is_raised_so_the_delivery_is_retried(fake):
    fake.get(f"{API}/customers/cus_QXg1o8vcGmoR32", status=500,
             json=error(500, "boom", kind="api_error"))
    with pytest.raises(stripe.APIError):
        client.lookup_referral(source(), unattributed_sale())


def test_lookup_without_api_key_asks_nothing(fake):
    assert client.lookup_referral(source(credentials={}), unattributed_sale(("promo_1",))) is None
    assert len(fake.calls) == 0


# --- backfill -------------------------------------------------------------------------------------

def listed_event(n: int, event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
    event = fixture_json("stripe", "event.json")
    event.update(id=f"evt_{n}", type=event_type, created=1_700_000_000 + n)
    event["data"]["object"] = obj
    return event


def page(events: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "url": "/v1/events", "has_more": has_more, "data": events}


def test_fetch_history_pages_through_events_oldest_first(fake):
    invoice = fixture_json("stripe", "invoice.2024-08.json")
    invoice.update(amount_paid=1000, status="paid", billing_reason="subscription_create",
                   subscription="sub_1", charge="ch_1", payment_intent="pi_1")
    charge = fixture_json("stripe", "charge.2024-08.json")
    charge.update(invoice=invoice["id"], amount_refunded=1000)
    # Stripe lists newest first: page 1 holds evt_3 and evt_2, page 2 holds evt_1.
    newest = [listed_event(3, "charge.refunded", charge),
              listed_event(2, "invoice.payment_succeeded", invoice)]
    oldest = [listed_event(1, "invoice.paid", invoice)]
    fake.get(f"{API}/events", json=page(newest, True),
             match=[responses.matchers.query_param_matcher({"limit": "100"}, strict_match=False)])

    def second_page(request):  # the SDK asks for the page after the last id it saw
        query = parse_qs(urlsplit(request.url).query)
        assert query["starting_after"] == ["evt_2"]
        return 200, {}, json.dumps(page(oldest, False))

    fake.add_callback(responses.GET, f"{API}/events", callback=second_page)

    since = datetime(2023, 11, 1, tzinfo=timezone.utc)
    deliveries = list(client.fetch_history(source(), since))

    assert [d.delivery_id for d in deliveries] == ["evt_1", "evt_2", "evt_3"]
    assert [d.topic for d in deliveries] == ["invoice.paid", "invoice.payment_succeeded",
                                             "charge.refunded"]
    first = parse_qs(urlsplit(fake.calls[0].request.url).query)
    assert first["created[gte]"] == [str(int(since.timestamp()))]
    assert sorted(v[0] for k, v in first.items() if k.startswith("types")) == sorted(EVENT_TYPES)
    # Each delivery is what a webhook would have carried: the event as plain JSON.
    d = deliveries[0]
    assert d.occurred_at == datetime.fromtimestamp(1_700_000_001, tz=timezone.utc)
    assert json.loads(d.body) == d.payload == oldest[0]
    sale = translate(d)[0]
    assert isinstance(sale, Sale) and sale.order_id == invoice["id"]
    assert sale.aliases == ("ch_1", "pi_1")
    assert translate(deliveries[2])[0].order_id == invoice["id"]


def test_fetch_history_without_api_key_yields_nothing(fake):
    assert list(client.fetch_history(source(credentials={}), datetime.now(timezone.utc))) == []


def test_connector_declares_the_client_functions():
    assert connector.id == "stripe"
    assert connector.fetch_history is client.fetch_history
    assert connector.connect is client.connect and connector.disconnect is client.disconnect
    assert connector.write_back is client.write_back
    assert connector.lookup_referral is client.lookup_referral
    assert connector.credential_fields == ("api_key",)
