"""Importers: bring partners, referral codes, customers and commission history from another
affiliate product's CSV exports, so a merchant can switch without losing history.

Each product is one module with the same small surface (`importer`, `detect(headers)`,
`rows(records, kind, currency)`) built on `core.importers.common`; `core.importers.writer`
applies what they read to the database. The one explicit table of products is `IMPORTERS`.
See docs/importing.md for the columns each expects.
"""
from __future__ import annotations

from core.importers import firstpromoter, partnerstack, rewardful, tolt
from core.importers.common import Importer

IMPORTERS: dict[str, Importer] = {m.importer.name: m.importer
                                  for m in (rewardful, firstpromoter, tolt, partnerstack)}
