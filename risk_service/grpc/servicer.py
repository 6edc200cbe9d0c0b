"""Thin servicer: convert, call the scoring service, convert back. Errors are mapped in errors.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from protos.risk.v1 import risk_scoring_service_pb2 as pb
from protos.risk.v1 import risk_scoring_service_pb2_grpc as pb_grpc
from risk_service.domain.assessment import Assessment
from risk_service.domain.cargo.service import CargoScoringService
from risk_service.domain.errors import FailedPrecondition
from risk_service.domain.permits.service import PermitService
from risk_service.domain.service import ScoringService
from risk_service.grpc.auth import actor_of
from risk_service.grpc.cargo_convert import cargo_assessment_to_pb, cargo_report_from_pb
from risk_service.grpc.convert import assessment_to_pb, declaration_from_pb
from risk_service.grpc.errors import status_from_error
from risk_service.grpc.permit_convert import cancellation_to_pb
from risk_service.grpc.streaming import chunked


class RiskScoringServicer(pb_grpc.RiskScoringServiceServicer):  # type: ignore[misc]
    def __init__(
        self,
        service: ScoringService,
        stream_chunk_size: int,
        permits: PermitService | None = None,
        cargo: CargoScoringService | None = None,
    ) -> None:
        self._service = service
        self._stream_chunk_size = stream_chunk_size
        self._permits = permits  # None: the permit registry is not enabled
        self._cargo = cargo  # None: cargo screening is not wired (some tests)

    async def ScoreDeclaration(
        self, request: pb.ScoreDeclarationRequest, context: grpc.aio.ServicerContext
    ) -> pb.ScoreDeclarationResponse:
        assessment = await self._service.score_one(declaration_from_pb(request.declaration))
        return pb.ScoreDeclarationResponse(assessment=assessment_to_pb(assessment))

    async def ScoreDeclarations(
        self, request: pb.ScoreDeclarationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ScoreDeclarationsResponse:
        assessments = await self._service.score_batch([declaration_from_pb(d) for d in request.declarations])
        return pb.ScoreDeclarationsResponse(assessments=[assessment_to_pb(a) for a in assessments])

    async def StreamScoreDeclarations(
        self,
        request_iterator: AsyncIterator[pb.StreamScoreDeclarationsRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.StreamScoreDeclarationsResponse]:
        async for chunk in chunked(request_iterator, self._stream_chunk_size):
            declarations = [declaration_from_pb(r.declaration) for r in chunk]
            outcomes = await self._service.score_each(declarations)
            for declaration, outcome in zip(declarations, outcomes, strict=True):
                response = pb.StreamScoreDeclarationsResponse(
                    declaration_id=declaration.declaration_id, declaration_version=declaration.version
                )
                if isinstance(outcome, Assessment):
                    response.assessment.CopyFrom(assessment_to_pb(outcome))
                else:
                    response.error.CopyFrom(status_from_error(outcome))
                yield response

    async def CancelDeclaration(
        self, request: pb.CancelDeclarationRequest, context: grpc.aio.ServicerContext
    ) -> pb.CancelDeclarationResponse:
        if self._permits is None:
            raise FailedPrecondition("permits are not enabled")
        result = await self._permits.cancel_declaration(
            request.declaration_id, request_id=request.request_id, actor=actor_of(request.actor), reason=request.reason
        )
        return cancellation_to_pb(result)

    async def ScoreCargoReport(
        self, request: pb.ScoreCargoReportRequest, context: grpc.aio.ServicerContext
    ) -> pb.ScoreCargoReportResponse:
        assessment = await self._cargo_service().score_one(cargo_report_from_pb(request.cargo_report))
        return pb.ScoreCargoReportResponse(assessment=cargo_assessment_to_pb(assessment))

    async def ScoreCargoReports(
        self, request: pb.ScoreCargoReportsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ScoreCargoReportsResponse:
        assessments = await self._cargo_service().score_batch([cargo_report_from_pb(r) for r in request.cargo_reports])
        return pb.ScoreCargoReportsResponse(assessments=[cargo_assessment_to_pb(a) for a in assessments])

    def _cargo_service(self) -> CargoScoringService:
        if self._cargo is None:
            raise FailedPrecondition("cargo screening is not enabled")
        return self._cargo
