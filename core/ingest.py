"""One entry point for every conversion: `apply(ctx, events)`.

The track API and every connector hand their events (core.events) to `apply`, in one database
transaction. It upserts the conversion by (origin, external id), gathers the referral evidence,
asks `core.attribution` who gets credit, asks `core.commissions` what it earns, and reconciles the
ledger to that (`core.ledger`). Refunds, disputes and cancellations are stored as reported
(`Adjustment`) and the commission is recomputed from all of them, so any arrival order and any
number of replays give the same result.
"""
from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, text
from sqlmodel import Session, select

from core import events as ev
from core import outbox
from core.batch_reads import BatchReads, clean_email, customer_key, fetch
from core.attribution import Attribution, Inherited, Rules, Touch, attribute
from core.commissions import Rule, after_refunds, base_commission, in_duration, pick_rule
from core.connectors import Connector, SourceContext
from core.fraud.review import hold_status, review_credit
from core.fraud.settings import rules_of
from core.ids import new_id
from core.ledger import Balances, after_entries, conversion_balances, reconcile, status_of_earning
from core.models import (
    Adjustment, Click, Conversion, ConversionAlias, Customer, Link, Partner, PartnerTag, Program,
    PromoCode, Reward, Source, SubscriptionCancel, Touch as TouchRow,
)


DISPUTE_RANK = {"open": 0, "lost": 1, "won": 2}


# --- the statements every sale runs, built once ------------------------------------------------
# Building a statement and computing its cache key costs more than SQLite running it; these run
# for every delivery, so they are built here with bound parameters (`_in` lists expand).

def _p(name: str, expanding: bool = False) -> Any:
    return bindparam(name, expanding=expanding)


_SAME_ORIGIN_CONVERSIONS = select(Conversion).where(
    Conversion.program_id == _p("program_id"), Conversion.origin == _p("origin"),
    Conversion.external_id.in_(_p("refs", True)))
_CONVERSIONS_BY_REF = {False: _SAME_ORIGIN_CONVERSIONS,
                       True: _SAME_ORIGIN_CONVERSIONS.with_for_update()}
_ALIASES_BY_REF = select(ConversionAlias).where(
    ConversionAlias.program_id == _p("program_id"), ConversionAlias.origin == _p("origin"),
    ConversionAlias.alias.in_(_p("refs", True)))
_ALIASES_OF_ORDER = select(ConversionAlias).where(
    ConversionAlias.program_id == _p("program_id"), ConversionAlias.origin == _p("origin"),
    or_(ConversionAlias.order_ref == _p("order_ref"), ConversionAlias.alias.in_(_p("refs", True))))
_CUSTOMER = select(Customer).where(Customer.program_id == _p("program_id"),
                                   Customer.external_id == _p("external_id"))
_CREDITED_BY_EMAIL = select(Customer).where(
    Customer.program_id == _p("program_id"), Customer.email == _p("email"),
    Customer.partner_id.is_not(None)).order_by(Customer.attributed_at).limit(1)
_WAITING_ADJUSTMENTS = select(Adjustment).where(
    Adjustment.program_id == _p("program_id"), Adjustment.origin == _p("origin"),
    Adjustment.order_ref.in_(_p("refs", True)), Adjustment.conversion_id.is_(None))
# The click and its visitor's other human clicks; the program is checked in Python, which keeps
# the plan on the id and visitor indexes.
_VISITOR_CLICKS = select(Click).where(or_(
    Click.id == _p("click_id"),
    and_(Click.visitor_id == select(Click.visitor_id).where(Click.id == _p("click_id"))
         .scalar_subquery(), Click.is_bot == False)))  # noqa: E712
_PARTNER_TAGS = select(PartnerTag.tag).where(PartnerTag.partner_id == _p("partner_id"))
_CUSTOMER_TOUCHES = select(TouchRow).where(TouchRow.customer_id == _p("customer_id"))
_ADJUSTMENTS = select(Adjustment).where(Adjustment.conversion_id == _p("conversion_id"))
# A subscription's payments (renewals): its first credited payment, its first payment at all.
_SUBSCRIPTION = and_(Conversion.program_id == _p("program_id"), Conversion.origin == _p("origin"),
                     Conversion.subscription_id == _p("subscription_id"))
_FIRST_CREDITED_PAYMENT = select(Conversion).where(
    _SUBSCRIPTION, Conversion.id != _p("conversion_id"), Conversion.occurred_at < _p("before"),
    Conversion.partner_id.is_not(None)).order_by(Conversion.occurred_at).limit(1)
_FIRST_PAYMENT_AT = select(func.min(Conversion.occurred_at)).where(_SUBSCRIPTION)
_EARLIER_PAYMENT = select(Conversion.id).where(
    _SUBSCRIPTION, Conversion.kind == "sale", Conversion.occurred_at < _p("before")).limit(1)


