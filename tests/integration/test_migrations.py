"""Migrations run from code on SQLite and PostgreSQL: up to head, down to base, and up again."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from risk_service.store import migrations
from risk_service.store.tables import metadata


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_and_upgrade_again(database_url: str) -> None:
    assert migrations.current_revision(database_url) is None

    migrations.upgrade(database_url)
    assert migrations.current_revision(database_url) == "0001"
    assert "assessments" in _tables(database_url)
    migrations.upgrade(database_url)  # already at head: nothing to do
    assert migrations.current_revision(database_url) == "0001"

    migrations.downgrade(database_url, "base")
    assert migrations.current_revision(database_url) is None
    assert "assessments" not in _tables(database_url)

    migrations.upgrade(database_url, "head")
    assert migrations.current_revision(database_url) == "0001"
    assert "assessments" in _tables(database_url)


def test_migrated_schema_matches_the_table_definitions(database_url: str) -> None:
    migrations.upgrade(database_url)
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_lodgement_time_is_a_nullable_column_indexed_by_importer(database_url: str) -> None:
    migrations.upgrade(database_url)
    engine = sa.create_engine(database_url)
    try:
        inspector = sa.inspect(engine)
        columns = {c["name"]: c for c in inspector.get_columns("assessments")}
        indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes("assessments")}
    finally:
        engine.dispose()
    assert columns["lodged_at"]["nullable"]
    assert indexes["ix_assessments_importer_id_lodged_at"] == ["importer_id", "lodged_at"]


def test_migrations_ship_inside_the_package() -> None:
    assert (migrations.SCRIPT_LOCATION / "env.py").is_file()
    assert (migrations.SCRIPT_LOCATION / "script.py.mako").is_file()
    assert (migrations.SCRIPT_LOCATION / "versions" / "0001_assessments.py").is_file()
