"""Privacy requests from platforms: export what we hold about a customer, or erase it; and the
rule that no raw IP address is stored.

Erasing keeps the money (conversions and the ledger stay, so partners' earnings do not change)
but removes what identifies a person: email, the platform's customer id, the hints that carried
them, the stored webhook bodies and exports that name them (their raw payloads hold names,
addresses and phone numbers), and the address hashes of the clicks that led to them.
Clicks never hold a raw address (a salted daily hash), and `without_addresses` drops the IP
addresses platforms put in their payloads (a shop's `browser_ip`) before a delivery is stored.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sqlmodel import select

from core.ids import new_id
from core.models import (
    Click, Conversion, Customer, PersonalDataExport, Touch, WebhookDelivery,
)

if TYPE_CHECKING:
    from core.connectors import Delivery

REDACTED_BODY = b'{"redacted": "personal data erased on the platform\'s request"}'
BATCH = 500


def _is_address(value: str) -> bool:
    if not (7 <= len(value) <= 45 and ("." in value or ":" in value)):
        return False
    try:
        ipaddress.ip_address(value.strip())
    except ValueError:
        return False
    return True


def _drop_addresses(node: Any) -> bool:
    """Set every IP-address string in a JSON tree to None, in place; True if one was found."""
    found = False
    items: Iterator[tuple[Any, Any]] = (iter(node.items()) if isinstance(node, dict)
                                        else iter(enumerate(node)) if isinstance(node, list)
                                        else iter(()))
    for key, value in list(items):
        if isinstance(value, str) and _is_address(value):
            node[key] = None
            found = True
        elif isinstance(value, (dict, list)):
            found = _drop_addresses(value) or found
    return found


def without_addresses(delivery: "Delivery") -> "Delivery":
    """The delivery as it may be stored: any IP address in its payload removed (and the body
    re-encoded from the payload when one was). Translation never needs a visitor's address."""
    payload = delivery.payload
    if not isinstance(payload, (dict, list)) or not _drop_addresses(payload):
        return delivery
    return dataclasses.replace(delivery, payload=payload,
                               body=json.dumps(payload, separators=(",", ":")).encode())

if TYPE_CHECKING:
    from core import events as ev
    from core.ingest import IngestContext


def _customers(ctx: "IngestContext", customer_ids: tuple[str, ...],
               emails: tuple[str, ...]) -> list[Customer]:
    s = ctx.session
    externals = [f"{ctx.origin}:{c}" for c in customer_ids if c]
    found: dict[str, Customer] = {}
    if externals:
        for c in s.exec(select(Customer).where(Customer.program_id == ctx.program.id,
                                               Customer.external_id.in_(externals))):
            found[c.id] = c
    lowered = [e.strip().lower() for e in emails if e]
    if lowered:
        for c in s.exec(select(Customer).where(Customer.program_id == ctx.program.id,
                                               Customer.email.in_(lowered))):
            found[c.id] = c
    return list(found.values())


def export(ctx: "IngestContext", e: "ev.PersonalDataRequest") -> PersonalDataExport:
    s = ctx.session
    data: dict[str, Any] = {"customers": []}
    for cust in _customers(ctx, e.customer_ids, e.emails):
        convs = s.exec(select(Conversion).where(Conversion.customer_id == cust.id)).all()
        data["customers"].append({
            "external_id": cust.external_id, "email": cust.email,
            "conversions": [{"platform": c.platform, "event": c.event,
                             "external_id": c.external_id, "amount": c.amount,
                             "currency": c.currency, "occurred_at": c.occurred_at.isoformat()}
                            for c in convs]})
    row = PersonalDataExport(id=new_id("pdx"), program_id=ctx.program.id,
                             source_id=ctx.source.id if ctx.source else None,
                             request_id=e.request_id, data=data)
    s.add(row)
    return row


