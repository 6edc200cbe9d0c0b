"""Thin servicer of officers' review: the officer is the credential's name; errors.py maps errors."""

from __future__ import annotations

import grpc

from protos.risk.v1 import review_service_pb2 as pb
from protos.risk.v1 import review_service_pb2_grpc as pb_grpc
from risk_service.domain.review.service import ReviewService
from risk_service.grpc.auth import current_principal
from risk_service.grpc.convert import time_from_pb
from risk_service.grpc.review_convert import (
    case_to_pb,
    detail_to_pb,
    filter_from_pb,
    override_from_pb,
    result_from_pb,
    rule_stats_to_pb,
)


def _officer(requested: str) -> str:
    """With credentials the caller is who the credential says, whatever the request names."""
    principal = current_principal()
    return principal.name if principal is not None else requested


class ReviewServicer(pb_grpc.ReviewServiceServicer):  # type: ignore[misc]
    def __init__(self, service: ReviewService) -> None:
        self._service = service

    async def ListCases(self, request: pb.ListCasesRequest, context: grpc.aio.ServicerContext) -> pb.ListCasesResponse:
        cases, token = await self._service.list(
            filter_from_pb(request), page_size=request.page_size, page_token=request.page_token
        )
        return pb.ListCasesResponse(cases=[case_to_pb(c) for c in cases], next_page_token=token)

    async def GetCase(self, request: pb.GetCaseRequest, context: grpc.aio.ServicerContext) -> pb.GetCaseResponse:
        return pb.GetCaseResponse(detail=detail_to_pb(await self._service.detail(request.case_id)))

    async def ClaimCase(self, request: pb.ClaimCaseRequest, context: grpc.aio.ServicerContext) -> pb.ClaimCaseResponse:
        case = await self._service.claim(request.case_id, request.expected_version, _officer(request.officer))
        return pb.ClaimCaseResponse(case=case_to_pb(case))

    async def ReleaseCase(
        self, request: pb.ReleaseCaseRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReleaseCaseResponse:
        case = await self._service.release(request.case_id, request.expected_version, _officer(request.officer))
        return pb.ReleaseCaseResponse(case=case_to_pb(case))

    async def RecordInspectionResult(
        self, request: pb.RecordInspectionResultRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordInspectionResultResponse:
        result = result_from_pb(request.result, self._service.policy.currency)
        case = await self._service.record_result(
            request.case_id, request.expected_version, _officer(request.officer), result
        )
        return pb.RecordInspectionResultResponse(case=case_to_pb(case))

    async def OverrideChannel(
        self, request: pb.OverrideChannelRequest, context: grpc.aio.ServicerContext
    ) -> pb.OverrideChannelResponse:
        case = await self._service.override(
            request.case_id, request.expected_version, _officer(request.officer), override_from_pb(request.override)
        )
        return pb.OverrideChannelResponse(case=case_to_pb(case))

    async def CloseCase(self, request: pb.CloseCaseRequest, context: grpc.aio.ServicerContext) -> pb.CloseCaseResponse:
        case = await self._service.close(request.case_id, request.expected_version, _officer(request.officer))
        return pb.CloseCaseResponse(case=case_to_pb(case))

    async def GetRuleStats(
        self, request: pb.GetRuleStatsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetRuleStatsResponse:
        stats = await self._service.rule_stats(
            time_from_pb(request.since, request.HasField("since")),
            time_from_pb(request.until, request.HasField("until")),
        )
        return rule_stats_to_pb(stats)