@dataclass
class IngestContext:
    """Where the events come from. `origin` namespaces external ids: a source id, or "api"."""

    session: Session
    program: Program
    origin: str
    platform: str
    source: Source | None = None
    connector: Connector | None = None
    source_ctx: SourceContext | None = None
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    _rules: list[Rule] | None = None
    # Ledger balances of the conversions created in this transaction, kept current by `settle`:
    # nobody else can have posted to them, so reading them back would only cost queries.
    balances: dict[str, dict[tuple[str, str], Balances]] = field(default_factory=dict)
    # Customers created in this transaction and the touches recorded for them since: the
    # database holds nothing else about them.
    fresh_customers: dict[str, list[TouchRow]] = field(default_factory=dict)
    # Clicks read in this transaction (the session's identity map holds them only weakly).
    clicks: dict[str, Click | None] = field(default_factory=dict)
    # Conversions created in this transaction, and partners' tags read in it.
    created: dict[str, Conversion] = field(default_factory=dict)
    tags: dict[str, set[str]] = field(default_factory=dict)
    locked: bool = False
    # What the events being applied will read, fetched at once (`prepare`, core.batch_reads).
    reads: BatchReads | None = None

    def partner_tags(self, partner_id: str) -> set[str]:
        if partner_id not in self.tags:
            self.tags[partner_id] = set(self.session.exec(_PARTNER_TAGS,
                                                          params={"partner_id": partner_id}))
        return self.tags[partner_id]

    @property
    def rules(self) -> Rules:
        p = self.program
        return Rules(p.attribution_model, p.attribution_window_days, p.promo_code_priority)

    def reward_rules(self) -> list[Rule]:
        if self._rules is None:
            rows = self.session.exec(select(Reward).where(Reward.program_id == self.program.id))
            self._rules = [Rule(r.id, r.event, r.type, Decimal(r.value), r.duration_months,
                                r.partner_tag, r.created_at) for r in rows]
        return self._rules


def lock_origin(ctx: IngestContext) -> None:
    """Serialise writers of one origin (source or API) for this transaction.

    A refund may name a charge while its sale names the invoice: only after both are stored can
    they be matched, so two workers applying them at once could each miss the other. On SQLite the
    write transaction (BEGIN IMMEDIATE) already serialises; on PostgreSQL a transaction-scoped
    advisory lock per (program, origin) does, leaving other sources and programs in parallel.
    """
    if ctx.locked:
        return
    ctx.locked = True
    bind = ctx.session.get_bind()
    if bind.dialect.name == "postgresql":
        digest = hashlib.blake2b(f"{ctx.program.id}|{ctx.origin}".encode(), digest_size=8).digest()
        key = int.from_bytes(digest, "big", signed=True)
        ctx.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def prepare(ctx: IngestContext, events: list[ev.Event]) -> None:
    """Fetch, with one query per table, what `events` will read (core.batch_reads): the inbox
    calls it once for a whole batch of deliveries, `apply` for its own events otherwise."""
    lock_origin(ctx)
    ctx.reward_rules()
    fraud = rules_of(ctx.program)
    window = timedelta(minutes=fraud.click_flood_window_minutes) if fraud.click_flood else None
    ctx.reads = fetch(ctx.session, ctx.program.id, ctx.origin, events, window)
    ctx.tags.update(ctx.reads.tags)


def apply(ctx: IngestContext, events: list[ev.Event], flush: bool = True) -> list[Conversion]:
    """Apply events in order; returns the conversions they touched. `flush=False` leaves the
    writes pending, for the inbox to write a whole batch's with one flush."""
    lock_origin(ctx)
    if ctx.reads is None:
        prepare(ctx, events)
    touched: list[Conversion] = []
    for event in events:
        handler = HANDLERS.get(type(event))
        if handler is None:
            raise TypeError(f"not a core event: {event!r}")
        touched += handler(ctx, event)
    if flush:
        ctx.session.flush()
    return touched


# --- lookups -------------------------------------------------------------------------------------

def find_conversion(ctx: IngestContext, ref: str, lock: bool = True) -> Conversion | None:
    return find_conversion_by_refs(ctx, [ref], lock)


def find_conversion_by_refs(ctx: IngestContext, refs: list[str], lock: bool = True,
                            _seen: frozenset[str] = frozenset()) -> Conversion | None:
    """The conversion any of `refs` names, directly or through a learned alias; the first ref
    that names one wins. Two queries for all the refs, rather than two per ref."""
    s, reads = ctx.session, ctx.reads
    refs = [ref for ref in dict.fromkeys(refs) if ref and ref not in _seen]
    if not refs:
        return None
    if reads is not None and reads.covers_refs(refs):
        direct = {ref: c for ref in refs if (c := reads.conversions[ref]) is not None}
        aliases = {ref: reads.alias_to_order[ref] for ref in refs if ref in reads.alias_to_order}
    else:
        params = {"program_id": ctx.program.id, "origin": ctx.origin, "refs": refs}
        direct = {c.external_id: c for c in s.exec(_CONVERSIONS_BY_REF[lock], params=params)}
        aliases = {a.alias: a.order_ref for a in s.exec(_ALIASES_BY_REF, params=params)}
    seen = _seen | set(refs)
    for ref in refs:
        if ref in direct:
            return direct[ref]
        target = aliases.get(ref)
        if target is not None and target not in seen:
            conv = find_conversion_by_refs(ctx, [target], lock, seen)
            if conv is not None:
                return conv
    return None


