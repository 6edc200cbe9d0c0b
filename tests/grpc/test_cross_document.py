"""Declarations and cargo reports of one consignment are compared, whichever arrives first; the earlier
one is re-assessed and its history shows both assessments. Real server, SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

from protos.risk.v1 import assessment_pb2
from protos.risk.v1 import review_service_pb2 as rpb
from protos.risk.v1 import review_service_pb2_grpc as rpb_grpc
from protos.risk.v1 import risk_scoring_service_pb2 as pb
from risk_service.domain.assessment import Channel
from risk_service.domain.declaration import Party
from risk_service.grpc.cargo_convert import cargo_report_to_pb
from risk_service.store import SqlAssessmentStore
from risk_service.store.cargo_store import SqlCargoStore
from tests.builders import declaration, declaration_to_pb, item
from tests.cargo_builders import CONTAINER_NUMBERS, cargo_item, cargo_report, container
from tests.serving import ServerThread

BILL = "OCLU2026SHA0777"


def manifest(report_id: str, bill: str = BILL, mass: float = 500.0):  # type: ignore[no-untyped-def]
    return cargo_report(
        report_id=report_id,
        master_transport_document_number=bill,
        consignee=Party("IMP-7"),
        containers=(container(items=(cargo_item(hs_code="847130", packages=40, gross_mass_kg=mass),)),),
    )


def goods_declaration(bill: str = BILL, mass: float = 300.0):  # type: ignore[no-untyped-def]
    return declaration(
        transport_document_number=bill,
        container_numbers=(CONTAINER_NUMBERS[0],),
        importer=Party("IMP-7"),
        aeo_status=3,
        items=(item(hs_code="8471300000", gross_mass_kg=mass, net_mass_kg=mass * 0.9, packages=40),),
    )


def score_declaration(stub, d):  # type: ignore[no-untyped-def]
    return stub.ScoreDeclaration(pb.ScoreDeclarationRequest(declaration=declaration_to_pb(d)), timeout=10).assessment


def score_report(stub, r):  # type: ignore[no-untyped-def]
    return stub.ScoreCargoReport(pb.ScoreCargoReportRequest(cargo_report=cargo_report_to_pb(r)), timeout=10).assessment


def test_a_manifest_after_the_declaration_flags_both_and_re_assesses_the_declaration(
    stub,  # type: ignore[no-untyped-def]
    server: ServerThread,
) -> None:
    d = goods_declaration()
    first = score_declaration(stub, d)
    assert not [h for h in first.rule_hits if h.rule_id.startswith("CONSISTENCY_")]

    report = score_report(stub, manifest("CR-X-1"))
    (hit,) = [h for h in report.rule_hits if h.rule_id == "CONSISTENCY_GROSS_MASS"]
    assert "300 kg declared" in hit.message and "500 kg on the cargo report" in hit.message
    assert d.declaration_id in hit.message

    url = server.settings.resolved_database_url
    with SqlAssessmentStore(url) as store:
        history = store.history(d.declaration_id)
    assert [a.assessment_id for a in history[:1]] == [first.assessment_id]
    assert len(history) == 2
    again = history[1]
    assert again.assessment_id != first.assessment_id and again.declaration_version == 1
    (flag,) = [h for h in again.rule_hits if h.rule_id == "CONSISTENCY_GROSS_MASS"]
    assert "CR-X-1" in flag.message and flag.fields == ("declaration.items.gross_mass_kg",)
    assert again.channel >= Channel.YELLOW and again.risk_score >= first.risk_score
    # the re-assessment put the declaration in front of officers, with the manifest beside it
    with server.channel() as channel:
        request = rpb.GetCaseRequest(case_id=d.declaration_id)
        detail = rpb_grpc.ReviewServiceStub(channel).GetCase(request, timeout=10).detail
    assert (detail.case.assessment_id, detail.case.channel) == (again.assessment_id, int(again.channel))
    assert [h.rule_id for h in detail.consistency_findings] == ["CONSISTENCY_GROSS_MASS"]
    assert [r.report.report_id for r in detail.cargo_reports] == ["CR-X-1"]
    assert [a.assessment_id for a in detail.assessments] == [first.assessment_id, again.assessment_id]
    # the declaration's own filing answer is unchanged: a retry gets the stored original
    assert score_declaration(stub, d) == first
    # a retried manifest adds no second re-assessment
    score_report(stub, manifest("CR-X-1"))
    with SqlAssessmentStore(url) as store:
        assert len(store.history(d.declaration_id)) == 2


def test_a_declaration_after_the_manifest_is_flagged_and_the_manifest_re_assessed(
    stub,  # type: ignore[no-untyped-def]
    server: ServerThread,
) -> None:
    report = manifest("CR-Y-1", bill="OCLU2026SHA0888")
    first = score_report(stub, report)
    assert first.pre_loading_outcome == 1  # ASSESSMENT_COMPLETE

    d = goods_declaration(bill="OCLU2026SHA0888", mass=300.0)
    a = score_declaration(stub, d)
    (hit,) = [h for h in a.rule_hits if h.rule_id == "CONSISTENCY_GROSS_MASS"]
    assert "300 kg declared, 500 kg on the cargo report" in hit.message
    assert a.channel in (assessment_pb2.CHANNEL_YELLOW, assessment_pb2.CHANNEL_RED)

    with SqlCargoStore(server.settings.resolved_database_url) as cargo:
        history = cargo.history("CR-Y-1")
    assert [h.assessment_id for h in history][:1] == [first.assessment_id] and len(history) == 2
    assert "CONSISTENCY_GROSS_MASS" in {h.rule_id for h in history[1].rule_hits}
    assert history[1].pre_loading_outcome.name == "REQUEST_FOR_INFORMATION"


def test_documents_that_agree_are_still_re_assessed_with_nothing_added(
    stub,  # type: ignore[no-untyped-def]
    server: ServerThread,
) -> None:
    d = goods_declaration(bill="OCLU2026SHA0999", mass=500.0)
    score_declaration(stub, d)
    report = score_report(stub, manifest("CR-Z-1", bill="OCLU2026SHA0999"))
    assert not [h for h in report.rule_hits if h.rule_id.startswith("CONSISTENCY_")]
    with SqlAssessmentStore(server.settings.resolved_database_url) as store:
        history = store.history(d.declaration_id)
    assert len(history) == 2 and history[1].rule_hits == history[0].rule_hits
    assert (history[1].channel, history[1].risk_score) == (history[0].channel, history[0].risk_score)


def test_an_unrelated_manifest_touches_nothing(stub, server: ServerThread) -> None:  # type: ignore[no-untyped-def]
    d = replace(goods_declaration(bill="OCLU2026SHA0555"), container_numbers=("MAEU7654320",))
    score_declaration(stub, d)
    score_report(stub, manifest("CR-W-1", bill="OTHER-BILL"))
    with SqlAssessmentStore(server.settings.resolved_database_url) as store:
        assert len(store.history(d.declaration_id)) == 1


def test_a_corrected_manifest_replaces_the_earlier_mismatch_instead_of_adding_to_it(
    stub,  # type: ignore[no-untyped-def]
    server: ServerThread,
) -> None:
    bill = "OCLU2026SHA0111"
    d = goods_declaration(bill=bill, mass=300.0)
    score_declaration(stub, d)
    score_report(stub, manifest("CR-V", bill=bill, mass=500.0))
    score_report(stub, replace(manifest("CR-V", bill=bill, mass=300.0), version=2))  # corrected
    score_report(stub, replace(manifest("CR-V", bill=bill, mass=700.0), version=3))  # wrong again
    with SqlAssessmentStore(server.settings.resolved_database_url) as store:
        history = store.history(d.declaration_id)
    masses = [[h.message for h in a.rule_hits if h.rule_id == "CONSISTENCY_GROSS_MASS"] for a in history]
    assert len(masses) == 4
    assert masses[0] == [] and len(masses[1]) == 1 and "500 kg" in masses[1][0]
    assert masses[2] == []  # the correction cleared it
    assert len(masses[3]) == 1 and "700 kg" in masses[3][0]  # one reason, not two
    assert history[2].channel == history[0].channel and history[2].risk_score == history[0].risk_score


def test_a_superseded_declaration_version_is_not_compared(stub, server: ServerThread) -> None:  # type: ignore[no-untyped-def]
    d = replace(goods_declaration(bill="OCLU2026SHA0222"), container_numbers=("MAEU7654320",))
    score_declaration(stub, d)
    score_declaration(stub, replace(d, version=2, transport_document_number="OCLU2026SHA0333"))
    report = score_report(stub, manifest("CR-U", bill="OCLU2026SHA0222"))  # the bill v1 named, v2 corrected
    assert not [h for h in report.rule_hits if h.rule_id.startswith("CONSISTENCY_")]
    with SqlAssessmentStore(server.settings.resolved_database_url) as store:
        assert len(store.history(d.declaration_id)) == 2  # its two versions, no re-assessment


def test_a_reused_container_links_only_near_in_time(stub, server: ServerThread) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    old = manifest("CR-OLD", bill="OLD-BILL", mass=9000.0)
    months_ago = timedelta(days=180)
    old = replace(
        old,
        planned_loading_time=old.planned_loading_time - months_ago,
        planned_arrival_time=old.planned_arrival_time - months_ago,
        filing_time=old.filing_time - months_ago,
    )
    score_report(stub, old)  # same container, another shipment half a year ago
    d = goods_declaration(bill="NEW-BILL", mass=300.0)
    a = score_declaration(stub, d)
    assert not [h for h in a.rule_hits if h.rule_id.startswith("CONSISTENCY_")]
    with SqlCargoStore(server.settings.resolved_database_url) as cargo:
        assert len(cargo.history("CR-OLD")) == 1
