from datetime import datetime, timezone

from connectors.woocommerce.translate import translate
from core import events as ev
from core.connectors import Delivery
from core.money import Money
from tests.conftest import fixture_json
from tests.connectors.contract import check_events
from tests.connectors.woocommerce.helpers import body, order


def d(o, topic="order.updated"):
    return Delivery(delivery_id="x", topic=topic, payload=o, body=body(o) if o else b"{}")


def test_published_order_is_a_sale_without_tax_and_shipping():
    [sale] = translate(d(fixture_json("woocommerce", "order.retrieve_an_order.json")))
    assert isinstance(sale, ev.Sale)
    # total 29.35 = 18.00 of products + 10.00 shipping + 1.35 tax
    assert sale.amount == Money(1800, "USD") and sale.paid_total == Money(2935, "USD")
    assert sale.order_id == "727" and sale.customer_id is None
    assert sale.email == "john.doe@example.com"
    assert sale.occurred_at == datetime(2017, 3, 22, 19, 28, 8, tzinfo=timezone.utc)
    check_events([sale])


def test_every_published_order_translates():
    for name in ("order.create_an_order.json", "order.update_an_order.json",
                 "order.delete_an_order.json", "order.retrieve_an_order.json"):
        check_events(translate(d(fixture_json("woocommerce", name))))
    for o in fixture_json("woocommerce", "order.list_all_orders.json"):
        check_events(translate(d(o)))


def test_click_coupons_and_email_are_referral_hints():
    [sale] = translate(d(order(click="clk_1", coupons=("SAVE10", "Ann"))))
    assert sale.referral == ev.Referral(click_id="clk_1", promo_codes=("SAVE10", "Ann"),
                                        email="john.doe@example.com", evidence="meta_data")


def test_woocommerce_order_attribution_is_a_fallback():
    o = order()
    o["meta_data"].append({"id": 2, "key": "_wc_order_attribution_session_entry",
                           "value": "https://shop.example/?ref=ann&utm_source=x"})
    [sale] = translate(d(o))
    assert (sale.referral.ref, sale.referral.evidence) == ("ann", "order_attribution")


def test_refunds_statuses_and_deletion():
    events = translate(d(order(refunds=((731, "5.00"), (732, "2.50")))))
    assert [type(e).__name__ for e in events] == ["Sale", "Refund", "Refund"]
    assert [(e.refund_id, e.amount) for e in events[1:]] == [("731", Money(500, "USD")), ("732", Money(250, "USD"))]
    full = translate(d(order(status="refunded")))
    assert isinstance(full[-1], ev.Refund) and full[-1].amount is None
    for status in ("cancelled", "failed"):
        assert [type(e) for e in translate(d(order(status=status)))] == [ev.OrderCanceled]
    assert [type(e) for e in translate(d(order(), topic="order.deleted"))] == [ev.OrderCanceled]
    for status in ("pending", "on-hold"):
        assert translate(d(order(status=status))) == []


def test_legacy_wrapped_body_and_unknown_topics():
    import json
    legacy = json.loads(fixture_json("woocommerce", "webhook_delivery.order.updated.json")["request_body"])
    events = translate(d(legacy))
    assert all(isinstance(e, (ev.Sale, ev.Refund, ev.OrderCanceled)) for e in events)
    assert translate(d(order(), topic="coupon.updated")) == []
    assert translate(Delivery(delivery_id="p", topic="ping", payload=None, body=b"")) == []
