"""A program's fraud rule settings.

Stored as `Program.fraud_rules`, a JSON object holding only what the merchant changed; every
absent key takes its default from `core.schemas.FraudRules` (every rule on, with thresholds a
merchant would expect). So new rules arrive switched on for existing programs, and a stored
setting of a rule that no longer exists is ignored rather than breaking the program.
"""
from __future__ import annotations

from core.models import Program
from core.schemas import FraudRules


def rules_of(program: Program) -> FraudRules:
    stored = program.fraud_rules or {}
    known = {k: v for k, v in stored.items() if k in FraudRules.model_fields}
    return FraudRules.model_validate(known)
