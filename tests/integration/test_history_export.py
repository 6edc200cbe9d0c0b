"""risk data export: the service's stored filings as canonical history, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from risk_service.cli import main
from risk_service.domain.assessment import Channel
from risk_service.domain.declaration import DutyTax
from risk_service.domain.ports import AssessmentRecord
from risk_service.history_export import export_history
from risk_service.store import SqlAssessmentStore, migrations
from risk_service.store.case_store import SqlCaseStore
from tests import builders
from training.history import read_history


def _record(declaration_id: str, version: int, day: int, n_items: int = 2) -> AssessmentRecord:
    items = tuple(
        builders.item(item_number=n, customs_value=100.0 * n, duties_and_taxes=(DutyTax("B00", 8.0 * n),))
        for n in range(1, n_items + 1)
    )
    declaration = builders.declaration(
        declaration_id=declaration_id,
        version=version,
        items=items,
        lodgement_time=datetime(2026, 11, day, 9, 0, tzinfo=UTC),
    )
    assessment = builders.assessment(
        assessment_id=str(uuid.uuid4()),
        declaration_id=declaration_id,
        declaration_version=version,
        channel=Channel.YELLOW if version > 1 else Channel.GREEN,
    )
    content = hashlib.sha256(f"{declaration_id}/{version}".encode()).hexdigest()
    return AssessmentRecord(assessment, declaration, content)


def test_export_reads_back_as_history_with_the_newest_version_only(database_url: str, tmp_path: Path) -> None:
    migrations.upgrade(database_url)
    with SqlAssessmentStore(database_url) as store:
        store.save_many([_record("DEC-A", 1, 2), _record("DEC-B", 1, 3, n_items=1)]).result(timeout=30)
        store.save_many([_record("DEC-A", 2, 2, n_items=3)]).result(timeout=30)  # an amendment: 3 items now
    cases = SqlCaseStore(database_url)
    try:
        rows = export_history(cases.labelled_filings(), tmp_path / "export.csv")
        later = export_history(cases.labelled_filings(since=datetime(2026, 11, 3, tzinfo=UTC)), tmp_path / "later.csv")
    finally:
        cases.close()

    assert rows.rows == 4 and later.rows == 1
    history = read_history(tmp_path / "export.csv")
    assert history["declaration_id"].tolist() == ["DEC-A"] * 3 + ["DEC-B"]
    assert history["item_number"].tolist() == [1, 2, 3, 1]
    assert history["item_count"].tolist() == [3, 3, 3, 1]
    assert history["customs_value"].tolist() == [100.0, 200.0, 300.0, 100.0]
    assert history["duties_and_taxes"].tolist() == [8.0, 16.0, 24.0, 8.0]
    assert not history["inspected"].any()  # no officer recorded a result
    assert read_history(tmp_path / "later.csv")["declaration_id"].tolist() == ["DEC-B"]


def test_cli_export_writes_an_empty_history_with_its_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISK_DATA_DIR", str(tmp_path / "data"))
    assert main(["data", "export", str(tmp_path / "out.csv"), "--from", date(2026, 1, 1).isoformat()]) == 0
    assert (tmp_path / "out.csv").read_text(encoding="utf-8").startswith("declaration_id,item_number,")
    assert main(["data", "export", str(tmp_path / "out.parquet")]) == 2
