"""The migrations build exactly the schema the models describe, on both databases.

A model change without its Alembic revision (or a revision that drifts from the model) fails here
rather than on a production database at `touchpoint db upgrade`.
"""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import core.models  # noqa: F401  (registers the tables)
from core.db import make_engine


def test_migrations_match_the_models(db_url):
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations differ; add an Alembic revision: {diff}"