def learn_aliases(ctx: IngestContext, order_id: str, aliases: tuple[str, ...] | list[str]) -> list[str]:
    """Record that `aliases` name the order `order_id`; returns every id of the order."""
    s, reads = ctx.session, ctx.reads
    wanted = [a for a in dict.fromkeys(aliases) if a and a != order_id]
    if reads is not None and reads.covers_refs([order_id, *wanted]):
        pairs = [(a, reads.alias_to_order[a]) for a in wanted if a in reads.alias_to_order]
        pairs += [(a, order_id) for a in reads.aliases_of.get(order_id, [])]
    else:
        pairs = [(row.alias, row.order_ref) for row in s.exec(_ALIASES_OF_ORDER, params={
            "program_id": ctx.program.id, "origin": ctx.origin, "order_ref": order_id,
            "refs": wanted})]
    stored = {alias for alias, _ in pairs}
    known = list(dict.fromkeys(alias for alias, order in pairs if order == order_id))
    for alias in wanted:
        if alias not in stored:
            s.add(ConversionAlias(program_id=ctx.program.id, origin=ctx.origin, alias=alias,
                                  order_ref=order_id))
            if reads is not None:
                reads.alias_learned(alias, order_id)
            known.append(alias)
    return [order_id, *known]


def customer_for(ctx: IngestContext, customer_id: str | None, email: str | None) -> Customer | None:
    """The customer by the platform's id (namespaced by origin), else by email; created if new."""
    s, reads = ctx.session, ctx.reads
    email = clean_email(email)
    external = customer_key(ctx.origin, customer_id, email)
    if external is None:
        return None
    if reads is not None and external in reads.customers:
        cust = reads.customers[external]
    else:
        cust = s.exec(_CUSTOMER, params={"program_id": ctx.program.id,
                                         "external_id": external}).first()
    if cust is None:
        cust = Customer(id=new_id("cus"), program_id=ctx.program.id, external_id=external,
                        email=email)
        s.add(cust)  # written by the next flush, before its conversion (`Conversion.customer`)
        ctx.fresh_customers[cust.id] = []
    if reads is not None:  # every customer the batch may change is then one `reads` knows
        reads.customer_found(external, cust)
    if email and not cust.email:
        cust.email = email
        s.add(cust)
    return cust


def _click(ctx: IngestContext, click_id: str) -> Click | None:
    if click_id not in ctx.clicks:
        click = ctx.session.get(Click, click_id)
        ctx.clicks[click_id] = click if click is not None and click.program_id == ctx.program.id else None
    return ctx.clicks[click_id]


def _visitor_clicks(ctx: IngestContext, click_id: str) -> list[Click]:
    """The click and the other human clicks of its visitor, in one query. The program is
    checked here rather than in SQL, which keeps the plan on the id and visitor indexes."""
    if ctx.reads is not None and click_id in ctx.reads.visitor_clicks:
        rows = ctx.reads.visitor_clicks[click_id]
    else:
        rows = [c for c in ctx.session.exec(_VISITOR_CLICKS, params={"click_id": click_id}).all()
                if c.program_id == ctx.program.id]
    for c in rows:
        ctx.clicks[c.id] = c
    click = next((c for c in rows if c.id == click_id), None)
    ctx.clicks[click_id] = click
    if click is None:
        return []
    return [c for c in rows if not c.is_bot] or [click]


