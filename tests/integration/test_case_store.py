"""Cases in the store on SQLite and PostgreSQL: opened and refreshed with the assessment in one
transaction, reopened by new information, and labelled for export by the version inspected."""

from __future__ import annotations

import asyncio
import hashlib
import math
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from risk_service.domain.assessment import Channel
from risk_service.domain.declaration import DutyTax
from risk_service.domain.errors import Aborted, NotFound
from risk_service.domain.ports import AssessmentRecord
from risk_service.domain.review import cases as transitions
from risk_service.domain.review.cases import CaseAction, CaseStatus, InspectionOutcome, InspectionResult, ReviewPolicy
from risk_service.domain.review.ports import CaseFilter
from risk_service.domain.review.service import ReviewService
from risk_service.history_export import export_history
from risk_service.store import SqlAssessmentStore, audit, case_store, migrations
from risk_service.store.case_store import SqlCaseStore
from risk_service.store.db import create_engine
from risk_service.store.tables import cases as cases_table
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


def result(outcome: InspectionOutcome, items: tuple[int, ...] = (), revenue: Decimal = Decimal(0)) -> InspectionResult:
    codes = ("UNDERVALUATION",) if outcome.is_finding else ()
    return InspectionResult(outcome, codes, revenue, "KRW", "", items)


def test_cases_open_refresh_and_reopen_with_the_assessments(
    stores: tuple[SqlAssessmentStore, SqlCaseStore], database_url: str
) -> None:
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
    events = [(e.action.name, e.actor) for e in cases.events("D-RED")]
    assert events == [("CLAIMED", "kim"), ("RESULT_RECORDED", "kim"), ("CLOSED", "kim"), ("REOPENED", "screening")]

    # a case nobody has worked closes when a new version is assessed GREEN; the service says so
    save(store, record("D-X", 1, Channel.YELLOW), record("D-X", 2, Channel.GREEN))
    closed = cases.get("D-X")
    assert closed is not None and (closed.status, closed.channel) == (CaseStatus.CLOSED, Channel.GREEN)
    assert [(e.action.name, e.actor) for e in cases.events("D-X")] == [("CLOSED", "screening")]
    assert "nothing left to review" in cases.events("D-X")[0].detail
    engine = create_engine(database_url)
    try:
        report = audit.verify(engine)  # the service's own case events are in the chain too
    finally:
        engine.dispose()
    assert report.intact, report.problems


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
    found = result(InspectionOutcome.DISCREPANCY, items=(1, 3), revenue=Decimal(900))
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


def test_a_green_reassessment_of_version_1_refreshes_its_case(
    stores: tuple[SqlAssessmentStore, SqlCaseStore], database_url: str
) -> None:
    """A cargo report that clears a version-1 declaration (its consistency hits replaced by none) refreshes
    its case, and closes it while nobody has worked it."""
    store, cases = stores
    url = database_url
    first = record("D-1", 1, Channel.RED)
    save(store, first)
    cleared = replace(
        first.assessment,
        assessment_id=str(uuid.uuid4()),
        channel=Channel.GREEN,
        risk_score=0.05,
        rule_hits=(),
        assessment_time=AT + timedelta(hours=1),
    )
    engine = create_engine(url)
    try:
        with engine.begin() as conn:  # what SqlCargoStore._transaction does for a re-assessment
            case_store.open_cases_for_reassessed(conn, [cleared])
    finally:
        engine.dispose()
    case = cases.get("D-1")
    assert case is not None
    assert (case.channel, case.assessment_id, case.risk_score) == (Channel.GREEN, cleared.assessment_id, 0.05)
    assert case.status == CaseStatus.CLOSED
    ((action, actor),) = [(e.action, e.actor) for e in cases.events("D-1")]
    assert (action, actor) == (CaseAction.CLOSED, "screening")


def test_the_importer_history_leaves_the_case_itself_out_of_its_counts(
    stores: tuple[SqlAssessmentStore, SqlCaseStore],
) -> None:
    """The importer's record beside a case is the importer's other filings: not the one under review."""
    store, cases = stores
    save(store, record("D-ONLY", 1, Channel.RED))
    cases.act("D-ONLY", 1, lambda c: transitions.claim(c, "kim", AT))
    found = result(InspectionOutcome.SEIZURE)
    cases.act("D-ONLY", 2, lambda c: transitions.record_result(c, "kim", AT, found))
    history = cases.importer_record("IMP-0001", exclude="D-ONLY")
    assert (history.filings, history.inspections, history.findings) == (0, 0, 0), history


@pytest.mark.parametrize("size", [1, 2, 3])
def test_paging_with_equal_scores_and_revenue_visits_each_case_once(
    stores: tuple[SqlAssessmentStore, SqlCaseStore], size: int
) -> None:
    store, cases = stores
    ids = ["b", "A", "a-1", "a_1", "a1", "B", "Z-9", "z"]
    save(store, *(record(i, 1, Channel.RED) for i in ids))
    service = ReviewService(cases, ReviewPolicy(frozenset({"X"}), frozenset({"Y"}), "KRW"))
    seen: list[str] = []
    token = ""
    while True:
        page, token = asyncio.run(service.list(CaseFilter(), page_size=size, page_token=token))
        seen += [c.case_id for c in page]
        if not token:
            break
    every, _ = asyncio.run(service.list(CaseFilter(), page_size=100, page_token=""))
    assert seen == [c.case_id for c in every] and sorted(seen) == sorted(ids)


def test_labelled_filings_streams_the_same_rows_in_small_batches(
    stores: tuple[SqlAssessmentStore, SqlCaseStore],
) -> None:
    store, cases = stores
    for n in range(7):
        save(store, record(f"D-{n}", 1, Channel.RED if n % 2 else Channel.GREEN))
        if n % 3 == 0:
            save(store, record(f"D-{n}", 2, Channel.RED))
    whole = [(f.declaration.key, f.assessment.assessment_id) for f in cases.labelled_filings(batch=1000)]
    small = [(f.declaration.key, f.assessment.assessment_id) for f in cases.labelled_filings(batch=1)]
    assert whole == small and len(whole) == 7


def test_audit_verify_notices_an_edited_result_on_the_case_row(
    stores: tuple[SqlAssessmentStore, SqlCaseStore], database_url: str
) -> None:
    """Labels and rule statistics read the case row: an edit there, behind the service's back, shows."""
    store, cases = stores
    url = database_url
    save(store, record("D-T", 1, Channel.RED))
    cases.act("D-T", 1, lambda c: transitions.claim(c, "kim", AT))
    found = result(InspectionOutcome.SEIZURE, revenue=Decimal(500))
    cases.act("D-T", 2, lambda c: transitions.record_result(c, "kim", AT, found))
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            stored = conn.execute(sa.select(cases_table.c.result).where(cases_table.c.case_id == "D-T")).scalar_one()
            edited = {**stored, "outcome": int(InspectionOutcome.NO_DISCREPANCY), "finding_codes": []}
            conn.execute(sa.update(cases_table).where(cases_table.c.case_id == "D-T").values(result=edited))
        labels = [f.result.outcome for f in cases.labelled_filings() if f.result is not None]
        assert labels == [InspectionOutcome.NO_DISCREPANCY]  # the export now trains on the edited label
        problems = [str(p) for p in audit.verify(engine).problems]
        assert problems == [
            "case D-T: its result is not what its last recorded action left (changed outside the service)"
        ]
    finally:
        engine.dispose()
