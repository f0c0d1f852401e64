"""`touchpoint import PRODUCT FILE`: read the whole file first (so a bad cell anywhere stops the
import before anything is written), then apply it in one write transaction, with a progress bar.
A dry run does the same work and rolls it back, so its counts are exactly what a real run does."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn,
)
from sqlmodel import select

from core.db import get_db
from core.importers import IMPORTERS
from core.importers.common import Imported, ImportFailed
from core.importers.writer import Writer
from core.models import Program, Source


def read(product: str, path: Path, kind: str | None, currency: str) -> tuple[str, list[Imported]]:
    """(kind, records) of one export file; raises ImportFailed naming the row and column."""
    importer = IMPORTERS[product]
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFailed(f"{path.name} is not UTF-8 text (byte {exc.start}); export it as "
                           "CSV UTF-8") from None
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel  # type: ignore[assignment]
    records = list(csv.reader(io.StringIO(text, newline=""), dialect))
    headers = records[0] if records else []
    found = kind or importer.detect(headers)
    try:
        items = list(importer.rows(records, found, currency))
    except csv.Error as exc:
        raise ImportFailed(f"not a readable CSV file: {exc}") from None
    return found or "", items


def find_program(program_id: str | None) -> Program:
    with get_db().session() as s:
        programs = s.exec(select(Program).where(Program.id == program_id) if program_id
                          else select(Program)).all()
    if len(programs) != 1:
        raise ImportFailed(f"no program {program_id}" if program_id
                           else "give --program (there is not exactly one program)")
    return programs[0]


def run(product: str, path: Path, program_id: str | None = None, kind: str | None = None,
        source_id: str | None = None, dry_run: bool = False,
        progress: bool = True) -> dict[str, Any]:
    program = find_program(program_id)
    if source_id is not None and source_id != "api":
        with get_db().session() as s:
            source = s.get(Source, source_id)
        if source is None or source.program_id != program.id:
            raise ImportFailed(f"no source {source_id!r} in program {program.id}")
    found, items = read(product, path, kind, program.currency)
    importer = IMPORTERS[product]
    columns = (SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
               MofNCompleteColumn(), TimeElapsedColumn())
    db = get_db()
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task(f"{importer.title} {found}", total=len(items))
        if dry_run:
            with db.session() as s:
                program_row = s.get(Program, program.id)
                assert program_row is not None
                result = Writer(s, program_row, product, importer.title, source_id).apply(
                    items, lambda: bar.advance(task))
                s.rollback()
        else:
            with db.write() as s:
                program_row = s.get(Program, program.id)
                assert program_row is not None
                result = Writer(s, program_row, product, importer.title, source_id).apply(
                    items, lambda: bar.advance(task))
    return {"product": product, "kind": found, "file": str(path), "program_id": program.id,
            "rows": len(items), "dry_run": dry_run, **dict(sorted(result.counts.items()))}