def gather_touches(ctx: IngestContext, referral: ev.Referral, at: datetime,
                   customer: Customer | None) -> list[Touch]:
    """The evidence for one conversion: its hints (a click and the earlier clicks of the same
    visitor, a ref, promo codes) plus what was recorded for the customer before. New hints are
    recorded for the customer so later conversions and the what-if replay see them."""
    s, reads = ctx.session, ctx.reads
    new: list[Touch] = []
    if referral.click_id:
        for c in _visitor_clicks(ctx, referral.click_id):
            new.append(Touch("click", c.partner_id, c.created_at, c.id, evidence=referral.evidence))
    if referral.ref:
        if reads is not None and referral.ref in reads.partners_by_key:
            partner = reads.partners_by_key[referral.ref]
        else:
            partner = s.exec(select(Partner).where(Partner.program_id == ctx.program.id,
                                                   Partner.key == referral.ref)).first()
        if partner is not None:
            new.append(Touch("ref", partner.id, at, evidence=referral.evidence))
    codes = list(dict.fromkeys(c.strip().lower() for c in referral.promo_codes if c and c.strip()))
    if codes:
        if reads is not None and all(c in reads.promo_codes for c in codes):
            promos = [p for c in codes if (p := reads.promo_codes[c]) is not None]
        else:
            promos = list(s.exec(select(PromoCode).where(PromoCode.program_id == ctx.program.id,
                                                         PromoCode.code_lower.in_(codes))))
        for promo in promos:
            new.append(Touch("promo_code", promo.partner_id, at, code=promo.code,
                             evidence=referral.evidence))
    old: list[Touch] = []
    if customer is not None:
        fresh = ctx.fresh_customers.get(customer.id)
        if fresh is None and reads is not None:  # an earlier customer's, fetched with the batch
            fresh = reads.touches.get(customer.id)
        rows = fresh if fresh is not None else \
            s.exec(_CUSTOMER_TOUCHES, params={"customer_id": customer.id}).all()
        seen = {(r.kind, r.click_id, r.code, r.partner_id) for r in rows}
        old = [Touch(r.kind, r.partner_id, r.at, r.click_id, r.code, r.evidence)
               for r in rows if r.kind != "promo_code"]
        for t in new:
            if (t.kind, t.click_id, t.code, t.partner_id) not in seen:
                seen.add((t.kind, t.click_id, t.code, t.partner_id))
                row = TouchRow(program_id=ctx.program.id, customer_id=customer.id,
                               partner_id=t.partner_id, kind=t.kind, click_id=t.click_id,
                               code=t.code, evidence=t.evidence, at=t.at)
                s.add(row)
                if fresh is not None:
                    fresh.append(row)
    by_key = {(t.kind, t.click_id, t.code, t.partner_id, t.at): t for t in old + new}
    return list(by_key.values())


def inherited_for(ctx: IngestContext, conv: Conversion, customer: Customer | None,
                  email: str | None) -> Inherited | None:
    """Attribution fixed earlier: the subscription's first payment, or the customer's partner
    (by id, or by email for a customer first seen as a lead under another id)."""
    s, reads = ctx.session, ctx.reads
    if conv.subscription_id:
        if reads is not None and conv.subscription_id in reads.payments:
            first = min((c for c in reads.subscription_payments(conv.subscription_id)
                         if c.id != conv.id and c.occurred_at < conv.occurred_at
                         and c.partner_id is not None), key=lambda c: c.occurred_at, default=None)
        else:
            first = s.exec(_FIRST_CREDITED_PAYMENT, params={
                "program_id": ctx.program.id, "origin": ctx.origin,
                "subscription_id": conv.subscription_id, "conversion_id": conv.id,
                "before": conv.occurred_at}).first()
        if first is not None:
            return Inherited(first.partner_id, "subscription",
                             f"payment of subscription {conv.subscription_id}, first credited "
                             f"on {first.external_id}", first.click_id)
    if customer is not None and customer.partner_id and (
            customer.attributed_at is None or customer.attributed_at <= conv.occurred_at):
        return Inherited(customer.partner_id, "customer", "customer already credited to this "
                         "partner", (customer.attribution or {}).get("click_id"))
    email = clean_email(email or (customer.email if customer else None))
    if email:
        if reads is not None and email in reads.credited:
            other = reads.credited_by_email(email)
        else:
            other = s.exec(_CREDITED_BY_EMAIL, params={"program_id": ctx.program.id,
                                                       "email": email}).first()
        if other is not None:
            return Inherited(other.partner_id, "customer",
                             "an earlier lead or customer with the same email was credited",
                             (other.attribution or {}).get("click_id"), "email")
    return None


# --- crediting and settling ------------------------------------------------------------------------

def credit(ctx: IngestContext, conv: Conversion, att: Attribution,
           customer: Customer | None) -> None:
    """Record who gets credit and what the reward rule gives on the full amount."""
    s = ctx.session
    review_credit(ctx, conv, att, customer)  # fraud rules may hold it for an admin (core.fraud)
    conv.attribution = att.as_dict()
    conv.partner_id = att.partner_id
    conv.click_id = att.click_id
    if att.click_id:
        click = _click(ctx, att.click_id)
        if click is not None:
            link = s.get(Link, click.link_id) if click.link_id else None
            conv.campaign = click.campaign or (link.campaign if link else None) or click.utm_campaign
    if att.partner_id is None:
        conv.reward_id, conv.commission_base = None, 0
        conv.commission_currency = ctx.program.currency
        return
    if customer is not None and (customer.partner_id is None or (
            customer.attributed_at is not None and conv.occurred_at < customer.attributed_at
            and att.touch not in ("customer", "subscription"))):
        changed = customer.partner_id != att.partner_id
        customer.partner_id = att.partner_id
        customer.attribution = att.as_dict()
        customer.attributed_at = conv.occurred_at
        s.add(customer)
        if changed:  # the platform's record only needs writing when the partner changes
            _write_back(ctx, customer, att)
    rule = pick_rule(ctx.reward_rules(), conv.kind, conv.event, ctx.partner_tags(att.partner_id))
    first_at = None
    if conv.subscription_id:
        reads = ctx.reads
        if reads is not None and conv.subscription_id in reads.payments:
            earliest = min((c.occurred_at for c in reads.subscription_payments(conv.subscription_id)),
                           default=None)
        else:
            earliest = s.exec(_FIRST_PAYMENT_AT, params={
                "program_id": ctx.program.id, "origin": ctx.origin,
                "subscription_id": conv.subscription_id}).first()
        # The conversion itself counts, whether or not it has been written yet.
        first_at = min(earliest, conv.occurred_at) if earliest is not None else conv.occurred_at
    if rule is None or not in_duration(rule, conv.renewal, first_at, conv.occurred_at):
        conv.reward_id = rule.id if rule else None
        conv.commission_base, conv.commission_currency = 0, ctx.program.currency
        return
    conv.reward_id = rule.id
    if rule.type == "flat":
        conv.commission_base, conv.commission_currency = base_commission(rule, 0), ctx.program.currency
    elif conv.currency == ctx.program.currency:
        conv.commission_base, conv.commission_currency = base_commission(rule, conv.amount), conv.currency
    elif conv.amount_program is not None:
        conv.commission_base = base_commission(rule, conv.amount_program)
        conv.commission_currency = ctx.program.currency
    else:
        # Never converted at a guessed rate: the partner earns in the sale's own currency.
        conv.commission_base, conv.commission_currency = base_commission(rule, conv.amount), conv.currency