def _erase_customer(ctx: "IngestContext", cust: Customer) -> None:
    s = ctx.session
    cust.email = None
    cust.external_id = f"erased:{cust.id}"
    s.add(cust)
    click_ids = set()
    for conv in s.exec(select(Conversion).where(Conversion.customer_id == cust.id)):
        conv.hints = {k: v for k, v in (conv.hints or {}).items() if k in ("click_id", "ref")}
        click_ids.add(conv.click_id)
        s.add(conv)
    click_ids |= set(s.exec(select(Touch.click_id).where(Touch.customer_id == cust.id)).all())
    click_ids.discard(None)
    if click_ids:  # the visits that led to them: their address hashes go too
        visitors = set(s.exec(select(Click.visitor_id).where(
            Click.program_id == ctx.program.id, Click.id.in_(click_ids))).all())
        for click in s.exec(select(Click).where(Click.program_id == ctx.program.id,
                                                Click.visitor_id.in_(visitors))):
            click.ip_hash = None
            s.add(click)


def _mentions(node: Any, emails: set[str], ids: set[str]) -> bool:
    """Whether a payload names one of the customers: an email anywhere, or a customer id under
    a customer key (`customer`, `customer_id`, or the `id` of a `customer` object)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("customer", "customer_id") and not isinstance(value, (dict, list)) \
                    and value is not None and str(value) in ids:
                return True
            if key == "customer" and isinstance(value, dict) and str(value.get("id")) in ids:
                return True
            if _mentions(value, emails, ids):
                return True
        return False
    if isinstance(node, list):
        return any(_mentions(v, emails, ids) for v in node)
    return isinstance(node, str) and node.strip().lower() in emails


def _forget_payloads(ctx: "IngestContext", emails: set[str], ids: set[str],
                     everything: bool) -> None:
    """Stored webhook bodies of this source, and exports, that name the erased customers (all
    of the source's with `everything`) are replaced by a stub: the raw payloads hold names,
    addresses and phone numbers that no column of ours does."""
    s = ctx.session
    needles = [n.lower().encode() for n in emails | ids]
    if ctx.source is not None:
        last = 0
        while True:  # in batches: an erasure may cross a large inbox, once
            rows = s.exec(select(WebhookDelivery).where(
                WebhookDelivery.source_id == ctx.source.id, WebhookDelivery.id > last)
                .order_by(WebhookDelivery.id).limit(BATCH)).all()
            if not rows:
                break
            for row in rows:
                last = row.id
                if row.body == REDACTED_BODY or not everything and not any(
                        n in row.body.lower() for n in needles):  # a byte search first: cheap
                    continue
                try:
                    payload = json.loads(row.body)
                except ValueError:
                    payload = None
                if everything or _mentions(payload, emails, ids):
                    row.body, row.headers = REDACTED_BODY, {}
                    s.add(row)
    for export in s.exec(select(PersonalDataExport).where(
            PersonalDataExport.program_id == ctx.program.id)):
        if everything and export.source_id == (ctx.source.id if ctx.source else None) \
                or _mentions(export.data, emails | {f"{ctx.origin}:{i}".lower() for i in ids}, ids):
            s.delete(export)


def erase(ctx: "IngestContext", e: "ev.PersonalDataErasure") -> int:
    s = ctx.session
    if e.whole_source:
        ids = {c for c in s.exec(select(Conversion.customer_id).where(
            Conversion.program_id == ctx.program.id, Conversion.origin == ctx.origin,
            Conversion.customer_id.is_not(None)))}
        prefix = f"{ctx.origin}:"
        for c in s.exec(select(Customer).where(Customer.program_id == ctx.program.id,
                                               Customer.external_id.startswith(prefix))):
            ids.add(c.id)
        customers = [s.get(Customer, i) for i in ids]
    else:
        customers = _customers(ctx, e.customer_ids, e.emails)
    emails = {m.strip().lower() for m in e.emails if m}
    ids = {str(c) for c in e.customer_ids if c}
    prefix = f"{ctx.origin}:"
    for cust in customers:
        if cust is not None:
            if cust.email:
                emails.add(cust.email)
            if cust.external_id.startswith(prefix) and ":email:" not in cust.external_id:
                ids.add(cust.external_id.removeprefix(prefix))
            _erase_customer(ctx, cust)
    s.flush()
    _forget_payloads(ctx, emails, ids, e.whole_source)
    return len(customers)
