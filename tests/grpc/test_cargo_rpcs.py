"""Cargo report screening end to end: real server, real store on SQLite and PostgreSQL, default cargo rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import grpc
import pytest
import sqlalchemy as sa

from protos.risk.v1 import cargo_pb2
from protos.risk.v1 import risk_scoring_service_pb2 as pb
from risk_service.domain.cargo.model import CargoReport, FilingType
from risk_service.domain.declaration import Party
from risk_service.grpc.cargo_convert import cargo_report_to_pb
from tests.cargo_builders import (
    CONTAINER_NUMBERS,
    PLANNED_LOADING,
    cargo_item,
    cargo_report,
    container,
)
from tests.grpc.status import field_violations
from tests.serving import ServerThread

WATCHLISTED_PARTY = "NL000000000003"  # in risk_service/domain/rules/default_watchlisted_parties.yaml


def clean_report(**overrides: object) -> CargoReport:
    """A pre-loading report no default cargo rule fires on: two sealed containers, masses that add up."""
    containers = tuple(
        container(
            container_number=number,
            seal_numbers=(f"SL{n:07d}",),
            gross_mass_kg=500.0,
            items=(cargo_item(),),
        )
        for n, number in enumerate(CONTAINER_NUMBERS[:2])
    )
    return cargo_report(**{"containers": containers, **overrides})


def score(stub, report: CargoReport) -> cargo_pb2.CargoAssessment:  # type: ignore[no-untyped-def]
    request = pb.ScoreCargoReportRequest(cargo_report=cargo_report_to_pb(report))
    return stub.ScoreCargoReport(request, timeout=10).assessment


def stored_reports(server: ServerThread) -> int:
    engine = sa.create_engine(server.settings.resolved_database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM cargo_assessments")).scalar_one())
    finally:
        engine.dispose()


def test_a_clean_pre_loading_report_may_be_loaded_and_a_retry_gets_the_stored_answer(stub) -> None:  # type: ignore[no-untyped-def]
    report = clean_report()
    a = score(stub, report)
    assert a.report_id == report.report_id and a.report_version == 1
    assert a.filing_type == cargo_pb2.FILING_TYPE_PRE_LOADING
    assert a.pre_loading_outcome == cargo_pb2.PRE_LOADING_OUTCOME_ASSESSMENT_COMPLETE, a
    assert [c.container_number for c in a.containers] == list(CONTAINER_NUMBERS[:2])
    assert all(c.outcome == cargo_pb2.CONTAINER_OUTCOME_NO_ACTION for c in a.containers)
    assert not a.rule_hits and a.rule_set_version and a.assessment_id
    assert a.summary.no_action == 2 and a.summary.highest_risk_container in CONTAINER_NUMBERS
    assert score(stub, report) == a


def test_a_watch_listed_consignee_gets_do_not_load_with_its_reasons(stub) -> None:  # type: ignore[no-untyped-def]
    a = score(stub, clean_report(consignee=Party(WATCHLISTED_PARTY, "Shell Co")))
    assert a.pre_loading_outcome == cargo_pb2.PRE_LOADING_OUTCOME_DO_NOT_LOAD
    (hit,) = [h for h in a.rule_hits if h.rule_id == "CARGO-WATCHLIST-CONSIGNEE"]
    assert WATCHLISTED_PARTY in hit.message and "cargo_report.consignee.id" in hit.fields
    # a report-level hit counts for every container
    assert all(c.outcome == cargo_pb2.CONTAINER_OUTCOME_PHYSICAL_EXAMINATION for c in a.containers)


def test_a_late_filing_asks_for_information_before_loading(stub) -> None:  # type: ignore[no-untyped-def]
    late = clean_report(report_id="CR-LATE", filing_time=PLANNED_LOADING - timedelta(hours=5))
    a = score(stub, late)
    assert "CARGO-LATE-FILING" in {h.rule_id for h in a.rule_hits}
    assert a.pre_loading_outcome == cargo_pb2.PRE_LOADING_OUTCOME_REQUEST_FOR_INFORMATION


def test_pre_arrival_targets_only_the_container_whose_data_is_off(stub) -> None:  # type: ignore[no-untyped-def]
    first, second = clean_report().containers
    unsealed = replace(second, seal_numbers=(), gross_mass_kg=900.0)  # no seal, 80 % more mass than its items
    report = clean_report(
        report_id="CR-ARRIVAL",
        filing_type=FilingType.PRE_ARRIVAL,
        filing_time=PLANNED_LOADING + timedelta(days=1),  # at sea, before arrival
        containers=(first, unsealed),
    )
    a = score(stub, report)
    assert a.pre_loading_outcome == cargo_pb2.PRE_LOADING_OUTCOME_UNSPECIFIED
    by_number = {c.container_number: c for c in a.containers}
    flagged = by_number[unsealed.container_number]
    assert {h.rule_id for h in flagged.rule_hits} >= {"CARGO-SEAL-MISSING", "CARGO-MASS-GAP"}
    assert flagged.outcome in (cargo_pb2.CONTAINER_OUTCOME_SCAN, cargo_pb2.CONTAINER_OUTCOME_PHYSICAL_EXAMINATION)
    gap = next(h for h in flagged.rule_hits if h.rule_id == "CARGO-MASS-GAP")
    assert "900 kg" in gap.message and "500 kg" in gap.message  # both figures, for the officer
    assert by_number[first.container_number].rule_hits == []
    assert a.summary.highest_risk_container == unsealed.container_number
    assert a.summary.scan + a.summary.physical_examination >= 1
    assert a.risk_score == flagged.risk_score > by_number[first.container_number].risk_score


def test_an_amendment_after_a_risk_result_is_flagged(stub) -> None:  # type: ignore[no-untyped-def]
    first = clean_report(report_id="CR-AMEND", consignee=Party(WATCHLISTED_PARTY))
    assert score(stub, first).pre_loading_outcome == cargo_pb2.PRE_LOADING_OUTCOME_DO_NOT_LOAD
    amended = replace(first, version=2, consignee=Party("NL123456789", "Rotterdam Trading BV"))
    a = score(stub, amended)
    assert "CARGO-AMENDED-AFTER-RISK-RESULT" in {h.rule_id for h in a.rule_hits}
    # a first version that was let through is no reason: its amendment is not flagged
    calm = clean_report(report_id="CR-CALM")
    score(stub, calm)
    again = score(stub, replace(calm, version=2, voyage_number="047W"))
    assert "CARGO-AMENDED-AFTER-RISK-RESULT" not in {h.rule_id for h in again.rule_hits}


def test_invalid_reports_are_refused_with_field_paths_and_nothing_is_stored(stub, server: ServerThread) -> None:  # type: ignore[no-untyped-def]
    broken_container = replace(clean_report().containers[0], container_number="CSQU3054384")  # wrong check digit
    bad = clean_report(
        vessel_imo_number="9074728",  # wrong check digit
        planned_arrival_time=PLANNED_LOADING - timedelta(days=1),  # arrives before it is loaded
        containers=(broken_container,),
        port_of_loading="XX123",
    )
    with pytest.raises(grpc.RpcError) as caught:
        score(stub, bad)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(caught.value)
    assert {
        "cargo_report.vessel_imo_number",
        "cargo_report.containers[0].container_number",
        "cargo_report.port_of_loading",
    } <= set(violations), violations
    assert any("arrival" in path for path in violations), violations
    assert stored_reports(server) == 0


def test_a_reused_version_with_other_content_is_refused_and_a_batch_is_all_or_nothing(  # type: ignore[no-untyped-def]
    stub, server: ServerThread
) -> None:
    first = clean_report(report_id="CR-DUP")
    score(stub, first)
    with pytest.raises(grpc.RpcError) as caught:
        score(stub, replace(first, voyage_number="999X"))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS

    fresh = clean_report(report_id="CR-BATCH-1")
    conflicting = replace(first, voyage_number="999X")
    request = pb.ScoreCargoReportsRequest(cargo_reports=[cargo_report_to_pb(fresh), cargo_report_to_pb(conflicting)])
    with pytest.raises(grpc.RpcError) as caught:
        stub.ScoreCargoReports(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert stored_reports(server) == 1  # CR-BATCH-1 was not stored

    reports = [clean_report(report_id=f"CR-BATCH-{n}") for n in range(3)]
    response = stub.ScoreCargoReports(
        pb.ScoreCargoReportsRequest(cargo_reports=[cargo_report_to_pb(r) for r in reports]), timeout=10
    )
    assert [a.report_id for a in response.assessments] == [r.report_id for r in reports]
    assert stored_reports(server) == 4


def test_an_empty_batch_names_the_field(stub) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as caught:
        stub.ScoreCargoReports(pb.ScoreCargoReportsRequest(), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "cargo_reports" in field_violations(caught.value)