def _write_back(ctx: IngestContext, customer: Customer, att: Attribution) -> None:
    if ctx.connector is None or ctx.connector.write_back is None or ctx.source_ctx is None:
        return
    if not ctx.source_ctx.credentials:
        return
    partner = ctx.session.get(Partner, att.partner_id)
    platform_id = customer.external_id.split(":", 1)[1]
    if platform_id.startswith("email:") or partner is None:
        return
    connector, source_ctx, key, click_id = ctx.connector, ctx.source_ctx, partner.key, att.click_id

    def run() -> None:
        connector.write_back(source_ctx, platform_id, key, click_id)  # type: ignore[misc]

    ctx.after_commit.append(run)


def settle(ctx: IngestContext, conv: Conversion, adjustments: list[Adjustment] | None = None) -> None:
    """Recompute the commission from the credited amount and every adjustment; post the difference.
    `adjustments`: all of the conversion's, when the caller has them (a new conversion's are the
    ones that waited for it)."""
    s = ctx.session
    adjs = adjustments if adjustments is not None else \
        s.exec(_ADJUSTMENTS, params={"conversion_id": conv.id}).all()
    paid = conv.paid_total or conv.amount
    totals = [a.amount or 0 for a in adjs if a.kind == "refund_total"]
    summed = sum(paid if a.amount is None else a.amount for a in adjs if a.kind == "refund")
    refunded = min(paid, max([summed, *totals])) if paid else 0
    conv.refunded = refunded
    disputes = [a.status for a in adjs if a.kind == "chargeback"]
    canceled = any(a.kind == "cancel" for a in adjs)
    sub_stopped = False
    if conv.subscription_id:  # any payment dated after its subscription's cancellation
        if ctx.reads is not None and conv.subscription_id in ctx.reads.cancels:
            stop = ctx.reads.cancels[conv.subscription_id]
        else:
            stop = s.get(SubscriptionCancel, (ctx.program.id, ctx.origin, conv.subscription_id))
        sub_stopped = stop is not None and stop.canceled_at < conv.occurred_at
    if canceled or "lost" in disputes or sub_stopped or (paid and refunded >= paid):
        target, status = 0, "reversed"
    elif "open" in disputes:
        target, status = 0, "held"
    else:
        target = after_refunds(conv.commission_base, paid, refunded)
        status = "partially_refunded" if refunded else ""
    if hold := hold_status(conv, status):  # held or rejected by a fraud review: earns nothing
        target, status = 0, hold
    before = ctx.balances.get(conv.id)
    if before is None:
        before = conversion_balances(s, conv.id)
    posted = reconcile(s, program_id=ctx.program.id, conversion_id=conv.id,
                       partner_id=conv.partner_id, currency=conv.commission_currency or ctx.program.currency,
                       target=target, balances=before)
    balances = after_entries(before, posted)
    if conv.id in ctx.balances:
        ctx.balances[conv.id] = balances
    conv.commission = target
    if not status:
        bal = balances.get((conv.partner_id or "", conv.commission_currency), None)
        status = status_of_earning(bal) if bal is not None else "pending"
    conv.status = status
    s.add(conv)


