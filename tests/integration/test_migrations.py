"""Migrations run from code on SQLite and PostgreSQL: up to head, down to base, and up again."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from risk_service.store import SqlAssessmentStore, migrations
from risk_service.store.assessment_store import _row
from risk_service.store.tables import assessments, metadata
from tests.integration.test_assessment_store import T0, make_record


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


HEAD = "0008"
PERMIT_TABLES = {
    "permits",
    "permit_lines",
    "permit_changes",
    "permit_draws",
    "permit_uses",
    "declaration_cancellations",
}


def test_upgrade_downgrade_and_upgrade_again(database_url: str) -> None:
    assert migrations.current_revision(database_url) is None

    migrations.upgrade(database_url)
    assert migrations.current_revision(database_url) == HEAD
    assert {"assessments", *PERMIT_TABLES} <= _tables(database_url)
    migrations.upgrade(database_url)  # already at head: nothing to do
    assert migrations.current_revision(database_url) == HEAD

    migrations.downgrade(database_url, "base")
    assert migrations.current_revision(database_url) is None
    assert not {"assessments", *PERMIT_TABLES} & _tables(database_url)

    migrations.upgrade(database_url, "head")
    assert migrations.current_revision(database_url) == HEAD
    assert {"assessments", *PERMIT_TABLES} <= _tables(database_url)


def test_permit_tables_come_with_0002_and_go_on_downgrade_to_0001(database_url: str) -> None:
    migrations.upgrade(database_url, "0001")
    assert migrations.current_revision(database_url) == "0001"
    assert not PERMIT_TABLES & _tables(database_url)

    migrations.upgrade(database_url)
    assert migrations.current_revision(database_url) == HEAD
    assert _tables(database_url) >= PERMIT_TABLES

    migrations.downgrade(database_url, "0001")
    assert migrations.current_revision(database_url) == "0001"
    assert not PERMIT_TABLES & _tables(database_url)
    assert "assessments" in _tables(database_url)


def test_permit_lookups_have_their_indexes(database_url: str) -> None:
    migrations.upgrade(database_url)
    engine = sa.create_engine(database_url)
    try:
        inspector = sa.inspect(engine)
        indexes = {
            table: {i["name"]: i["column_names"] for i in inspector.get_indexes(table)}
            for table in ("permits", "permit_lines", "permit_changes", "permit_draws", "permit_uses")
        }
        draws_pk = inspector.get_pk_constraint("permit_draws")["constrained_columns"]
    finally:
        engine.dispose()
    assert indexes["permits"]["ix_permits_holder_id_permit_id"] == ["holder_id", "permit_id"]
    assert indexes["permits"]["ix_permits_issuing_agency_permit_id"] == ["issuing_agency", "permit_id"]
    assert indexes["permit_lines"]["ix_permit_lines_hs_prefix_permit_id"] == ["hs_prefix", "permit_id"]
    assert indexes["permit_changes"]["ix_permit_changes_permit_id_seq"] == ["permit_id", "seq"]
    assert indexes["permit_draws"]["ix_permit_draws_permit_id"] == ["permit_id"]
    assert draws_pk[0] == "declaration_id"  # draws by declaration come from the primary key
    assert indexes["permit_uses"]["ix_permit_uses_declaration_id"] == ["declaration_id"]


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
    assert (migrations.SCRIPT_LOCATION / "versions" / "0002_permits.py").is_file()
    assert (migrations.SCRIPT_LOCATION / "versions" / "0003_filing_entities.py").is_file()


def test_entity_history_is_backfilled_from_declarations_stored_before_0003(tmp_path: Path, database_url: str) -> None:
    """A store upgraded in place knows the same entities as one that stored the declarations itself."""
    day = timedelta(days=1)
    records = [
        make_record("A-1", importer_id="IMP-A", lodged=T0 + 3 * day),
        make_record("A-2", importer_id="IMP-A", lodged=T0 + day),
        make_record("B-1", importer_id="IMP-B", lodged=T0),
        make_record("N-1", importer_id="IMP-N", lodged=None),
    ]
    records.append(make_record("A-1", 2, importer_id="IMP-A", lodged=T0 + 4 * day))
    migrations.upgrade(database_url, "0002")
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            for record in records:
                row = _row(record)
                row["declaration"] = json.loads(row.pop("declaration_json"))
                row["assessment"] = json.loads(row.pop("assessment_json"))
                conn.execute(assessments.insert(), row)
    finally:
        engine.dispose()
    migrations.upgrade(database_url)

    fresh_url = f"sqlite:///{tmp_path / 'fresh.db'}"
    migrations.upgrade(fresh_url)
    with SqlAssessmentStore(fresh_url) as fresh, SqlAssessmentStore(database_url) as upgraded:
        fresh.save_many(records).result(timeout=30)
        expected = fresh.entity_history()
        assert expected["importer"] == {"IMP-A": (T0 + day, 2), "IMP-B": (T0, 1)}
        assert upgraded.entity_history() == expected


def test_the_audit_log_comes_with_0006_append_only_and_goes_on_downgrade(database_url: str) -> None:
    migrations.upgrade(database_url)
    assert "audit_log" in _tables(database_url)
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO audit_log (recorded_at, kind, subject, actor, payload_sha256, prev_hash, entry_hash) "
                    "VALUES (CURRENT_TIMESTAMP, 'assessment', 'A', 'x', 'p', 'q', 'r')"
                )
            )
        for statement in ("UPDATE audit_log SET actor = 'y'", "DELETE FROM audit_log"):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()
    migrations.downgrade(database_url, "0005")
    assert "audit_log" not in _tables(database_url)


def test_cases_come_with_0007_and_go_on_downgrade(database_url: str) -> None:
    migrations.upgrade(database_url)
    assert {"cases", "case_events"} <= _tables(database_url)
    migrations.downgrade(database_url, "0006")
    assert not {"cases", "case_events"} & _tables(database_url)
    assert "audit_log" in _tables(database_url)


def test_0008_leaves_room_on_permit_line_pages_on_postgresql(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL storage parameter; SQLite has none")

    def options() -> list[str]:
        engine = sa.create_engine(database_url)
        try:
            with engine.connect() as conn:
                found = conn.execute(sa.text("SELECT reloptions FROM pg_class WHERE relname = 'permit_lines'"))
                return list(found.scalar_one() or [])
        finally:
            engine.dispose()

    migrations.upgrade(database_url, "0008")
    assert options() == ["fillfactor=50"]
    migrations.downgrade(database_url, "0007")
    assert options() == []
    migrations.upgrade(database_url, "head")
    assert options() == ["fillfactor=50"]
