"""Links between declarations and cargo reports: found by index, near in time, newest versions, backfilled."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from risk_service.domain.consistency import declaration_link_keys, report_link_keys
from risk_service.store import SqlAssessmentStore, migrations
from risk_service.store.assessment_store import _row as declaration_row
from risk_service.store.cargo_store import SqlCargoStore
from risk_service.store.cargo_store import _row as report_row
from risk_service.store.tables import assessments, cargo_assessments
from tests.cargo_builders import cargo_report
from tests.cargo_records import cargo_record
from tests.integration.test_assessment_store import make_record

DAY = timedelta(days=1)


def test_lookups_use_the_index_and_respect_the_window(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'links.db'}"
    migrations.upgrade(url)
    report = cargo_report(master_transport_document_number="BILL-1")
    arrival = report.planned_arrival_time
    assert arrival is not None
    plans: list[str] = []
    with SqlCargoStore(url) as cargo:
        cargo.save_many([cargo_record(report)]).result(timeout=30)

        def explain(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
            if statement.lstrip().upper().startswith("SELECT") and "document_links" in statement:
                plans.extend(
                    row[-1] for row in cursor.connection.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
                )

        sa.event.listen(cargo._engine, "before_cursor_execute", explain)
        keys = report_link_keys(report)
        found = cargo.linked_reports(keys, arrival - DAY, arrival + DAY)
        assert [r.report_id for r, _ in found] == [report.report_id]
        assert cargo.linked_reports(keys, arrival + DAY, arrival + 2 * DAY) == []  # outside the window
        assert cargo.linked_reports({("document", "OTHER")}, arrival - DAY, arrival + DAY) == []
    assert plans and not [p for p in plans if p.startswith("SCAN document_links")], plans


def test_only_the_newest_version_of_a_linked_filing_is_returned(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'versions.db'}"
    migrations.upgrade(url)
    first = make_record("D-1", 1, lodged=None)
    d1 = first.declaration
    second = make_record("D-1", 2, content="b")
    with SqlAssessmentStore(url) as store:
        store.save_many([first, second]).result(timeout=30)
        at = second.declaration.lodgement_time
        assert at is not None
        found = store.linked_declarations(declaration_link_keys(d1), at - 30 * DAY, at + 30 * DAY)
    assert [(d.declaration_id, d.version) for d, _ in found] == [("D-1", 2)]


def test_filings_stored_before_0005_are_linked_by_the_upgrade(tmp_path: Path, database_url: str) -> None:
    migrations.upgrade(database_url, "0004")
    record = make_record("D-OLD")
    lodged = record.declaration.lodgement_time
    assert lodged is not None
    report = cargo_report(
        report_id="CR-OLD",
        master_transport_document_number=record.declaration.transport_document_number,
        planned_loading_time=lodged - 12 * DAY,
        planned_arrival_time=lodged - 2 * DAY,
        filing_time=lodged - 13 * DAY,
    )
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            row = declaration_row(record)
            row["declaration"] = json.loads(row.pop("declaration_json"))
            row["assessment"] = json.loads(row.pop("assessment_json"))
            conn.execute(assessments.insert(), row)
            row = report_row(cargo_record(report))
            row["report"] = json.loads(row.pop("report_json"))
            row["assessment"] = json.loads(row.pop("assessment_json"))
            conn.execute(cargo_assessments.insert(), row)
    finally:
        engine.dispose()
    migrations.upgrade(database_url)

    arrival = report.planned_arrival_time
    assert arrival is not None
    with SqlAssessmentStore(database_url) as store, SqlCargoStore(database_url) as cargo:
        found = cargo.linked_reports(declaration_link_keys(record.declaration), lodged - 60 * DAY, lodged + 60 * DAY)
        assert [r.report_id for r, _ in found] == ["CR-OLD"]
        back = store.linked_declarations(report_link_keys(report), arrival - 60 * DAY, arrival + 60 * DAY)
        assert [d.declaration_id for d, _ in back] == ["D-OLD"]
