"""A fake connector for core tests: JSON bodies signed with a shared secret in a header, and
topics that map one-to-one to core events. It goes through the same registry argument as the real
ones (saleor's habit of passing plugins in tests)."""
from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from core import events as ev
from core.connectors import BadPayload, Connector, Delivery, SignatureInvalid, SourceContext
from core.money import Money


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(source: SourceContext, headers: Any, body: bytes) -> Delivery:
    given = headers.get("X-Fake-Signature", "")
    if not source.webhook_secret or not hmac.compare_digest(given, sign(source.webhook_secret, body)):
        raise SignatureInvalid("bad fake signature")
    try:
        payload = json.loads(body)
        return Delivery(delivery_id=payload["id"], topic=payload["topic"], payload=payload, body=body)
    except (ValueError, KeyError) as exc:
        raise BadPayload(str(exc)) from None


def _at(p: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(p["at"])


def translate(delivery: Delivery) -> list[ev.Event]:
    p = delivery.payload
    ref = ev.Referral(click_id=p.get("click"), ref=p.get("ref"),
                      promo_codes=tuple(p.get("codes", ())), evidence="fake")
    topic = delivery.topic
    if topic == "sale":
        paid = p.get("paid_total")
        return [ev.Sale(order_id=p["order"], amount=Money(p["amount"], p.get("currency", "USD")),
                        paid_total=Money(paid, p.get("currency", "USD")) if paid else None,
                        occurred_at=_at(p), customer_id=p.get("customer"), referral=ref,
                        email=p.get("email"), payment_fingerprint=p.get("card"),
                        subscription_id=p.get("subscription"), renewal=p.get("renewal", False),
                        aliases=tuple(p.get("aliases", ())))]
    if topic == "refund":
        return [ev.Refund(order_id=p["order"], refund_id=p.get("refund"),
                          amount=Money(p["amount"], p.get("currency", "USD")) if "amount" in p else None,
                          occurred_at=_at(p), cumulative=p.get("cumulative", False))]
    if topic == "dispute":
        return [ev.Chargeback(order_id=p["order"], dispute_id=p["dispute"], status=p["status"],
                              occurred_at=_at(p))]
    if topic == "identify":
        return [ev.Identify(customer_id=p.get("customer"), subscription_id=p.get("subscription"),
                            referral=ref, occurred_at=_at(p))]
    if topic == "cancel_subscription":
        return [ev.SubscriptionCanceled(subscription_id=p["subscription"], occurred_at=_at(p))]
    if topic == "cancel_order":
        return [ev.OrderCanceled(order_id=p["order"], occurred_at=_at(p))]
    if topic == "boom":
        raise RuntimeError("translate failed")
    return []


fake = Connector(id="fake", name="Fake", verify=verify, translate=translate,
                 credential_fields=("api_key",), required_fields=("webhook_secret",))
