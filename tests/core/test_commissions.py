from datetime import datetime, timezone
from decimal import Decimal

from core.commissions import Rule, after_refunds, base_commission, in_duration, months_between, pick_rule

T = datetime(2026, 1, 31, tzinfo=timezone.utc)


def rule(id, event="sale", type="percent", value="10", months=None, tag=None, created=T):
    return Rule(id, event, type, Decimal(value), months, tag, created)


def test_most_specific_rule_wins():
    rules = [rule("generic"), rule("upgrade", event="upgrade"), rule("gold", tag="gold"),
             rule("lead", event="lead", type="flat", value="500")]
    assert pick_rule(rules, "sale", "sale", set()).id == "generic"
    assert pick_rule(rules, "sale", "sale", {"gold"}).id == "gold"
    assert pick_rule(rules, "sale", "upgrade", set()).id == "upgrade"
    assert pick_rule(rules, "lead", "sign_up", set()).id == "lead"
    assert pick_rule(rules, "lead", "sign_up", {"gold"}).id == "lead"
    newer = rule("newer", created=datetime(2026, 2, 1, tzinfo=timezone.utc))
    assert pick_rule(rules + [newer], "sale", "sale", set()).id == "newer"


def test_durations():
    assert months_between(T, datetime(2026, 2, 28, tzinfo=timezone.utc)) == 0
    assert months_between(T, datetime(2026, 3, 1, tzinfo=timezone.utc)) == 1
    forever, once, three = rule("f"), rule("o", months=0), rule("t", months=3)
    later = datetime(2026, 6, 1, tzinfo=timezone.utc)
    assert in_duration(forever, True, T, later)
    assert in_duration(once, False, None, T) and not in_duration(once, True, T, later)
    assert in_duration(three, True, T, datetime(2026, 4, 30, tzinfo=timezone.utc))
    assert not in_duration(three, True, T, datetime(2026, 5, 1, tzinfo=timezone.utc))


def test_amounts_and_proportional_refunds():
    assert base_commission(rule("p", value="12.5"), 999) == 125  # 124.875
    assert base_commission(rule("f", type="flat", value="700"), 999) == 700
    assert after_refunds(1000, 11000, 2750) == 750
    assert after_refunds(1001, 10005, 2501) == 751
    assert after_refunds(1000, 11000, 11000) == 0
    assert after_refunds(1000, 11000, 99999) == 0
    assert after_refunds(500, 0, 0) == 500
