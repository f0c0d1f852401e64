"""What a batch of events will read, fetched before it is applied: one query per table.

The inbox's drainer applies up to a hundred deliveries in one transaction. Applied one by one,
each sale asks the database about a dozen questions (its conversion by any of its ids, their
aliases, the customer, refunds that came first, the click and its visitor's other clicks, the
partner and its tags, the click-flood counts, ...): each a statement to execute and, on
PostgreSQL, a round trip, and each first flushing what the sale before it wrote. `fetch` asks
each question once for every key the batch's events name, so a sale is decided in memory and the
whole batch's rows are written by one flush at its end, as a few multi-row INSERTs.

Exact by construction, not a cache that may be stale:
- a lookup is answered here only for a key that was fetched (each dict below holds every fetched
  key, with None or [] where the database had nothing); any other key is asked of the database
  as before, which first flushes what the batch wrote so far;
- what the batch writes registers itself here (`core.ingest`: new conversions, aliases,
  customers, touches, waiting adjustments, cancellations), and filters run on the rows' current
  values, so a later event of the batch sees what an earlier one did;
- rows of an origin (conversions, aliases, customers, adjustments) are only written under the
  origin's lock (`core.ingest.lock_origin`), taken before fetching, so no other writer changes
  them meanwhile. Clicks are written by the redirect at any time, but never changed: the batch
  sees them as they were at the fetch, milliseconds before it applies, as each delivery saw
  them at the moment it was applied before. (A click recorded in between could count only for
  a sale dated after it, within attribution's clock-skew allowance.)
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from sqlalchemy import bindparam, or_
from sqlmodel import Session, select

from core import events as ev
from core.models import (
    Adjustment, Click, Conversion, ConversionAlias, Customer, Link, Partner, PartnerTag, PromoCode,
    SubscriptionCancel, Touch,
)

# Beyond this span of sale times the click-flood windows of a batch (a backfill of old orders)
# are counted one sale at a time rather than by reading every click in between.
FLOOD_SPAN = timedelta(days=2)


def customer_key(origin: str, customer_id: str | None, email: str | None) -> str | None:
    """A customer's `external_id`: the platform's id namespaced by origin, else the email."""
    if customer_id:
        return f"{origin}:{customer_id}"
    if email:
        return f"{origin}:email:{email}"
    return None


def clean_email(email: str | None) -> str | None:
    return email.strip().lower() if email else None


@dataclass
class FloodWindow:
    """Clicks of the batch's visitors and devices for the batch's partners, `since`..`until`."""

    since: datetime
    until: datetime
    partners: set[str]
    visitors: set[str]
    devices: set[str]
    clicks: list[tuple[str, str, str | None, datetime]]  # partner, visitor, device, created_at

    def counts(self, partner_id: str, visitor_id: str, ip_hash: str | None, since: datetime,
               until: datetime) -> tuple[int, int] | None:
        """(by visitor, by device), or None when the question lies outside what was fetched."""
        if since < self.since or until > self.until or partner_id not in self.partners \
                or visitor_id not in self.visitors or (ip_hash is not None and ip_hash not in self.devices):
            return None
        window = [c for c in self.clicks if c[0] == partner_id and since <= c[3] <= until]
        by_visitor = sum(1 for c in window if c[1] == visitor_id)
        by_device = sum(1 for c in window if ip_hash is not None and c[2] == ip_hash)
        return by_visitor, by_device


@dataclass
class BatchReads:
    """The fetched rows, by the key each lookup asks with (see the module's docstring)."""

    program_id: str
    origin: str
    conversions: dict[str, Conversion | None] = field(default_factory=dict)  # by external id
    alias_to_order: dict[str, str] = field(default_factory=dict)  # alias -> order ref
    aliases_of: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    customers: dict[str, Customer | None] = field(default_factory=dict)  # by external id
    touches: dict[str, list[Touch]] = field(default_factory=dict)  # by customer id: all of them
    credited: dict[str, list[Customer]] = field(default_factory=dict)  # by email, credited ones
    waiting: dict[str, list[Adjustment]] = field(default_factory=dict)  # by order ref
    visitor_clicks: dict[str, list[Click]] = field(default_factory=dict)  # by click id
    partners_by_key: dict[str, Partner | None] = field(default_factory=dict)
    promo_codes: dict[str, PromoCode | None] = field(default_factory=dict)  # by lower-cased code
    payments: dict[str, list[Conversion]] = field(default_factory=dict)  # by subscription id
    cancels: dict[str, SubscriptionCancel | None] = field(default_factory=dict)
    tags: dict[str, set[str]] = field(default_factory=dict)  # by partner id
    flood: FloodWindow | None = None
    # The session's identity map holds rows weakly; these keep the fetched partners and links
    # (which `Session.get` then finds without a query) for the batch's lifetime.
    held: list[Any] = field(default_factory=list)

    def covers_refs(self, refs: Iterable[str]) -> bool:
        return all(r in self.conversions for r in refs)

    # --- kept current by core.ingest as the batch writes -----------------------------------

    def conversion_created(self, conv: Conversion) -> None:
        self.conversions[conv.external_id] = conv

    def alias_learned(self, alias: str, order_ref: str) -> None:
        self.alias_to_order[alias] = order_ref
        self.aliases_of[order_ref].append(alias)

    def customer_found(self, key: str, customer: Customer | None) -> None:
        self.customers[key] = customer

    def adjustment_waiting(self, adj: Adjustment) -> None:
        if adj.order_ref in self.waiting:
            self.waiting[adj.order_ref].append(adj)

    # --- answers ------------------------------------------------------------------------------

    def credited_by_email(self, email: str) -> Customer | None:
        """The customer with this email credited first (attributed_at, NULLs last as
        PostgreSQL sorts them), among those credited before the batch and those it touched."""
        seen: dict[str, Customer] = {}
        for c in [*self.credited[email], *(c for c in self.customers.values() if c is not None)]:
            if c.program_id == self.program_id and c.email == email and c.partner_id is not None:
                seen[c.id] = c
        if not seen:
            return None
        return min(seen.values(), key=lambda c: (c.attributed_at is None, c.attributed_at or datetime.min))

    def subscription_payments(self, subscription_id: str) -> list[Conversion]:
        """Every payment of the subscription as it stands now (fetched, loaded or created)."""
        seen: dict[str, Conversion] = {}
        for c in [*self.payments[subscription_id],
                  *(c for c in self.conversions.values() if c is not None)]:
            if c.subscription_id == subscription_id and c.program_id == self.program_id \
                    and c.origin == self.origin:
                seen[c.id] = c
        return list(seen.values())


def fetch(s: Session, program_id: str, origin: str, events: list[Any],
          flood_window: timedelta | None) -> BatchReads:
    """Everything the events' sales and leads will look up; the caller holds the origin's lock.
    `flood_window`: the click-flood rule's window, None when the rule is off."""
    reads = BatchReads(program_id, origin)
    refs: set[str] = set()
    keys: set[str] = set()
    emails: set[str] = set()
    click_ids: set[str] = set()
    partner_keys: set[str] = set()
    codes: set[str] = set()
    subscriptions: set[str] = set()
    sale_times: list[datetime] = []
    for e in events:
        if isinstance(e, ev.Sale):
            refs.update(r for r in (e.order_id, *e.aliases) if r)
            email = clean_email(e.email or e.referral.email)
            if e.subscription_id:
                subscriptions.add(e.subscription_id)
            sale_times.append(e.occurred_at)
        elif isinstance(e, ev.Lead):
            refs.add(f"lead:{e.event}:{e.customer_id}")
            email = clean_email(e.email or e.referral.email)
        else:
            continue
        key = customer_key(origin, e.customer_id, email)
        if key:
            keys.add(key)
        if email:
            emails.add(email)
        if e.referral.click_id:
            click_ids.add(e.referral.click_id)
        if e.referral.ref:
            partner_keys.add(e.referral.ref)
        codes.update(c.strip().lower() for c in e.referral.promo_codes if c and c.strip())
    if not (refs or keys):
        return reads
    _fetch_conversions(s, reads, refs)
    _fetch_customers(s, reads, keys, emails)
    _fetch_subscriptions(s, reads, subscriptions)
    partner_ids = _fetch_referrals(s, reads, click_ids, partner_keys, codes)
    partner_ids |= {c.partner_id for c in reads.customers.values() if c and c.partner_id}
    partner_ids |= {c.partner_id for cs in reads.credited.values() for c in cs if c.partner_id}
    partner_ids |= {c.partner_id for cs in reads.payments.values() for c in cs if c.partner_id}
    _fetch_partners(s, reads, partner_ids)
    if flood_window is not None and sale_times and reads.visitor_clicks:
        since, until = min(sale_times) - flood_window, max(sale_times)
        if until - since <= FLOOD_SPAN + flood_window:
            reads.flood = _fetch_flood(s, reads, since, until)
    return reads


def _one_each(found: dict[str, Any], keys: Iterable[str], rows: Iterable[Any],
              key: Callable[[Any], str]) -> None:
    """Every key to its row, or to None where the database has none: a miss is an answer too."""
    found.update(dict.fromkeys(keys))
    for row in rows:
        found[key(row)] = row


def _all_of_each(found: dict[str, list[Any]], keys: Iterable[str], rows: Iterable[Any],
                 key: Callable[[Any], str]) -> None:
    """Every key to all of its rows ([] where the database has none)."""
    found.update({k: [] for k in keys})
    for row in rows:
        found[key(row)].append(row)


_CONVERSIONS = select(Conversion).where(
    Conversion.program_id == bindparam("program_id"), Conversion.origin == bindparam("origin"),
    Conversion.external_id.in_(bindparam("refs", expanding=True)))
_CONVERSIONS_LOCKED = _CONVERSIONS.with_for_update()
_ALIASES = select(ConversionAlias).where(
    ConversionAlias.program_id == bindparam("program_id"), ConversionAlias.origin == bindparam("origin"),
    or_(ConversionAlias.alias.in_(bindparam("refs", expanding=True)),
        ConversionAlias.order_ref.in_(bindparam("refs", expanding=True))))
_WAITING = select(Adjustment).where(
    Adjustment.program_id == bindparam("program_id"), Adjustment.origin == bindparam("origin"),
    Adjustment.order_ref.in_(bindparam("refs", expanding=True)), Adjustment.conversion_id.is_(None))


def _fetch_conversions(s: Session, reads: BatchReads, refs: set[str]) -> None:
    """Conversions by every ref, the aliases naming or named by them, and the conversions the
    aliases point to (locked, as the per-sale lookup locks them), and waiting adjustments."""
    params = {"program_id": reads.program_id, "origin": reads.origin}
    for a in s.exec(_ALIASES, params={**params, "refs": sorted(refs)}):
        reads.alias_learned(a.alias, a.order_ref)
    targets = set(reads.alias_to_order.values()) | set(reads.alias_to_order)
    wanted = sorted(refs | targets)
    _one_each(reads.conversions, wanted, s.exec(_CONVERSIONS_LOCKED, params={**params, "refs": wanted}),
              lambda c: c.external_id)
    # A ref reached only through an alias (an order an alias points to, or an alias of one of
    # the batch's orders) is covered too, so its own aliases, both ways, are fetched as well.
    extra = sorted(set(wanted) - refs)
    if extra:
        for a in s.exec(_ALIASES, params={**params, "refs": extra}):
            if reads.alias_to_order.get(a.alias) != a.order_ref:
                reads.alias_learned(a.alias, a.order_ref)
    _all_of_each(reads.waiting, wanted, s.exec(_WAITING, params={**params, "refs": wanted}),
                 lambda adj: adj.order_ref)


_CUSTOMERS = select(Customer).where(Customer.program_id == bindparam("program_id"),
                                    Customer.external_id.in_(bindparam("keys", expanding=True)))
_CREDITED = select(Customer).where(Customer.program_id == bindparam("program_id"),
                                   Customer.email.in_(bindparam("emails", expanding=True)),
                                   Customer.partner_id.is_not(None))
_TOUCHES = select(Touch).where(Touch.customer_id.in_(bindparam("ids", expanding=True)))


def _fetch_customers(s: Session, reads: BatchReads, keys: set[str], emails: set[str]) -> None:
    """Customers by key with all their touches, and the credited customers of every email."""
    program = {"program_id": reads.program_id}
    _one_each(reads.customers, keys, s.exec(_CUSTOMERS, params={**program, "keys": sorted(keys)})
              if keys else [], lambda c: c.external_id)
    found = [c.id for c in reads.customers.values() if c is not None]
    _all_of_each(reads.touches, found, s.exec(_TOUCHES, params={"ids": found}) if found else [],
                 lambda t: t.customer_id)
    _all_of_each(reads.credited, emails, s.exec(_CREDITED, params={**program, "emails": sorted(emails)})
                 if emails else [], lambda c: c.email)


_PAYMENTS = select(Conversion).where(
    Conversion.program_id == bindparam("program_id"), Conversion.origin == bindparam("origin"),
    Conversion.subscription_id.in_(bindparam("subs", expanding=True)))
_CANCELS = select(SubscriptionCancel).where(
    SubscriptionCancel.program_id == bindparam("program_id"),
    SubscriptionCancel.origin == bindparam("origin"),
    SubscriptionCancel.subscription_id.in_(bindparam("subs", expanding=True)))


def _fetch_subscriptions(s: Session, reads: BatchReads, subscriptions: set[str]) -> None:
    """Every payment and the cancellation of each subscription the batch's sales name."""
    if not subscriptions:
        return
    params = {"program_id": reads.program_id, "origin": reads.origin, "subs": sorted(subscriptions)}
    _all_of_each(reads.payments, subscriptions, s.exec(_PAYMENTS, params=params),
                 lambda c: c.subscription_id)
    _one_each(reads.cancels, subscriptions, s.exec(_CANCELS, params=params),
              lambda row: row.subscription_id)


# Two queries, each on its index: PostgreSQL plans "id IN (...) OR visitor_id IN (subquery)"
# as a scan of every click.
_CLICKS = select(Click).where(Click.id.in_(bindparam("ids", expanding=True)))
_HUMAN_CLICKS_OF_VISITORS = select(Click).where(
    Click.visitor_id.in_(bindparam("visitors", expanding=True)), Click.is_bot == False)  # noqa: E712
_PARTNERS_BY_KEY = select(Partner).where(Partner.program_id == bindparam("program_id"),
                                         Partner.key.in_(bindparam("keys", expanding=True)))
_PROMO_CODES = select(PromoCode).where(PromoCode.program_id == bindparam("program_id"),
                                       PromoCode.code_lower.in_(bindparam("codes", expanding=True)))
_LINKS = select(Link).where(Link.id.in_(bindparam("ids", expanding=True)))
_PARTNERS = select(Partner).where(Partner.id.in_(bindparam("ids", expanding=True)))
_TAGS = select(PartnerTag.partner_id, PartnerTag.tag).where(
    PartnerTag.partner_id.in_(bindparam("ids", expanding=True)))


def _fetch_referrals(s: Session, reads: BatchReads, click_ids: set[str], partner_keys: set[str],
                     codes: set[str]) -> set[str]:
    """The clicks with their visitors' human clicks, partners by ref and promo codes; returns
    the partner ids they name."""
    partner_ids: set[str] = set()
    if click_ids:
        by_id = {c.id: c for c in s.exec(_CLICKS, params={"ids": sorted(click_ids)})
                 if c.program_id == reads.program_id}
        visitors = sorted({c.visitor_id for c in by_id.values()})
        others = s.exec(_HUMAN_CLICKS_OF_VISITORS, params={"visitors": visitors}) if visitors else []
        rows = list({**by_id, **{c.id: c for c in others if c.program_id == reads.program_id}}.values())
        by_visitor: dict[str, list[Click]] = defaultdict(list)
        for c in rows:
            by_visitor[c.visitor_id].append(c)
        for click_id in click_ids:
            click = by_id.get(click_id)
            reads.visitor_clicks[click_id] = [] if click is None else [
                c for c in by_visitor[click.visitor_id] if c.id == click_id or not c.is_bot]
        partner_ids |= {c.partner_id for c in rows}
        links = sorted({c.link_id for c in rows if c.link_id})
        if links:  # the clicks themselves stay in `visitor_clicks`
            reads.held += s.exec(_LINKS, params={"ids": links}).all()
    program = {"program_id": reads.program_id}
    if partner_keys:
        _one_each(reads.partners_by_key, partner_keys, s.exec(
            _PARTNERS_BY_KEY, params={**program, "keys": sorted(partner_keys)}), lambda p: p.key)
    if codes:
        _one_each(reads.promo_codes, codes, s.exec(
            _PROMO_CODES, params={**program, "codes": sorted(codes)}), lambda p: p.code_lower)
    partner_ids |= {p.id for p in reads.partners_by_key.values() if p is not None}
    partner_ids |= {promo.partner_id for promo in reads.promo_codes.values() if promo is not None}
    return partner_ids


def _fetch_partners(s: Session, reads: BatchReads, partner_ids: set[str]) -> None:
    """The partners (found by `Session.get` from now on) and their tags."""
    if not partner_ids:
        return
    ids = sorted(partner_ids)
    reads.held += s.exec(_PARTNERS, params={"ids": ids}).all()
    reads.tags.update({pid: set() for pid in ids})
    for partner_id, tag in s.exec(_TAGS, params={"ids": ids}):
        reads.tags[partner_id].add(tag)


_FLOOD_COLUMNS = (Click.id, Click.partner_id, Click.visitor_id, Click.ip_hash, Click.created_at)
_IN_WINDOW = (Click.created_at >= bindparam("since"), Click.created_at <= bindparam("until"))
_FLOOD_BY_VISITOR = select(*_FLOOD_COLUMNS).where(
    Click.visitor_id.in_(bindparam("visitors", expanding=True)), *_IN_WINDOW)
_FLOOD_BY_DEVICE = select(*_FLOOD_COLUMNS).where(
    Click.partner_id.in_(bindparam("partners", expanding=True)),
    Click.ip_hash.in_(bindparam("devices", expanding=True)), *_IN_WINDOW)


def _fetch_flood(s: Session, reads: BatchReads, since: datetime, until: datetime) -> FloodWindow:
    """The clicks the click-flood rule counts for the batch's clicks: by the same visitor
    (bots included) and by the same device, for the clicks' partners, in the batch's window."""
    clicks = [c for cs in reads.visitor_clicks.values() for c in cs]
    partners = {c.partner_id for c in clicks}
    visitors = {c.visitor_id for c in clicks}
    devices = {c.ip_hash for c in clicks if c.ip_hash}
    window = {"since": since, "until": until}
    found: dict[Any, tuple[str, str, str | None, datetime]] = {}
    rows = list(s.exec(_FLOOD_BY_VISITOR, params={**window, "visitors": sorted(visitors)}))
    if devices:
        rows += s.exec(_FLOOD_BY_DEVICE, params={**window, "partners": sorted(partners),
                                                 "devices": sorted(devices)}).all()
    for row in rows:  # a click found both ways counts once
        found[row[0]] = tuple(row[1:])  # type: ignore[assignment]
    return FloodWindow(since, until, partners, visitors, devices, list(found.values()))
