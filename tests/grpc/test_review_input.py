"""Officers' input that must get a clear INVALID_ARGUMENT naming the field, never INTERNAL, on both databases:
amounts past what Money and the stores hold, control characters (PostgreSQL refuses NUL), unknown enum
values in filters. And the case stays readable afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.type import money_pb2

from protos.risk.v1 import assessment_pb2, review_pb2
from protos.risk.v1 import review_service_pb2 as rpb
from protos.risk.v1 import review_service_pb2_grpc as rpb_grpc
from protos.risk.v1 import risk_scoring_service_pb2_grpc as pb_grpc
from tests.grpc.conftest import Registry
from tests.grpc.status import field_violations
from tests.grpc.test_review import CALLERS, as_, claim, flagged, get, result_request, review_server, score, secret
from tests.serving import ServerThread


@pytest.fixture
def server(tmp_path: Path, database_url: str, registry: Registry) -> Iterator[ServerThread]:
    with review_server(tmp_path, database_url, registry, CALLERS, secret) as running:
        yield running


def refused_field(call, request) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The field violations of a call that must be refused as INVALID_ARGUMENT."""
    with pytest.raises(grpc.RpcError) as raised:
        call(request, metadata=as_("officer-kim"), timeout=15)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    return field_violations(raised.value)


def claimed_case(scoring: pb_grpc.RiskScoringServiceStub, review: rpb_grpc.ReviewServiceStub) -> str:
    d = flagged()
    score(scoring, d)
    claim(review, d.declaration_id, 1, "officer-kim")
    return d.declaration_id


def test_revenue_past_the_bound_is_refused_and_the_case_stays_readable(
    scoring: pb_grpc.RiskScoringServiceStub, review: rpb_grpc.ReviewServiceStub
) -> None:
    case_id = claimed_case(scoring, review)
    for units in (2**63 - 1, 10**15 + 1):
        huge = money_pb2.Money(currency_code="KRW", units=units)
        assert "result.revenue_recovered" in refused_field(
            review.RecordInspectionResult, result_request(case_id, 2, revenue=huge)
        )
    assert get(review, case_id).case.version == 2
    assert review.ListCases(rpb.ListCasesRequest(), metadata=as_("officer-kim"), timeout=15).cases


def test_revenue_comes_back_exactly_as_recorded(
    scoring: pb_grpc.RiskScoringServiceStub, review: rpb_grpc.ReviewServiceStub
) -> None:
    case_id = claimed_case(scoring, review)
    money = money_pb2.Money(currency_code="KRW", units=123_456_789_012, nanos=990_000_001)
    review.RecordInspectionResult(result_request(case_id, 2, revenue=money), metadata=as_("officer-kim"), timeout=15)
    back = get(review, case_id).case.result.revenue_recovered
    assert (back.units, back.nanos, back.currency_code) == (123_456_789_012, 990_000_001, "KRW")


def test_control_characters_are_refused_by_field(
    scoring: pb_grpc.RiskScoringServiceStub, review: rpb_grpc.ReviewServiceStub
) -> None:
    case_id = claimed_case(scoring, review)
    assert "result.notes" in refused_field(
        review.RecordInspectionResult, result_request(case_id, 2, notes="seal\x00broken")
    )
    override = review_pb2.ChannelOverride(
        channel=assessment_pb2.CHANNEL_YELLOW, reason_code="OTHER", reason_text="because\x00"
    )
    request = rpb.OverrideChannelRequest(case_id=case_id, expected_version=2, override=override)
    assert "override.reason_text" in refused_field(review.OverrideChannel, request)
    assert "case_id" in refused_field(review.GetCase, rpb.GetCaseRequest(case_id="D\x00"))
    listing = refused_field(review.ListCases, rpb.ListCasesRequest(customs_office="0\x0020", assigned_officer="k\x01"))
    assert {"customs_office", "assigned_officer"} <= set(listing)
    # notes keep their line breaks and tabs
    fine = result_request(case_id, 2, notes="seal broken\n\tsecond line")
    assert (
        review.RecordInspectionResult(fine, metadata=as_("officer-kim"), timeout=15).case.result.notes.count("\n") == 1
    )


def test_unknown_or_unspecified_values_in_list_filters_are_refused(
    scoring: pb_grpc.RiskScoringServiceStub, review: rpb_grpc.ReviewServiceStub
) -> None:
    score(scoring, flagged())
    request = rpb.ListCasesRequest(channels=[assessment_pb2.CHANNEL_RED, 99])  # type: ignore[list-item]
    assert "channels[1]" in refused_field(review.ListCases, request)
    request = rpb.ListCasesRequest(statuses=[review_pb2.CASE_STATUS_UNSPECIFIED])
    assert "statuses[0]" in refused_field(review.ListCases, request)
