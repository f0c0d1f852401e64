"""connectors/shopify/translate.py: the published samples into the common model, exact amounts."""
from __future__ import annotations

import copy
from datetime import datetime, timezone

from connectors.shopify.translate import translate
from core import events as ev
from core.connectors import Delivery
from core.money import Money
from tests.conftest import fixture_json
from tests.connectors.contract import check_events
from tests.connectors.shopify.helpers import order

TRIGGERED = "2026-03-02T15:00:00.123456789Z"
AT_TRIGGER = datetime(2026, 3, 2, 15, 0, 0, 123456, tzinfo=timezone.utc)


def d(topic, payload, headers=None):
    """A delivery as core hands it to translate after storing it (occurred_at not carried)."""
    return Delivery(delivery_id="x", topic=topic, payload=payload, body=b"{}",
                    headers=headers if headers is not None else {"x-shopify-triggered-at": TRIGGERED})


def one(topic, payload, headers=None):
    events = translate(d(topic, payload, headers))
    check_events(events)
    [event] = events
    return event


def api_order():
    """The 2024-04 REST sample (shop money sets, a refund embedded), the inner object."""
    return fixture_json("shopify", "order.get.2024-04.json")["order"]


def test_published_order_is_a_sale_of_the_subtotal():
    sale = one("orders/paid", fixture_json("shopify", "order.json")["order"])
    # subtotal_price 398.00 is after discounts, before tax (11.94) and shipping (free).
    assert sale == ev.Sale(
        order_id="450789469", amount=Money(39800, "USD"), paid_total=Money(40994, "USD"),
        occurred_at=datetime(2008, 1, 10, 16, 0, tzinfo=timezone.utc),  # created_at, no processed_at
        customer_id="207119551", email="bob.norman@hostmail.com",
        referral=ev.Referral(promo_codes=("TENOFF",), email="bob.norman@hostmail.com",
                             evidence="discount_codes"))
    # `?source=abc` is not a referral key: no ref from it.
    assert sale.referral.ref is None and sale.amount_in_program_currency is None


def test_a_partly_refunded_order_counts_its_original_subtotal():
    """current_subtotal_price (195.67) has the refund already taken out; the refund arrives
    on its own, so the sale is the original 597.00 of 598.94."""
    sale = one("orders/paid", api_order())
    assert (sale.amount, sale.paid_total) == (Money(59700, "USD"), Money(59894, "USD"))
    assert sale.occurred_at == datetime(2008, 1, 10, 16, 0, tzinfo=timezone.utc)


def test_other_published_orders():
    [listed] = fixture_json("shopify", "orders.json")["orders"]
    assert one("orders/paid", listed).amount == Money(59700, "USD")
    created = fixture_json("shopify", "order.post.2024-04.json")["order"]
    sale = one("orders/create", created)  # paid at creation
    assert (sale.amount, sale.paid_total) == (Money(22497, "EUR"), Money(23847, "EUR"))
    assert sale.customer_id is None and sale.email is None and sale.referral.is_empty()


def test_shop_money_wins_over_what_the_customer_saw():
    o = api_order()
    for field in ("subtotal_price_set", "total_price_set"):
        o[field]["presentment_money"] = {"amount": "1.00", "currency_code": "EUR"}
    o["subtotal_price"], o["total_price"] = "1.00", "2.00"  # presentment figures in plain fields
    sale = one("orders/paid", o)
    assert (sale.amount, sale.paid_total) == (Money(59700, "USD"), Money(59894, "USD"))


def test_taxes_included_takes_the_items_tax_out_not_the_shippings():
    o = api_order()
    o["taxes_included"] = True
    assert one("orders/paid", o).amount == Money(59700 - 1194, "USD")
    o["shipping_lines"][0]["tax_lines"] = [{"price": "1.00", "price_set": {
        "shop_money": {"amount": "1.00", "currency_code": "USD"},
        "presentment_money": {"amount": "1.00", "currency_code": "USD"}}}]
    sale = one("orders/paid", o)
    assert sale.amount == Money(59700 - 1094, "USD") and sale.paid_total == Money(59894, "USD")


