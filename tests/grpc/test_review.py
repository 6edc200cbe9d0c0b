"""Officers' review through the real server with real credentials, on SQLite and PostgreSQL: cases open
with non-GREEN assessments, two officers cannot both hold one, stale updates are refused, bad input is
named, and every action is in the audit trail."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf import timestamp_pb2
from google.type import money_pb2

from protos.risk.v1 import assessment_pb2, review_pb2
from protos.risk.v1 import review_service_pb2 as rpb
from protos.risk.v1 import review_service_pb2_grpc as rpb_grpc
from protos.risk.v1 import risk_scoring_service_pb2 as pb
from protos.risk.v1 import risk_scoring_service_pb2_grpc as pb_grpc
from risk_service.domain.declaration import Declaration, DutyTax, Party
from risk_service.grpc.auth import token_digest
from risk_service.settings import ApiToken, AuthSettings, Role
from risk_service.store import audit
from risk_service.store.db import create_engine
from tests.builders import declaration, declaration_to_pb, item
from tests.grpc.conftest import Registry
from tests.grpc.status import field_violations
from tests.serving import ServerThread, make_settings

WATCHLISTED_EXPORTER = Party("DE000000000002", "Watched GmbH")  # in the default rule set's watch list: RED
CALLERS = {
    "clearance": [Role.CLEARANCE],
    "officer-kim": [Role.OFFICER],
    "officer-lee": [Role.OFFICER],
    "analyst-park": [Role.ANALYST],
}


def secret(who: str) -> str:
    return f"token-of-{who}-0123456789"


def as_(who: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {secret(who)}")]


def review_server(
    tmp_path: Path, database_url: str, registry: Registry, callers: dict[str, list[Role]], secret: Callable[[str], str]
) -> ServerThread:
    """A server with the champion model whose callers present `secret(name)` as their token."""
    settings = make_settings(tmp_path, database_url=database_url, tracking_uri=registry.tracking_uri)
    settings.auth = AuthSettings(
        tokens=[ApiToken(name=name, sha256=token_digest(secret(name)), roles=roles) for name, roles in callers.items()]
    )
    return ServerThread(settings)


@pytest.fixture
def server(tmp_path: Path, database_url: str, registry: Registry) -> Iterator[ServerThread]:
    with review_server(tmp_path, database_url, registry, CALLERS, secret) as running:
        yield running


def flagged(**overrides: Any) -> Declaration:
    return declaration(exporter=WATCHLISTED_EXPORTER, **overrides)


def score(scoring: pb_grpc.RiskScoringServiceStub, d: Declaration) -> assessment_pb2.Assessment:
    request = pb.ScoreDeclarationRequest(declaration=declaration_to_pb(d))
    return scoring.ScoreDeclaration(request, metadata=as_("clearance"), timeout=30).assessment


def error_of(call: Callable[..., Any], request: Any, who: str) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call(request, metadata=as_(who), timeout=15)
    return raised.value


def get(review: rpb_grpc.ReviewServiceStub, case_id: str, who: str = "officer-kim") -> review_pb2.CaseDetail:
    return review.GetCase(rpb.GetCaseRequest(case_id=case_id), metadata=as_(who), timeout=15).detail


def claim(review: rpb_grpc.ReviewServiceStub, case_id: str, version: int, who: str) -> review_pb2.Case:
    request = rpb.ClaimCaseRequest(case_id=case_id, expected_version=version)
    return review.ClaimCase(request, metadata=as_(who), timeout=15).case


def result_request(case_id: str, version: int, **fields: Any) -> rpb.RecordInspectionResultRequest:
    result = review_pb2.InspectionResult(
        outcome=fields.pop("outcome", review_pb2.INSPECTION_OUTCOME_DISCREPANCY),
        finding_codes=fields.pop("finding_codes", ["UNDERVALUATION"]),
        revenue_recovered=fields.pop("revenue", money_pb2.Money(currency_code="KRW", units=125_000, nanos=500_000_000)),
        notes=fields.pop("notes", "invoice shows twice the declared value"),
        item_numbers=fields.pop("item_numbers", []),
    )
    assert not fields
    return rpb.RecordInspectionResultRequest(case_id=case_id, expected_version=version, result=result)


def test_a_non_green_assessment_opens_a_case_with_its_reasons_and_a_green_one_does_not(
    scoring: pb_grpc.RiskScoringServiceStub, review: rpb_grpc.ReviewServiceStub
) -> None:
    red = flagged(items=(item(duties_and_taxes=(DutyTax("B00", 340_000.0),)), item(item_number=2)))
    assessment = score(scoring, red)
    assert assessment.channel == assessment_pb2.CHANNEL_RED
    green = declaration()
    assert score(scoring, green).channel == assessment_pb2.CHANNEL_GREEN

    listed = review.ListCases(rpb.ListCasesRequest(), metadata=as_("officer-kim"), timeout=15).cases
    assert [c.case_id for c in listed] == [red.declaration_id]
    case = listed[0]
    assert case.status == review_pb2.CASE_STATUS_OPEN and case.version == 1
    assert case.channel == assessment_pb2.CHANNEL_RED and case.risk_score == pytest.approx(assessment.risk_score)
    assert case.revenue_at_stake == pytest.approx(2 * 340_000.0)
    assert (case.customs_office, case.importer_id, case.assessment_id) == ("020", "IMP-0001", assessment.assessment_id)

    detail = get(review, red.declaration_id)
    assert [v.version for v in detail.declaration_versions] == [1]
    assert [a.assessment_id for a in detail.assessments] == [assessment.assessment_id]
    assert "WATCHLIST-EXPORTER" in {h.rule_id for h in detail.assessments[0].rule_hits}
    assert "DE000000000002" in next(
        h.message for h in detail.assessments[0].rule_hits if h.rule_id == "WATCHLIST-EXPORTER"
    )
    # the champion model scored it: its contributions come in words
    assert detail.explanations and all(e.text and e.item_number in (1, 2) for e in detail.explanations)
    assert detail.importer_history.importer_id == "IMP-0001" and detail.importer_history.filings == 1  # the other
    assert [f.declaration_id for f in detail.importer_history.recent] == [green.declaration_id]
    assert not detail.events

    err = error_of(review.GetCase, rpb.GetCaseRequest(case_id=green.declaration_id), "officer-kim")
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_one_officer_works_a_case_from_claim_to_close_and_each_step_is_audited(
    scoring: pb_grpc.RiskScoringServiceStub, review: rpb_grpc.ReviewServiceStub, server: ServerThread
) -> None:
    d = flagged()
    score(scoring, d)
    case = claim(review, d.declaration_id, 1, "officer-kim")
    assert (case.status, case.assigned_officer, case.version) == (review_pb2.CASE_STATUS_CLAIMED, "officer-kim", 2)

    err = error_of(review.CloseCase, rpb.CloseCaseRequest(case_id=d.declaration_id, expected_version=2), "officer-kim")
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "no inspection result" in (err.details() or "")

    case = review.RecordInspectionResult(
        result_request(d.declaration_id, 2), metadata=as_("officer-kim"), timeout=15
    ).case
    assert case.version == 3
    assert case.result.outcome == review_pb2.INSPECTION_OUTCOME_DISCREPANCY
    assert (case.result.revenue_recovered.units, case.result.revenue_recovered.nanos) == (125_000, 500_000_000)
    assert (case.result.officer, case.result.declaration_version) == ("officer-kim", 1)

    override = review_pb2.ChannelOverride(
        channel=assessment_pb2.CHANNEL_YELLOW, reason_code="DOCUMENTS_VERIFIED", reason_text="origin proof checked"
    )
    case = review.OverrideChannel(
        rpb.OverrideChannelRequest(case_id=d.declaration_id, expected_version=3, override=override),
        metadata=as_("officer-kim"),
        timeout=15,
    ).case
    assert (case.override.channel, case.override.officer) == (assessment_pb2.CHANNEL_YELLOW, "officer-kim")
    assert case.channel == assessment_pb2.CHANNEL_RED  # the assessment stands; the override is beside it

    close = rpb.CloseCaseRequest(case_id=d.declaration_id, expected_version=4)
    case = review.CloseCase(close, metadata=as_("officer-kim"), timeout=15).case
    assert case.status == review_pb2.CASE_STATUS_CLOSED and case.HasField("close_time")

    events = get(review, d.declaration_id).events
    assert [e.action for e in events] == [
        review_pb2.CASE_ACTION_CLAIMED,
        review_pb2.CASE_ACTION_RESULT_RECORDED,
        review_pb2.CASE_ACTION_CHANNEL_OVERRIDDEN,
        review_pb2.CASE_ACTION_CLOSED,
    ]
    assert all(e.actor == "officer-kim" for e in events)
    assert "DISCREPANCY (UNDERVALUATION)" in events[1].detail and "125,000.50 KRW" in events[1].detail
    assert "RED -> YELLOW (DOCUMENTS_VERIFIED): origin proof checked" in events[2].detail

    engine = create_engine(server.settings.resolved_database_url)
    try:
        report = audit.verify(engine)
        assert report.intact, report.problems
        with engine.connect() as conn:
            kinds = [k for (k,) in conn.execute(sa.text("SELECT kind FROM audit_log ORDER BY seq"))]
        assert kinds.count("case_event") == 4
        # an edited result is caught: the event no longer hashes to its entry
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE case_events SET detail = 'result NO_DISCREPANCY' WHERE case_version = 3"))
        problems = [str(p) for p in audit.verify(engine).problems]
        assert len(problems) == 1 and "case_event" in problems[0] and "changed after it was stored" in problems[0]
    finally:
        engine.dispose()


def race_to_claim(
    review: rpb_grpc.ReviewServiceStub,
    case_id: str,
    officers: tuple[str, ...],
    credentials: Callable[[str], list[tuple[str, str]]] = as_,
) -> dict[str, review_pb2.Case | grpc.RpcError]:
    """Each officer claims version 1 of the case at the same moment, with their credentials; what each got."""
    outcomes: dict[str, review_pb2.Case | grpc.RpcError] = {}
    start = threading.Barrier(len(officers))

    def race(who: str) -> None:
        start.wait()
        try:
            request = rpb.ClaimCaseRequest(case_id=case_id, expected_version=1)
            outcomes[who] = review.ClaimCase(request, metadata=credentials(who), timeout=15).case
        except grpc.RpcError as err:
            outcomes[who] = err

    threads = [threading.Thread(target=race, args=(who,)) for who in officers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_two_officers_racing_for_one_case_cannot_both_hold_it(
    scoring: pb_grpc.RiskScoringServiceStub, review: rpb_grpc.ReviewServiceStub
) -> None:
    cases = [flagged() for _ in range(12)]
    for d in cases:
        score(scoring, d)
    for d in cases:
        outcomes = race_to_claim(review, d.declaration_id, ("officer-kim", "officer-lee"))
        won = [who for who, o in outcomes.items() if isinstance(o, review_pb2.Case)]
        lost = [o for o in outcomes.values() if isinstance(o, grpc.RpcError)]
        assert len(won) == 1 and len(lost) == 1, outcomes
        assert lost[0].code() in (grpc.StatusCode.ABORTED, grpc.StatusCode.FAILED_PRECONDITION)
        stored = get(review, d.declaration_id).case
        assert (stored.assigned_officer, stored.version) == (won[0], 2)
        assert len(get(review, d.declaration_id).events) == 1


def test_a_stale_update_is_refused_and_nothing_recorded_is_lost(
    scoring: pb_grpc.RiskScoringServiceStub, review: rpb_grpc.ReviewServiceStub
) -> None:
    d = flagged()
    score(scoring, d)
    claim(review, d.declaration_id, 1, "officer-kim")
    first = result_request(d.declaration_id, 2, finding_codes=["MISCLASSIFICATION"])
    review.RecordInspectionResult(first, metadata=as_("officer-kim"), timeout=15)
    again = result_request(d.declaration_id, 2, outcome=review_pb2.INSPECTION_OUTCOME_NO_DISCREPANCY, finding_codes=[])
    err = error_of(review.RecordInspectionResult, again, "officer-kim")
    assert err.code() == grpc.StatusCode.ABORTED and "version 3, not 2" in (err.details() or "")
    assert get(review, d.declaration_id).case.result.finding_codes == ["MISCLASSIFICATION"]

    # another officer cannot act on a case someone holds, even with the current version
    err = error_of(review.RecordInspectionResult, result_request(d.declaration_id, 3), "officer-lee")
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "held by officer-kim" in (err.details() or "")
    err = error_of(
        review.ReleaseCase, rpb.ReleaseCaseRequest(case_id=d.declaration_id, expected_version=3), "officer-lee"
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION

    # an amendment filed meanwhile moves the case on: the officer's view is stale and is refused
    score(scoring, replace(d, version=2, items=(item(quantity=90),)))
    case = get(review, d.declaration_id).case
    assert (case.declaration_version, case.version, case.assigned_officer) == (2, 4, "officer-kim")
    err = error_of(review.CloseCase, rpb.CloseCaseRequest(case_id=d.declaration_id, expected_version=3), "officer-kim")
    assert err.code() == grpc.StatusCode.ABORTED
    # the result was for version 1: closing needs one for the version now filed
    err = error_of(review.CloseCase, rpb.CloseCaseRequest(case_id=d.declaration_id, expected_version=4), "officer-kim")
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "version 2 has been filed" in (err.details() or "")
    assert [v.version for v in get(review, d.declaration_id).declaration_versions] == [1, 2]


def test_a_green_override_closes_a_case_without_an_inspection(
    scoring: pb_grpc.RiskScoringServiceStub, review: rpb_grpc.ReviewServiceStub
) -> None:
    d = flagged()
    score(scoring, d)
    claim(review, d.declaration_id, 1, "officer-lee")
    override = review_pb2.ChannelOverride(
        channel=assessment_pb2.CHANNEL_GREEN, reason_code="KNOWN_TRADER", reason_text="exporter cleared by intel unit"
    )
    review.OverrideChannel(
        rpb.OverrideChannelRequest(case_id=d.declaration_id, expected_version=2, override=override),
        metadata=as_("officer-lee"),
        timeout=15,
    )
    case = review.CloseCase(
        rpb.CloseCaseRequest(case_id=d.declaration_id, expected_version=3), metadata=as_("officer-lee"), timeout=15
    ).case
    assert case.status == review_pb2.CASE_STATUS_CLOSED and not case.HasField("result")
    err = error_of(review.ClaimCase, rpb.ClaimCaseRequest(case_id=d.declaration_id, expected_version=4), "officer-kim")
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "closed" in (err.details() or "")


def test_bad_review_input_is_named_field_by_field(
    scoring: pb_grpc.RiskScoringServiceStub, review: rpb_grpc.ReviewServiceStub
) -> None:
    d = flagged()
    score(scoring, d)
    claim(review, d.declaration_id, 1, "officer-kim")

    unknown = error_of(review.RecordInspectionResult, result_request("NO-SUCH-CASE", 1), "officer-kim")
    assert unknown.code() == grpc.StatusCode.NOT_FOUND

    cases: list[tuple[rpb.RecordInspectionResultRequest, str]] = [
        (result_request(d.declaration_id, 2, outcome=0), "result.outcome"),
        (result_request(d.declaration_id, 2, finding_codes=["SMUGGLED_UNICORNS"]), "result.finding_codes[0]"),
        (result_request(d.declaration_id, 2, finding_codes=[]), "result.finding_codes"),
        (
            result_request(d.declaration_id, 2, revenue=money_pb2.Money(currency_code="KRW", units=-5)),
            "result.revenue_recovered",
        ),
        (
            result_request(d.declaration_id, 2, revenue=money_pb2.Money(currency_code="XYZ", units=5)),
            "result.revenue_recovered.currency_code",
        ),
        (
            result_request(d.declaration_id, 2, revenue=money_pb2.Money(currency_code="KRW", units=5, nanos=-1)),
            "result.revenue_recovered.nanos",
        ),
        (result_request(d.declaration_id, 2, item_numbers=[7]), "result.item_numbers[0]"),
        (result_request(d.declaration_id, 0), "expected_version"),
    ]
    for request, field in cases:
        err = error_of(review.RecordInspectionResult, request, "officer-kim")
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in field_violations(err), (field, field_violations(err))

    bad_override = rpb.OverrideChannelRequest(
        case_id=d.declaration_id,
        expected_version=2,
        override=review_pb2.ChannelOverride(channel=assessment_pb2.CHANNEL_GREEN, reason_code="BECAUSE"),
    )
    found = field_violations(error_of(review.OverrideChannel, bad_override, "officer-kim"))
    assert {"override.reason_code", "override.reason_text"} <= set(found)

    same = rpb.OverrideChannelRequest(
        case_id=d.declaration_id,
        expected_version=2,
        override=review_pb2.ChannelOverride(channel=assessment_pb2.CHANNEL_RED, reason_code="OTHER", reason_text="x"),
    )
    assert "override.channel" in field_violations(error_of(review.OverrideChannel, same, "officer-kim"))

    listing = field_violations(error_of(review.ListCases, rpb.ListCasesRequest(page_token="garbage!"), "officer-kim"))
    assert "page_token" in listing
    stats = field_violations(error_of(review.GetRuleStats, rpb.GetRuleStatsRequest(), "analyst-park"))
    assert {"since", "until"} <= set(stats)
    # nothing was recorded by any refused call
    detail = get(review, d.declaration_id)
    assert detail.case.version == 2 and not detail.case.HasField("result") and len(detail.events) == 1


def test_each_review_rpc_needs_its_role(
    scoring: pb_grpc.RiskScoringServiceStub, review: rpb_grpc.ReviewServiceStub
) -> None:
    d = flagged()
    score(scoring, d)
    listing = rpb.ListCasesRequest()
    with pytest.raises(grpc.RpcError) as anonymous:
        review.ListCases(listing, timeout=15)
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_of(review.ListCases, listing, "clearance").code() == grpc.StatusCode.PERMISSION_DENIED
    assert review.ListCases(listing, metadata=as_("analyst-park"), timeout=15).cases
    claim_request = rpb.ClaimCaseRequest(case_id=d.declaration_id, expected_version=1)
    assert error_of(review.ClaimCase, claim_request, "analyst-park").code() == grpc.StatusCode.PERMISSION_DENIED
    # with credentials the officer is the credential's name, whatever the request says
    forged = rpb.ClaimCaseRequest(case_id=d.declaration_id, expected_version=1, officer="officer-lee")
    assert review.ClaimCase(forged, metadata=as_("officer-kim"), timeout=15).case.assigned_officer == "officer-kim"


def test_the_queue_is_riskiest_first_filtered_and_paged(
    scoring: pb_grpc.RiskScoringServiceStub, review: rpb_grpc.ReviewServiceStub
) -> None:
    filed = [flagged(customs_office="020"), flagged(customs_office="030"), flagged(customs_office="030")]
    filed += [flagged(importer=Party("GB000000000001", "Watched Ltd"), customs_office="030")]  # two watch-list hits
    for d in filed:
        score(scoring, d)
    every = review.ListCases(rpb.ListCasesRequest(), metadata=as_("officer-kim"), timeout=15).cases
    order = [(-c.risk_score, -c.revenue_at_stake, c.case_id) for c in every]
    assert order == sorted(order) and len(every) == 4

    paged: list[str] = []
    token = ""
    while True:
        page = review.ListCases(
            rpb.ListCasesRequest(page_size=3, page_token=token), metadata=as_("officer-kim"), timeout=15
        )
        assert len(page.cases) <= 3
        paged += [c.case_id for c in page.cases]
        token = page.next_page_token
        if not token:
            break
    assert paged == [c.case_id for c in every]

    def ids(**filters: Any) -> set[str]:
        request = rpb.ListCasesRequest(**filters)
        return {c.case_id for c in review.ListCases(request, metadata=as_("officer-kim"), timeout=15).cases}

    assert ids(customs_office="020") == {filed[0].declaration_id}
    claim(review, filed[1].declaration_id, 1, "officer-lee")
    assert ids(assigned_officer="officer-lee") == {filed[1].declaration_id}
    assert ids(statuses=[review_pb2.CASE_STATUS_OPEN]) == {d.declaration_id for d in filed} - {filed[1].declaration_id}
    top = every[0]
    assert ids(min_risk_score=top.risk_score) == {c.case_id for c in every if c.risk_score >= top.risk_score}
    assert ids(channels=[assessment_pb2.CHANNEL_YELLOW]) == set()
    later = timestamp_pb2.Timestamp()
    later.FromDatetime(datetime.now(UTC) + timedelta(hours=1))
    assert ids(opened_after=later) == set()
