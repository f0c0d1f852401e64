"""Arrival order never changes the commissions (hypothesis).

A journey is a subscription's first payment (with a partner's ref), its renewals, refunds (one at
a time, or a platform's running total), chargebacks with their outcomes, an order's cancellation
and the subscription's cancellation. Hypothesis draws journeys and arrival orders, including every
"adjustment before its sale" order; each event enters through `core.ingest.apply` in its own
transaction, as a webhook delivery would, in a fresh program. The final conversions (partner,
commission, status, refunded, renewal) and the ledger's net balance per conversion must equal those of
the same journey applied in its natural order.

The inbox applies deliveries in batches, deciding each from rows fetched once for the whole batch
(core.batch_reads) and writing them with one flush: a third variant cuts the shuffled events
into batches applied that way, and must give the same outcome.

The quick variant runs in `make test`; the `stress` one draws many more journeys.
(tests/core/web/test_webhooks.py keeps the hand-picked permutations through HTTP.)
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from core import events as ev
from core.db import get_db
from core.ingest import IngestContext, apply, prepare
from core.ledger import conversion_balances
from core.models import Conversion, Partner, Program
from core.money import Money
from core.partners import create_partner, create_reward
from core.programs import create_program
from core.schemas import PartnerIn, ProgramCreate, RewardIn
from tests.reliability import figures  # noqa: F401 - the fixture

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
SUB, CUSTOMER = "sub_1", "cus_1"


@dataclass(frozen=True)
class Journey:
    events: tuple[ev.Event, ...]
    reward_value: int
    duration_months: int | None


def _payment_id(i: int) -> str:
    return f"inv_{i}"


@st.composite
def journeys(draw: Any) -> Journey:
    renewals = draw(st.integers(0, 3))
    amount = draw(st.integers(1, 200_000))
    tax = draw(st.integers(0, amount // 4))
    events: list[ev.Event] = []
    payments = []
    for i in range(renewals + 1):
        pid = _payment_id(i)
        at = T0 + timedelta(days=31 * i)
        payments.append((pid, at))
        events.append(ev.Sale(
            order_id=pid, amount=Money(amount, "USD"), paid_total=Money(amount + tax, "USD"),
            occurred_at=at, customer_id=CUSTOMER, subscription_id=SUB, renewal=i > 0,
            aliases=(f"ch_{i}",),
            referral=ev.Referral(ref="ann", evidence="test") if i == 0 else ev.NO_REFERRAL))
    paid = amount + tax
    for n in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, renewals))
        ref = draw(st.sampled_from([_payment_id(i), f"ch_{i}"]))  # by the order or an alias
        value = draw(st.one_of(st.none(), st.integers(1, paid)))
        events.append(ev.Refund(order_id=ref, refund_id=f"re_{n}", occurred_at=payments[i][1],
                                amount=Money(value, "USD") if value else None))
    for i in draw(st.sets(st.integers(0, renewals), max_size=2)):
        totals = sorted(draw(st.lists(st.integers(1, paid), min_size=1, max_size=3)))
        for total in totals:  # a running total, reported several times as it grows
            events.append(ev.Refund(order_id=f"ch_{i}", occurred_at=payments[i][1],
                                    amount=Money(total, "USD"), cumulative=True))
    for n, i in enumerate(draw(st.lists(st.integers(0, renewals), max_size=2))):
        outcomes = draw(st.sampled_from([("open",), ("open", "won"), ("open", "lost"), ("lost",),
                                         ("won",), ("open", "lost", "won")]))
        for status in outcomes:
            events.append(ev.Chargeback(order_id=f"ch_{i}", dispute_id=f"dp_{n}",
                                        status=status, occurred_at=payments[i][1]))
    if draw(st.booleans()):
        i = draw(st.integers(0, renewals))
        events.append(ev.OrderCanceled(order_id=_payment_id(i), occurred_at=payments[i][1]))
    if draw(st.booleans()):
        day = draw(st.integers(1, 31 * (renewals + 1)))
        events.append(ev.SubscriptionCanceled(subscription_id=SUB,
                                              occurred_at=T0 + timedelta(days=day)))
    return Journey(tuple(events), draw(st.integers(1, 50)),
                   draw(st.sampled_from([None, 0, 1, 2])))


def _program(app: Any, journey: Journey) -> str:
    with app.app_context(), get_db().write() as s:
        created = create_program(s, ProgramCreate(name="Shop", currency="USD", domain="shop.example"))
        program = s.get(Program, created.program_id)
        create_partner(s, program, PartnerIn(name="Ann", email="ann@partners.example", key="ann"))
        create_reward(s, program, RewardIn(type="percent", value=journey.reward_value,
                                           duration_months=journey.duration_months))
    return created.program_id


def _apply_each(app: Any, program_id: str, events: list[ev.Event]) -> None:
    """One transaction per event, as separate webhook deliveries would be."""
    for event in events:
        with app.app_context(), get_db().write() as s:
            ctx = IngestContext(session=s, program=s.get(Program, program_id), origin="src_prop",
                                platform="fake")
            apply(ctx, [event])


def _apply_in_batches(app: Any, program_id: str, events: list[ev.Event], cuts: set[int]) -> None:
    """As the inbox's drainer does: one transaction per batch, the batch's reads fetched
    before its first event, its writes flushed after its last."""
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(events)), len(events)]
    for start, end in zip(bounds, bounds[1:]):
        with app.app_context(), get_db().write() as s:
            ctx = IngestContext(session=s, program=s.get(Program, program_id), origin="src_prop",
                                platform="fake")
            prepare(ctx, events[start:end])
            for event in events[start:end]:
                apply(ctx, [event], flush=False)
            s.flush()


def _outcome(app: Any, program_id: str) -> list[tuple]:
    """What must not depend on arrival order: per payment, partner, commission, status, refund,
    renewal, and the ledger's net balance per partner and currency."""
    with app.app_context(), get_db().session() as s:
        keys = dict(s.exec(select(Partner.id, Partner.key)
                         .where(Partner.program_id == program_id)).all())
        out = []
        for c in s.exec(select(Conversion).where(Conversion.program_id == program_id)):
            # Net earnings only: the `reversed` bucket records history (a sale credited and
            # then cancelled shows a reversal; one whose cancellation came first never earned).
            ledger = sorted((keys[pid], cur, b.net) for (pid, cur), b in
                            conversion_balances(s, c.id).items() if b.net)
            out.append((c.external_id, keys.get(c.partner_id), c.commission, c.status, c.refunded,
                        c.renewal, tuple(ledger)))
    return sorted(out)