def follow_earlier(ctx: IngestContext, conv: Conversion, customer: Customer | None) -> list[Conversion]:
    """An earlier payment arrived after later ones: the later payments of its subscription and
    of its customer follow it, as they would have had it arrived first."""
    if conv.partner_id is None or conv.attribution is None or \
            conv.attribution.get("touch") in ("customer", "subscription"):
        return []
    conds = []
    if conv.subscription_id:
        conds.append(Conversion.subscription_id == conv.subscription_id)
    if customer is not None:
        conds.append(Conversion.customer_id == customer.id)
    if not conds:
        return []
    if customer is not None and customer.id in ctx.fresh_customers and not conv.subscription_id \
            and not any(c.customer_id == customer.id for c in ctx.created.values() if c is not conv):
        return []  # a customer first seen now has no other payment to follow this one
    touched = []
    for later in ctx.session.exec(select(Conversion).where(
            Conversion.program_id == ctx.program.id, Conversion.origin == ctx.origin,
            Conversion.occurred_at > conv.occurred_at, Conversion.id != conv.id,
            or_(*conds)).order_by(Conversion.occurred_at).with_for_update()).all():
        touch = "subscription" if conv.subscription_id and later.subscription_id == conv.subscription_id \
            else "customer"
        if later.partner_id == conv.partner_id and (later.attribution or {}).get("touch") == touch:
            continue
        if touch == "subscription":
            later.renewal = True  # a later payment of the subscription, whatever arrived first
        att = Attribution(conv.partner_id, ctx.rules.model, touch,
                          f"follows {conv.external_id}, an earlier payment credited to this partner",
                          conv.click_id)
        credit(ctx, later, att, None)
        settle(ctx, later)
        touched.append(later)
    return touched


def _attach_waiting(ctx: IngestContext, conv: Conversion, refs: list[str]) -> list[Adjustment]:
    """Adjustments that arrived before their sale, keyed by any of its ids, now belong to it."""
    reads = ctx.reads
    if reads is not None and reads.covers_refs(refs):
        waiting = [a for ref in dict.fromkeys(refs) for a in reads.waiting.get(ref, [])
                   if a.conversion_id is None]
    else:
        waiting = ctx.session.exec(_WAITING_ADJUSTMENTS, params={
            "program_id": ctx.program.id, "origin": ctx.origin, "refs": refs}).all()
    for adj in waiting:
        adj.conversion_id = conv.id
        ctx.session.add(adj)
    return list(waiting)


# --- handlers ----------------------------------------------------------------------------------------

def _new_conversion(ctx: IngestContext, *, kind: str, event: str, external_id: str,
                    occurred_at: datetime, customer: Customer | None, referral: ev.Referral,
                    **values: Any) -> Conversion:
    conv = Conversion(id=new_id("cnv"), program_id=ctx.program.id, origin=ctx.origin,
                      source_id=ctx.source.id if ctx.source else None, platform=ctx.platform,
                      kind=kind, event=event, external_id=external_id, occurred_at=occurred_at,
                      customer_id=customer.id if customer else None,
                      currency=values.pop("currency", ctx.program.currency),
                      hints={k: v for k, v in {
                          "click_id": referral.click_id, "ref": referral.ref,
                          "promo_codes": list(referral.promo_codes) or None,
                          "evidence": referral.evidence}.items() if v},
                      **values)
    ctx.session.add(conv)  # written by the next flush, with the values decided by then
    ctx.balances[conv.id] = {}
    ctx.created[conv.id] = conv
    if ctx.reads is not None:
        ctx.reads.conversion_created(conv)
    outbox.conversion_created(ctx.session, conv)  # conversion.created, in this transaction
    return conv


def _decide(ctx: IngestContext, conv: Conversion, customer: Customer | None,
            referral: ev.Referral, email: str | None, sale: ev.Sale | None = None) -> None:
    touches = gather_touches(ctx, referral, conv.occurred_at, customer)
    att = attribute(conv.occurred_at, touches, ctx.rules, inherited_for(ctx, conv, customer, email))
    if att.partner_id is None and sale is not None and ctx.connector is not None \
            and ctx.connector.lookup_referral is not None and ctx.source_ctx is not None:
        more = ctx.connector.lookup_referral(ctx.source_ctx, sale)
        if more is not None and not more.is_empty():
            conv.hints = {**conv.hints, "lookup": {"click_id": more.click_id, "ref": more.ref,
                                                   "promo_codes": list(more.promo_codes),
                                                   "evidence": more.evidence}}
            att = attribute(conv.occurred_at, touches + gather_touches(ctx, more, conv.occurred_at,
                                                                       customer), ctx.rules)
    credit(ctx, conv, att, customer)


