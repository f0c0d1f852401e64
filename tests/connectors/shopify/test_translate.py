from connectors.shopify.translate import translate
from core import events as ev
from core.connectors import Delivery
from core.money import Money
from tests.conftest import fixture_json
from tests.connectors.contract import check_events
from tests.connectors.shopify.helpers import order, refund


def d(topic, payload):
    return Delivery(delivery_id="x", topic=topic, payload=payload, body=b"{}")


def test_published_order_is_a_sale_of_the_subtotal():
    [sale] = translate(d("orders/paid", fixture_json("shopify", "order.json")["order"]))
    # subtotal 398.00 (after discounts, before tax and shipping); total 409.94
    assert sale.amount == Money(39800, "USD") and sale.paid_total == Money(40994, "USD")
    assert sale.order_id == "450789469" and sale.customer_id == "207119551"
    assert sale.referral.promo_codes == ("TENOFF",) and sale.referral.evidence == "discount_codes"
    check_events([sale])


def test_shop_money_and_taxes_included():
    o = fixture_json("shopify", "order.get.2024-04.json")["order"]
    [sale] = translate(d("orders/paid", o))
    check_events([sale])
    o = order()
    o["taxes_included"] = True
    [sale] = translate(d("orders/paid", o))
    assert sale.amount == Money(39800 - 1194, "USD")


def test_evidence_order_cart_attribute_then_landing_site():
    [s] = translate(d("orders/paid", order(click="clk_1", landing="/?ref=bob")))
    assert (s.referral.click_id, s.referral.evidence) == ("clk_1", "note_attributes")
    [s] = translate(d("orders/paid", order(landing="/products/x?ref=bob&utm_source=ig")))
    assert (s.referral.ref, s.referral.evidence) == ("bob", "landing_site")
    [s] = translate(d("orders/paid", order(landing="http://shop.example/?tp_click=clk_9")))
    assert s.referral.click_id == "clk_9"


def test_refunds_cancellations_and_the_rest():
    [r] = translate(d("refunds/create", fixture_json("shopify", "refund.json")["refund"]))
    assert r == ev.Refund(order_id="450789469", refund_id="509562969", amount=Money(20900, "USD"),
                          occurred_at=r.occurred_at)
    [c] = translate(d("orders/cancelled", order()))
    assert isinstance(c, ev.OrderCanceled)
    assert translate(d("orders/create", order(financial_status="pending"))) == []
    assert len(translate(d("orders/create", order()))) == 1
    assert isinstance(translate(d("app/uninstalled", {"id": 1}))[0], ev.SourceDisconnected)
    assert translate(d("products/update", {"id": 1})) == []


def test_privacy_webhooks():
    [req] = translate(d("customers/data_request", fixture_json("shopify", "customers_data_request.json")))
    assert (req.request_id, req.customer_ids, req.emails) == ("9999", ("191167",), ("john@example.com",))
    [er] = translate(d("customers/redact", fixture_json("shopify", "customers_redact.json")))
    assert er.customer_ids == ("191167",) and not er.whole_source
    [shop] = translate(d("shop/redact", fixture_json("shopify", "shop_redact.json")))
    assert shop.whole_source