def check_order_independence(app: Any, journey: Journey, order: list[int]) -> None:
    natural = _program(app, journey)
    shuffled = _program(app, journey)
    _apply_each(app, natural, list(journey.events))
    _apply_each(app, shuffled, [journey.events[i] for i in order])
    expected, got = _outcome(app, natural), _outcome(app, shuffled)
    assert got == expected, (order, journey)
    first = next(row for row in expected if row[0] == _payment_id(0))
    assert first[1] == "ann"  # the ref on the first payment credits it
    for _, _, commission, status, *_ in expected:
        assert commission >= 0
        if status in ("reversed", "held"):
            assert commission == 0


def check_batches(app: Any, journey: Journey, order: list[int], cuts: set[int]) -> None:
    natural = _program(app, journey)
    batched = _program(app, journey)
    _apply_each(app, natural, list(journey.events))
    _apply_in_batches(app, batched, [journey.events[i] for i in order], cuts)
    assert _outcome(app, batched) == _outcome(app, natural), (order, cuts, journey)


def _cases() -> Any:
    return journeys().flatmap(lambda j: st.tuples(
        st.just(j), st.permutations(range(len(j.events)))))


def _batched_cases() -> Any:
    return journeys().flatmap(lambda j: st.tuples(
        st.just(j), st.permutations(range(len(j.events))),
        st.sets(st.integers(1, max(1, len(j.events) - 1)), max_size=3)))


QUICK = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow, HealthCheck.data_too_large])
STRESS = settings(QUICK, max_examples=2000, derandomize=False)
# Batches are drawn as cuts of the arrival orders the test above already covers: fewer suffice,
# and `make stress` stays well inside CI's half hour.
STRESS_BATCHES = settings(QUICK, max_examples=400, derandomize=False)


@QUICK
@given(case=_cases())
def test_any_arrival_order_gives_the_same_commissions(app, figures, case):  # noqa: F811
    journey, order = case
    check_order_independence(app, journey, list(order))
    figures["examples"] += 1
    figures["events"] += len(journey.events)


@QUICK
@given(case=_batched_cases())
def test_batches_give_what_one_delivery_at_a_time_gives(app, case):
    journey, order, cuts = case
    check_batches(app, journey, list(order), set(cuts))


@pytest.mark.stress
@STRESS_BATCHES
@given(case=_batched_cases())
def test_batches_give_what_one_delivery_at_a_time_gives_many_journeys(app, case):
    journey, order, cuts = case
    check_batches(app, journey, list(order), set(cuts))


@pytest.mark.stress
@STRESS
@given(case=_cases())
def test_any_arrival_order_gives_the_same_commissions_many_journeys(app, figures, case):  # noqa: F811
    journey, order = case
    check_order_independence(app, journey, list(order))
    figures["stress_examples"] += 1
    figures["stress_events"] += len(journey.events)