def on_sale(ctx: IngestContext, e: ev.Sale) -> list[Conversion]:
    s = ctx.session
    conv = find_conversion_by_refs(ctx, [e.order_id, *e.aliases])
    customer = customer_for(ctx, e.customer_id, e.email or e.referral.email)
    if conv is None:
        # After a free trial the first paid invoice looks like a renewal; with no earlier payment
        # of the subscription on record it is the first payment (one-time rewards apply).
        renewal = e.renewal and e.subscription_id is not None and _earlier_payment(
            ctx, e.subscription_id, e.occurred_at)
        program_amount = (e.amount_in_program_currency.amount
                          if e.amount_in_program_currency is not None else None)
        # Decided from what `prepare` fetched, a new sale asks the database nothing: its
        # customer, touches, aliases, ledger entries and final values wait for the flush at the
        # end of the batch. A question it does ask (a key not fetched) first flushes what is
        # pending, so it sees everything written before it.
        conv = _new_conversion(
            ctx, kind="sale", event=e.event, external_id=e.order_id,
            occurred_at=e.occurred_at, customer=customer, referral=e.referral,
            currency=e.amount.currency, amount=e.amount.amount,
            paid_total=e.paid_total.amount if e.paid_total is not None else e.amount.amount,
            amount_program=program_amount, subscription_id=e.subscription_id,
            renewal=renewal, payment_fingerprint=e.payment_fingerprint)
        refs = learn_aliases(ctx, conv.external_id, [e.order_id, *e.aliases])
        waiting = _attach_waiting(ctx, conv, refs)
        _decide(ctx, conv, customer, e.referral, e.email or e.referral.email, e)
        settle(ctx, conv, waiting)
        return [conv, *follow_earlier(ctx, conv, customer)]
    # The same payment again, perhaps with what the first notice lacked (a subscription id,
    # a customer, referral evidence): fill the gaps, never overwrite.
    if conv.customer_id is None and customer is not None:
        conv.customer_id = customer.id
    if conv.subscription_id is None and e.subscription_id:
        conv.subscription_id = e.subscription_id
    if conv.partner_id is None and not e.referral.is_empty():
        _decide(ctx, conv, customer, e.referral, e.email, e)
    refs = learn_aliases(ctx, conv.external_id, [e.order_id, *e.aliases])
    _attach_waiting(ctx, conv, refs)
    ctx.session.flush()
    settle(ctx, conv)
    return [conv, *follow_earlier(ctx, conv, customer)]


def _earlier_payment(ctx: IngestContext, subscription_id: str, before: datetime) -> bool:
    reads = ctx.reads
    if reads is not None and subscription_id in reads.payments:
        return any(c.kind == "sale" and c.occurred_at < before
                   for c in reads.subscription_payments(subscription_id))
    return ctx.session.exec(_EARLIER_PAYMENT, params={
        "program_id": ctx.program.id, "origin": ctx.origin, "subscription_id": subscription_id,
        "before": before}).first() is not None


def on_lead(ctx: IngestContext, e: ev.Lead) -> list[Conversion]:
    external = f"lead:{e.event}:{e.customer_id}"
    conv = find_conversion(ctx, external)
    customer = customer_for(ctx, e.customer_id, e.email or e.referral.email)
    if conv is None:
        conv = _new_conversion(ctx, kind="lead", event=e.event, external_id=external,
                               occurred_at=e.occurred_at, customer=customer, referral=e.referral)
        _decide(ctx, conv, customer, e.referral, e.email)
    elif conv.partner_id is None and not e.referral.is_empty():
        _decide(ctx, conv, customer, e.referral, e.email)
    settle(ctx, conv)
    return [conv]


def on_identify(ctx: IngestContext, e: ev.Identify) -> list[Conversion]:
    """Late evidence: credit the customer's (or subscription's, or order's) uncredited conversions."""
    s = ctx.session
    touched: list[Conversion] = []
    if e.order_id and e.aliases:
        refs = learn_aliases(ctx, e.order_id, e.aliases)
        conv = find_conversion(ctx, e.order_id)
        if conv is not None:
            _attach_waiting(ctx, conv, refs)
            s.flush()
            settle(ctx, conv)
            touched.append(conv)
    customer = customer_for(ctx, e.customer_id, e.email or e.referral.email)
    touches = gather_touches(ctx, e.referral, e.occurred_at, customer)
    locked = customer is not None and customer.partner_id is not None and (
        customer.attributed_at is None or customer.attributed_at <= e.occurred_at)
    att = attribute(e.occurred_at, touches, ctx.rules,
                    Inherited(customer.partner_id, "customer", "customer already credited")
                    if locked else None)
    if att.partner_id is None:
        return touched
    # Evidence dated before the customer's current credit (a trial checkout delivered after a
    # renewal): it is the first touch, so the customer and its payments since then follow it.
    earlier = customer is not None and customer.partner_id is not None and not locked
    conds = []
    if customer is not None:
        conds.append(Conversion.customer_id == customer.id)
    if e.subscription_id:
        conds.append(Conversion.subscription_id == e.subscription_id)
    if e.order_id:
        conds.append(Conversion.external_id == e.order_id)
    if customer is not None and (customer.partner_id is None or earlier):
        changed = customer.partner_id != att.partner_id
        customer.partner_id, customer.attribution = att.partner_id, att.as_dict()
        customer.attributed_at = e.occurred_at
        s.add(customer)
        if changed:
            _write_back(ctx, customer, att)
    if not conds:
        return touched
    which = Conversion.occurred_at >= e.occurred_at if earlier else Conversion.partner_id.is_(None)
    for conv in s.exec(select(Conversion).where(
            Conversion.program_id == ctx.program.id, Conversion.origin == ctx.origin,
            which, or_(*conds)).order_by(Conversion.occurred_at)
            .with_for_update()).all():
        if conv.customer_id is None and customer is not None:
            conv.customer_id = customer.id
        credit(ctx, conv, att, customer)
        settle(ctx, conv)
        touched.append(conv)
    return touched


