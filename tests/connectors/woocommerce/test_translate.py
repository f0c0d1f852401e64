import json
from datetime import datetime, timezone

import pytest

from connectors.woocommerce.translate import translate
from core import events as ev
from core.connectors import Delivery
from core.money import Money
from tests.conftest import fixture_json
from tests.connectors.contract import check_events
from tests.connectors.woocommerce.helpers import body, order

MODIFIED = datetime(2017, 3, 22, 19, 28, 8, tzinfo=timezone.utc)  # date_modified_gmt of 727


def d(o, topic="order.updated"):
    return Delivery(delivery_id="x", topic=topic, payload=o, body=body(o))


def kinds(events):
    return [type(e).__name__ for e in events]


def test_published_order_is_a_sale_without_tax_and_shipping():
    [sale] = translate(d(fixture_json("woocommerce", "order.retrieve_an_order.json")))
    # total 29.35 = 18.00 of products + 10.00 shipping + 1.35 tax (shipping_tax 0.00 is in total_tax)
    assert sale == ev.Sale(
        order_id="727", amount=Money(1800, "USD"), paid_total=Money(2935, "USD"),
        occurred_at=datetime(2017, 3, 22, 19, 28, 8, tzinfo=timezone.utc),  # date_paid_gmt
        customer_id=None, email="john.doe@example.com",
        referral=ev.Referral(email="john.doe@example.com"))
    check_events([sale])


@pytest.mark.parametrize("name", ["order.create_an_order.json", "order.update_an_order.json",
                                  "order.delete_an_order.json", "order.retrieve_an_order.json"])
def test_every_published_order_of_727_is_the_same_sale(name):
    [sale] = translate(d(fixture_json("woocommerce", name)))
    assert (sale.order_id, sale.amount, sale.paid_total) == ("727", Money(1800, "USD"), Money(2935, "USD"))
    check_events([sale])


def test_published_batch_and_list():
    batch = fixture_json("woocommerce", "order.batch_update_orders.json")
    for o in batch["create"] + batch["update"]:
        check_events(translate(d(o)))
    listed = fixture_json("woocommerce", "order.list_all_orders.json")
    events = translate(d(listed[1]))
    # order 723: completed, 39.00 with 10.00 shipping and no tax, two partial refunds, customer 26,
    # no date_paid (completed by hand): the sale is dated when the order was created.
    assert kinds(events) == ["Sale", "Refund", "Refund"]
    sale = events[0]
    assert (sale.order_id, sale.amount, sale.paid_total, sale.customer_id) == \
        ("723", Money(2900, "USD"), Money(3900, "USD"), "26")
    assert sale.occurred_at == datetime(2017, 3, 21, 19, 16, tzinfo=timezone.utc)
    assert [(e.refund_id, e.amount) for e in events[1:]] == [("726", Money(1000, "USD")), ("724", Money(900, "USD"))]
    check_events(events)


def test_published_refund_sample_matches_the_orders_refund_entry():
    """The refund object (refunds/726, amount 10.00) is the order's `refunds` entry 726 (-10.00)."""
    refund = fixture_json("woocommerce", "refund.retrieve_a_refund.json")
    entry = next(r for r in fixture_json("woocommerce", "order.list_all_orders.json")[1]["refunds"]
                 if r["id"] == refund["id"])
    assert Money.parse(entry["total"].lstrip("-"), "USD") == Money.parse(refund["amount"], "USD")


def test_tax_and_shipping_tax_and_discounts():
    o = order()
    o.update(total="54.60", total_tax="4.60", shipping_total="5.00", shipping_tax="0.60",
             discount_total="5.00", currency="eur")
    [sale] = translate(d(o))
    # total is after the discount; total_tax (4.60) includes the shipping tax (0.60)
    assert (sale.amount, sale.paid_total) == (Money(4500, "EUR"), Money(5460, "EUR"))


def test_no_tax_no_shipping_has_no_separate_paid_total():
    o = order()
    o.update(total="18.00", total_tax="0.00", shipping_total="0.00")
    [sale] = translate(d(o))
    assert (sale.amount, sale.paid_total) == (Money(1800, "USD"), None)


def test_currencies_without_cents_and_stores_with_extra_decimals():
    o = order()
    o.update(currency="JPY", total="3000.00", total_tax="0.00", shipping_total="500.00")
    assert translate(d(o))[0].amount == Money(2500, "JPY")
    o.update(currency="USD", total="10.005", total_tax="0.000", shipping_total="0.000")
    assert translate(d(o))[0].amount == Money(1001, "USD")  # half-up to the cent


def test_click_coupons_and_email_are_referral_hints():
    [sale] = translate(d(order(click="clk_1", coupons=("SAVE10", "Ann"), email="Ann@Example.com")))
    assert sale.referral == ev.Referral(click_id="clk_1", promo_codes=("SAVE10", "Ann"),
                                        email="Ann@Example.com", evidence="meta_data")
    assert sale.email == "Ann@Example.com"


def test_click_without_underscore_and_junk_clicks():
    [sale] = translate(d(order(meta={"tp_click": "clk_2"})))
    assert (sale.referral.click_id, sale.referral.evidence) == ("clk_2", "meta_data")
    [sale] = translate(d(order(meta={"_tp_click": "<script>x</script>"})))
    assert sale.referral.click_id is None and sale.referral.evidence is None


@pytest.mark.parametrize("entry,click,ref", [
    ("https://shop.example/?ref=ann&utm_source=x", None, "ann"),
    ("https://shop.example/product/mug/?via=bob", None, "bob"),
    ("https://shop.example/?tp_click=clk_9", "clk_9", None),
])
def test_woocommerce_order_attribution_landing_page_is_a_fallback(entry, click, ref):
    [sale] = translate(d(order(meta={"_wc_order_attribution_source_type": "referral",
                                     "_wc_order_attribution_session_entry": entry})))
    assert (sale.referral.click_id, sale.referral.ref, sale.referral.evidence) == \
        (click, ref, "order_attribution")