def test_evidence_cart_attribute_then_landing_site_then_codes():
    s = one("orders/paid", order(click="clk_1", landing="/?ref=bob", codes=("CAT10",)))
    assert s.referral == ev.Referral(click_id="clk_1", ref="bob", promo_codes=("CAT10",),
                                     email=s.email, evidence="note_attributes")
    s = one("orders/paid", order(landing="/products/x?ref=bob&utm_source=ig"))
    assert (s.referral.ref, s.referral.click_id, s.referral.evidence) == ("bob", None, "landing_site")
    s = one("orders/paid", order(landing="http://shop.example/?via=ann"))
    assert s.referral.ref == "ann"
    s = one("orders/paid", order(landing="https://shop.example/?tp_click=clk_9"))
    assert (s.referral.click_id, s.referral.evidence) == ("clk_9", "landing_site")
    s = one("orders/paid", order(landing=""))
    assert s.referral.evidence is None and s.referral.promo_codes == ()


def test_orders_create_counts_only_when_paid():
    assert translate(d("orders/create", order(financial_status="pending"))) == []
    assert one("orders/create", order()).order_id == "450789469"


def test_published_refunds():
    r = one("refunds/create", fixture_json("shopify", "refund.json")["refund"])
    assert r == ev.Refund(order_id="450789469", refund_id="509562969", amount=Money(20900, "USD"),
                          occurred_at=datetime(2016, 6, 20, 17, 35, 6, tzinfo=timezone.utc))
    r = one("refunds/create", fixture_json("shopify", "refund.post.2024-04.json")["refund"])
    assert (r.refund_id, r.amount, r.cumulative) == ("929361466", Money(4194, "USD"), False)
    embedded = one("refunds/create", api_order()["refunds"][0])
    assert embedded.amount == Money(20900, "USD")


def test_refunds_that_moved_no_money_are_nothing():
    refund = fixture_json("shopify", "refund.json")["refund"]
    refund["transactions"][0]["status"] = "failure"
    assert translate(d("refunds/create", refund)) == []
    refund["transactions"] = []
    assert translate(d("refunds/create", refund)) == []


def test_a_refund_in_another_currency_is_rebuilt_in_shop_money():
    refund = copy.deepcopy(api_order()["refunds"][0])  # shop money USD
    refund["transactions"][0].update(currency="EUR", amount="190.00")
    refund["order_adjustments"] = [{"kind": "shipping_refund", "amount": "-5.00", "amount_set": {
        "shop_money": {"amount": "-5.00", "currency_code": "USD"},
        "presentment_money": {"amount": "-4.60", "currency_code": "EUR"}}}]
    # Line items 195.66 + 3.98 and 195.67 + 3.98, plus 5.00 of shipping.
    assert one("refunds/create", refund).amount == Money(19566 + 398 + 19567 + 398 + 500, "USD")
    del refund["transactions"]  # no transactions at all: the same rebuild
    assert one("refunds/create", refund).amount == Money(19566 + 398 + 19567 + 398 + 500, "USD")


def test_cancellations_and_uninstalls():
    o = order()
    c = one("orders/cancelled", o)
    assert c == ev.OrderCanceled(order_id="450789469", occurred_at=AT_TRIGGER)  # cancelled_at null
    o["cancelled_at"] = "2026-03-03T10:00:00-05:00"
    assert one("orders/cancelled", o).occurred_at == datetime(2026, 3, 3, 15, 0, tzinfo=timezone.utc)
    assert one("app/uninstalled", {"id": 1, "domain": "x"}) == ev.SourceDisconnected(occurred_at=AT_TRIGGER)
    # A backfilled delivery has no headers: the time is now.
    assert one("app/uninstalled", {}, headers={}).occurred_at.tzinfo is not None


def test_privacy_webhooks():
    req = one("customers/data_request", fixture_json("shopify", "customers_data_request.json"))
    assert req == ev.PersonalDataRequest(request_id="9999", customer_ids=("191167",),
                                         emails=("john@example.com",), occurred_at=AT_TRIGGER)
    er = one("customers/redact", fixture_json("shopify", "customers_redact.json"))
    assert er == ev.PersonalDataErasure(customer_ids=("191167",), emails=("john@example.com",),
                                        occurred_at=AT_TRIGGER)
    shop = one("shop/redact", fixture_json("shopify", "shop_redact.json"))
    assert shop == ev.PersonalDataErasure(whole_source=True, occurred_at=AT_TRIGGER)


def test_unknown_topics_and_odd_bodies():
    assert translate(d("products/update", {"id": 1})) == []
    assert translate(d("orders/paid", None)) == []
    assert translate(d("orders/paid", [1])) == []
