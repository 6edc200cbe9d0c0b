"""Cases in the store on SQLite and PostgreSQL: opened and refreshed with the assessment in one
transaction, reopened by new information, and labelled for export by the version inspected."""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from risk_service.domain.assessment import Channel
from risk_service.domain.declaration import DutyTax
from risk_service.domain.errors import Aborted, NotFound
from risk_service.domain.ports import AssessmentRecord
from risk_service.domain.review import cases as transitions
from risk_service.domain.review.cases import CaseStatus, InspectionOutcome, InspectionResult
from risk_service.history_export import export_history
from risk_service.store import SqlAssessmentStore, migrations
from risk_service.store.case_store import SqlCaseStore
from tests import builders
from training.history import read_history

AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def record(declaration_id: str, version: int, channel: Channel, n_items: int = 2) -> AssessmentRecord:
    items = tuple(
        builders.item(item_number=n, duties_and_taxes=(DutyTax("B00", 1000.0 * n),)) for n in range(1, n_items + 1)
    )
    declaration = builders.declaration(declaration_id=declaration_id, version=version, items=items, lodgement_time=AT)
    assessment = builders.assessment(
        assessment_id=str(uuid.uuid4()),
        declaration_id=declaration_id,
        declaration_version=version,
        channel=channel,
        risk_score=0.2 if channel == Channel.GREEN else 0.8,
        random_control=version == 1,
    )
    return AssessmentRecord(assessment, declaration, hashlib.sha256(f"{declaration_id}/{version}".encode()).hexdigest())


@pytest.fixture
def stores(database_url: str) -> Iterator[tuple[SqlAssessmentStore, SqlCaseStore]]:
    migrations.upgrade(database_url)
    cases = SqlCaseStore(database_url)
    with SqlAssessmentStore(database_url) as store:
        yield store, cases
    cases.close()


def save(store: SqlAssessmentStore, *records: AssessmentRecord) -> None:
    store.save_many(list(records)).result(timeout=30)


def result(outcome: InspectionOutcome, items: tuple[int, ...] = (), revenue: float = 0.0) -> InspectionResult:
    codes = ("UNDERVALUATION",) if outcome.is_finding else ()
    return InspectionResult(outcome, codes, revenue, "KRW", "", items)


def test_cases_open_refresh_and_reopen_with_the_assessments(stores: tuple[SqlAssessmentStore, SqlCaseStore]) -> None:
    store, cases = stores
    save(store, record("D-GREEN", 1, Channel.GREEN), record("D-RED", 1, Channel.RED))
    assert cases.get("D-GREEN") is None
    opened = cases.get("D-RED")
    assert opened is not None and (opened.status, opened.version, opened.revenue_at_stake) == (
        CaseStatus.OPEN,
        1,
        3000.0,
    )

    # a GREEN declaration amended into YELLOW opens its case then
    save(store, record("D-GREEN", 2, Channel.YELLOW, n_items=1))
    late = cases.get("D-GREEN")
    assert late is not None and (late.declaration_version, late.channel, late.revenue_at_stake) == (
        2,
        Channel.YELLOW,
        1000.0,
    )

    # worked and closed, then a new version arrives: back in the queue, its result kept
    case = cases.act("D-RED", 1, lambda c: transitions.claim(c, "kim", AT))
    case = cases.act(
        "D-RED", 2, lambda c: transitions.record_result(c, "kim", AT, result(InspectionOutcome.NO_DISCREPANCY))
    )
    case = cases.act("D-RED", 3, lambda c: transitions.close(c, "kim", AT))
    assert case.status == CaseStatus.CLOSED
    save(store, record("D-RED", 2, Channel.RED))
    reopened = cases.get("D-RED")
    assert reopened is not None
    assert (reopened.status, reopened.version, reopened.declaration_version) == (CaseStatus.OPEN, 5, 2)
    assert reopened.assigned_officer == "" and reopened.closed_at is None
    assert reopened.result is not None and reopened.result.declaration_version == 1

    # a GREEN amendment refreshes the case but does not reopen or close it
    save(store, record("D-RED", 3, Channel.GREEN))
    refreshed = cases.get("D-RED")
    assert refreshed is not None and (refreshed.channel, refreshed.status, refreshed.version) == (
        Channel.GREEN,
        CaseStatus.OPEN,
        6,
    )
    assert [e.action.name for e in cases.events("D-RED")] == ["CLAIMED", "RESULT_RECORDED", "CLOSED"]


def test_act_refuses_unknown_cases_and_stale_versions_and_writes_nothing(
    stores: tuple[SqlAssessmentStore, SqlCaseStore],
) -> None:
    store, cases = stores
    save(store, record("D-1", 1, Channel.RED))
    with pytest.raises(NotFound):
        cases.act("D-404", 1, lambda c: transitions.claim(c, "kim", AT))
    cases.act("D-1", 1, lambda c: transitions.claim(c, "kim", AT))
    with pytest.raises(Aborted):
        cases.act("D-1", 1, lambda c: transitions.release(c, "kim", AT))

    def refuse(c):  # type: ignore[no-untyped-def]
        raise RuntimeError("the transition failed after reading the case")

    with pytest.raises(RuntimeError):
        cases.act("D-1", 2, refuse)
    case = cases.get("D-1")
    assert case is not None and case.version == 2 and len(cases.events("D-1")) == 1


def test_export_labels_the_inspected_version_and_its_items(
    stores: tuple[SqlAssessmentStore, SqlCaseStore], tmp_path: Path
) -> None:
    store, cases = stores
    save(store, record("D-A", 1, Channel.RED, n_items=3), record("D-B", 1, Channel.GREEN))
    cases.act("D-A", 1, lambda c: transitions.claim(c, "kim", AT))
    found = result(InspectionOutcome.DISCREPANCY, items=(1, 3), revenue=900.0)
    cases.act("D-A", 2, lambda c: transitions.record_result(c, "kim", AT, found))
    # the trader files a corrected version after the inspection: the labels stay on the version inspected
    save(store, record("D-A", 2, Channel.RED, n_items=1))

    summary = export_history(cases.labelled_filings(), tmp_path / "labels.csv")
    assert (summary.rows, summary.inspected, summary.findings) == (5, 3, 2)
    history = read_history(tmp_path / "labels.csv")
    a = history[history["declaration_id"] == "D-A"]
    assert a["item_number"].tolist() == [1, 2, 3]  # version 1, as inspected
    assert a["inspected"].all() and a["finding"].tolist() == [True, False, True]
    assert a["revenue_recovered"].tolist() == [450.0, 0.0, 450.0]
    assert a["random_control"].all()
    b = history[history["declaration_id"] == "D-B"]
    assert not b["inspected"].any() and all(math.isnan(v) for v in b["revenue_recovered"])