def test_our_click_meta_wins_over_order_attribution():
    [sale] = translate(d(order(click="clk_1", meta={
        "_wc_order_attribution_session_entry": "https://shop.example/?ref=bob"})))
    assert (sale.referral.click_id, sale.referral.ref, sale.referral.evidence) == ("clk_1", None, "meta_data")


def test_utm_source_is_a_ref_only_on_affiliate_links():
    meta = {"_wc_order_attribution_source_type": "utm", "_wc_order_attribution_utm_source": "ann",
            "_wc_order_attribution_utm_medium": "affiliate",
            "_wc_order_attribution_session_entry": "https://shop.example/?utm_source=ann"}
    [sale] = translate(d(order(meta=meta)))
    assert (sale.referral.ref, sale.referral.evidence) == ("ann", "order_attribution_utm")
    [sale] = translate(d(order(meta={**meta, "_wc_order_attribution_utm_medium": "cpc",
                                      "_wc_order_attribution_utm_source": "google"})))
    assert sale.referral.ref is None and sale.referral.evidence is None


def test_partial_refunds_each_once():
    events = translate(d(order(status="completed", refunds=((731, "5.00"), (732, "2.50")))))
    assert kinds(events) == ["Sale", "Refund", "Refund"]
    assert events[1:] == [
        ev.Refund(order_id="727", refund_id="731", amount=Money(500, "USD"), occurred_at=MODIFIED),
        ev.Refund(order_id="727", refund_id="732", amount=Money(250, "USD"), occurred_at=MODIFIED)]


def test_status_refunded_refunds_the_whole_order():
    events = translate(d(order(status="refunded", refunds=((731, "29.35"),))))
    assert kinds(events) == ["Sale", "Refund", "Refund"]
    assert events[-1] == ev.Refund(order_id="727", refund_id="status-refunded", amount=None,
                                   occurred_at=MODIFIED)


@pytest.mark.parametrize("status", ["cancelled", "failed"])
def test_cancelled_or_failed_after_payment_is_cancelled(status):
    assert translate(d(order(status=status))) == [ev.OrderCanceled(order_id="727", occurred_at=MODIFIED)]


@pytest.mark.parametrize("status", ["cancelled", "failed"])
def test_cancelled_or_failed_before_payment_is_nothing(status):
    """WooCommerce lets the customer pay such an order later; core's cancellation is final."""
    assert translate(d(order(status=status, paid=False))) == []


def test_deleted_order_body_is_only_its_id():
    received = datetime(2026, 5, 1, tzinfo=timezone.utc)
    deleted = Delivery(delivery_id="x", topic="order.deleted", payload={"id": 727}, body=b'{"id": 727}',
                       occurred_at=received)
    assert translate(deleted) == [ev.OrderCanceled(order_id="727", occurred_at=received)]
    # as core re-reads a stored delivery: no arrival time, still a cancellation, dated now
    [e] = translate(Delivery(delivery_id="x", topic="order.deleted", payload={"id": 727}, body=b""))
    assert isinstance(e, ev.OrderCanceled) and e.occurred_at.tzinfo is not None
    assert kinds(translate(d(order(status="trash")))) == ["OrderCanceled"]


@pytest.mark.parametrize("status", ["pending", "on-hold", "checkout-draft"])
def test_unpaid_statuses_are_nothing_even_with_a_click(status):
    assert translate(d(order(status=status, click="clk_1"))) == []


def test_restored_order_is_read_like_any_other():
    assert kinds(translate(d(order(status="processing"), topic="order.restored"))) == ["Sale"]


def test_an_order_updated_many_times_gives_the_same_events():
    variants = [order(status="processing", click="clk_1"), order(status="completed", click="clk_1")]
    sales = [translate(d(o))[0] for o in variants]
    assert len({(s.order_id, s.amount, s.occurred_at, s.referral) for s in sales}) == 1


def test_legacy_wrapped_body():
    """The published v1 delivery: `{"order": …}` (webhook API version "Legacy API v3")."""
    delivery = fixture_json("woocommerce", "webhook_delivery.order.updated.json")
    legacy = json.loads(delivery["request_body"])
    [sale] = translate(d(legacy))
    # completed, 14.00 BRL = 4.00 of products + 10.00 shipping, no tax; paid; customer 0 = guest
    assert sale == ev.Sale(order_id="118", amount=Money(400, "BRL"), paid_total=Money(1400, "BRL"),
                           occurred_at=datetime(2016, 5, 3, 18, 10, tzinfo=timezone.utc),
                           email="john.doe@claudiosmweb.com",
                           referral=ev.Referral(email="john.doe@claudiosmweb.com"))
    legacy["order"]["status"] = "refunded"
    assert kinds(translate(d(legacy))) == ["Sale", "Refund"]
    legacy["order"]["order_meta"] = {"tp_click": "clk_3"}
    assert translate(d(legacy))[0].referral.click_id == "clk_3"


def test_unknown_topics_and_odd_payloads():
    assert translate(d(order(), topic="coupon.updated")) == []
    assert translate(d({"action": "woocommerce_x", "arg": 1}, topic="action.woocommerce_x")) == []
    assert translate(Delivery(delivery_id="p", topic="ping", payload=None, body=b"webhook_id=1")) == []
    for payload in (None, [], {}, {"order": "x"}, {"id": 0}):
        assert translate(Delivery(delivery_id="x", topic="order.updated", payload=payload, body=b"")) == []
