"""Fast conversion: the conversion came sooner after the winning click than a person can
browse, fill in a checkout and pay (`fast_conversion_seconds`, 10 by default), or even before
the click (a click injected at checkout time to claim a sale already being made)."""
from __future__ import annotations

from core.fraud.case import Case, Reason
from core.schemas import FraudRules

NAME = "fast_conversion"


def check(case: Case, rules: FraudRules) -> Reason | None:
    click = case.click
    if click is None:
        return None
    seconds = (case.conversion.occurred_at - click.created_at).total_seconds()
    if seconds >= rules.fast_conversion_seconds:
        return None
    if seconds < 0:
        return Reason(NAME, f"The conversion happened {-seconds:.0f} seconds before its "
                            f"click was recorded.")
    return Reason(NAME, f"Converted {seconds:.0f} seconds after the click, faster than a "
                        f"person could buy (the minimum is {rules.fast_conversion_seconds} "
                        f"seconds).")
