"""docs/importing.md lists every column each importer reads, so the page cannot fall behind."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.importers import IMPORTERS
from core.importers.common import normalize

DOC = (Path(__file__).parents[3] / "docs" / "importing.md").read_text()


@pytest.mark.parametrize("product", sorted(IMPORTERS))
def test_every_column_is_documented_with_the_products_references(product):
    importer = IMPORTERS[product]
    section = DOC.split(f"\n## {importer.title}\n", 1)[1].split("\n## ", 1)[0]
    documented = {normalize(t) for t in re.findall(r"`([^`]+)`", section)}
    for layout in importer.layouts.values():
        for column in layout.columns:
            if column.field == "id":
                continue  # named in the reason an imported customer shows, not a column of ours
            assert {normalize(h) for h in column.headers} & documented, (product, column.field)
    for url in importer.references:
        assert url in DOC
