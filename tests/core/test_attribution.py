from datetime import datetime, timedelta, timezone

from core.attribution import Inherited, Rules, Touch, attribute

AT = datetime(2026, 6, 1, tzinfo=timezone.utc)


def t(kind, partner, days_before, **kw):
    return Touch(kind, partner, AT - timedelta(days=days_before), **kw)


def test_last_and_first_touch():
    touches = [t("click", "a", 10, click_id="c1"), t("click", "b", 2, click_id="c2")]
    last = attribute(AT, touches, Rules("last_touch"))
    first = attribute(AT, touches, Rules("first_touch"))
    assert (last.partner_id, last.click_id, last.touch) == ("b", "c2", "click")
    assert (first.partner_id, first.click_id) == ("a", "c1")
    assert "2 within 30 days" in last.reason


def test_window_excludes_old_and_future_touches():
    touches = [t("click", "a", 31), t("click", "b", -1)]
    att = attribute(AT, touches, Rules("last_touch", window_days=30))
    assert att.partner_id is None and "none within the 30-day window" in att.reason
    assert attribute(AT, [t("click", "a", 31)], Rules(window_days=60)).partner_id == "a"
    assert attribute(AT, [], Rules()).reason == "no referral evidence"


def test_promo_code_priority():
    touches = [t("click", "a", 1), t("promo_code", "b", 0, code="B10")]
    assert attribute(AT, touches, Rules(promo_code_priority=True)).partner_id == "b"
    assert attribute(AT, touches, Rules(promo_code_priority=False)).partner_id == "a"
    only_code = [t("promo_code", "b", 0, code="B10")]
    assert attribute(AT, only_code, Rules(promo_code_priority=False)).partner_id == "b"


def test_inherited_wins_over_everything():
    touches = [t("promo_code", "b", 0, code="X"), t("click", "c", 1)]
    att = attribute(AT, touches, Rules(), Inherited("a", "subscription", "renewal"))
    assert (att.partner_id, att.touch, att.reason) == ("a", "subscription", "renewal")