def _adjust(ctx: IngestContext, order_ref: str, kind: str, key: str, occurred_at: datetime,
            amount: int | None = None, currency: str | None = None,
            status: str | None = None) -> list[Conversion]:
    s = ctx.session
    adj = s.exec(select(Adjustment).where(
        Adjustment.program_id == ctx.program.id, Adjustment.origin == ctx.origin,
        Adjustment.kind == kind, Adjustment.key == key).with_for_update()).first()
    conv = find_conversion(ctx, order_ref)
    if adj is None:
        adj = Adjustment(program_id=ctx.program.id, origin=ctx.origin, order_ref=order_ref,
                         kind=kind, key=key, amount=amount, currency=currency, status=status,
                         occurred_at=occurred_at)
        if conv is None and ctx.reads is not None:
            ctx.reads.adjustment_waiting(adj)  # for its sale, should it come later in the batch
    elif kind == "refund_total" and amount is not None and (adj.amount or 0) < amount:
        adj.amount = amount  # a running total only grows; an older, smaller one changes nothing
    elif kind == "chargeback" and DISPUTE_RANK.get(status or "", 0) > DISPUTE_RANK.get(adj.status or "", 0):
        # open < lost < won: an outcome replaces "open", a reversal ("won" after "lost", as
        # Paddle's chargeback_reverse) replaces "lost"; a late lesser status never undoes either.
        adj.status = status
    else:
        return [conv] if conv is not None else []
    adj.conversion_id = conv.id if conv is not None else None
    s.add(adj)
    s.flush()
    if conv is None:
        return []
    settle(ctx, conv)
    return [conv]


def on_refund(ctx: IngestContext, e: ev.Refund) -> list[Conversion]:
    amount = e.amount.amount if e.amount is not None else None
    currency = e.amount.currency if e.amount is not None else None
    if e.cumulative:
        return _adjust(ctx, e.order_id, "refund_total", e.order_id, e.occurred_at, amount, currency)
    key = e.refund_id or f"auto:{uuid.uuid4()}"
    return _adjust(ctx, e.order_id, "refund", key, e.occurred_at, amount, currency)


def on_chargeback(ctx: IngestContext, e: ev.Chargeback) -> list[Conversion]:
    return _adjust(ctx, e.order_id, "chargeback", e.dispute_id, e.occurred_at,
                   e.amount.amount if e.amount else None,
                   e.amount.currency if e.amount else None, e.status)


def on_order_canceled(ctx: IngestContext, e: ev.OrderCanceled) -> list[Conversion]:
    return _adjust(ctx, e.order_id, "cancel", e.order_id, e.occurred_at)


def on_subscription_canceled(ctx: IngestContext, e: ev.SubscriptionCanceled) -> list[Conversion]:
    s = ctx.session
    if s.get(SubscriptionCancel, (ctx.program.id, ctx.origin, e.subscription_id)) is None:
        stop = SubscriptionCancel(program_id=ctx.program.id, origin=ctx.origin,
                                  subscription_id=e.subscription_id, canceled_at=e.occurred_at)
        s.add(stop)
        s.flush()
        if ctx.reads is not None and e.subscription_id in ctx.reads.cancels:
            ctx.reads.cancels[e.subscription_id] = stop
    touched = []
    for conv in s.exec(select(Conversion).where(
            Conversion.program_id == ctx.program.id, Conversion.origin == ctx.origin,
            Conversion.subscription_id == e.subscription_id,
            Conversion.occurred_at > e.occurred_at)).all():
        settle(ctx, conv)
        touched.append(conv)
    return touched


def on_source_disconnected(ctx: IngestContext, e: ev.SourceDisconnected) -> list[Conversion]:
    if ctx.source is not None:
        ctx.source.status = "disabled"
        ctx.session.add(ctx.source)
    return []


def on_data_request(ctx: IngestContext, e: ev.PersonalDataRequest) -> list[Conversion]:
    from core import privacy
    privacy.export(ctx, e)
    return []


def on_erasure(ctx: IngestContext, e: ev.PersonalDataErasure) -> list[Conversion]:
    from core import privacy
    privacy.erase(ctx, e)
    ctx.reads = None  # erasing changes rows behind what was fetched: the next events fetch anew
    return []


HANDLERS: dict[type, Callable[[IngestContext, Any], list[Conversion]]] = {
    ev.Sale: on_sale,
    ev.Lead: on_lead,
    ev.Identify: on_identify,
    ev.Refund: on_refund,
    ev.Chargeback: on_chargeback,
    ev.OrderCanceled: on_order_canceled,
    ev.SubscriptionCanceled: on_subscription_canceled,
    ev.SourceDisconnected: on_source_disconnected,
    ev.PersonalDataRequest: on_data_request,
    ev.PersonalDataErasure: on_erasure,
}
