"""Thin servicer of the permit registry: convert, call the permit service, convert back; errors.py maps errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import grpc

from protos.risk.v1 import permit_service_pb2 as pb
from protos.risk.v1 import permit_service_pb2_grpc as pb_grpc
from risk_service.domain.errors import FieldViolation, InvalidArgument, PermissionDenied
from risk_service.domain.permits.service import ImportRow, PermitService
from risk_service.grpc.auth import actor_of, current_principal
from risk_service.grpc.permit_convert import (
    change_to_pb,
    filter_from_pb,
    import_report_to_pb,
    import_row_from_pb,
    permit_from_pb,
    permit_state_to_pb,
    usage_to_pb,
)

#: Most rows one ImportPermits stream may carry by default (PermitSettings.max_import_rows sets it).
MAX_IMPORT_ROWS = 200_000


def _may_change(agency: str, permit_id: str) -> None:
    principal = current_principal()
    if principal is not None and not principal.may_change(agency):
        raise PermissionDenied(f"{principal.name} acts for {principal.agency}, not for {agency} (permit {permit_id})")


def _may_read(agency: str, permit_id: str) -> None:
    principal = current_principal()
    if principal is not None and not principal.may_read(agency):
        raise PermissionDenied(f"{principal.name} may read its agency's permits only, not {permit_id}")


class PermitServicer(pb_grpc.PermitServiceServicer):  # type: ignore[misc]
    """Agencies change their own permits only; `actor` comes from the credential when there is one."""

    def __init__(self, service: PermitService, *, max_import_rows: int = MAX_IMPORT_ROWS) -> None:
        self._service = service
        self._max_import_rows = max_import_rows

    async def _owned(self, permit_id: str) -> None:
        """Refuses a change to a registered permit of another agency (an unknown one stays NOT_FOUND)."""
        if current_principal() is not None:
            state = await self._service.get(permit_id)
            _may_change(state.permit.issuing_agency, permit_id)

    async def SubmitPermit(
        self, request: pb.SubmitPermitRequest, context: grpc.aio.ServicerContext
    ) -> pb.SubmitPermitResponse:
        _may_change(request.permit.issuing_agency, request.permit.permit_id)
        change = await self._service.submit(
            permit_from_pb(request.permit),
            request_id=request.request_id,
            actor=actor_of(request.actor),
            reason=request.reason,
        )
        return pb.SubmitPermitResponse(change=change_to_pb(change))

    async def AmendPermit(
        self, request: pb.AmendPermitRequest, context: grpc.aio.ServicerContext
    ) -> pb.AmendPermitResponse:
        _may_change(request.permit.issuing_agency, request.permit.permit_id)
        await self._owned(request.permit.permit_id)
        change = await self._service.amend(
            permit_from_pb(request.permit),
            request_id=request.request_id,
            actor=actor_of(request.actor),
            reason=request.reason,
            expected_version=request.expected_version,
        )
        return pb.AmendPermitResponse(change=change_to_pb(change))

    async def SuspendPermit(
        self, request: pb.SuspendPermitRequest, context: grpc.aio.ServicerContext
    ) -> pb.SuspendPermitResponse:
        await self._owned(request.permit_id)
        change = await self._service.suspend(
            request.permit_id, request_id=request.request_id, actor=actor_of(request.actor), reason=request.reason
        )
        return pb.SuspendPermitResponse(change=change_to_pb(change))

    async def ReinstatePermit(
        self, request: pb.ReinstatePermitRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReinstatePermitResponse:
        await self._owned(request.permit_id)
        change = await self._service.reinstate(
            request.permit_id, request_id=request.request_id, actor=actor_of(request.actor), reason=request.reason
        )
        return pb.ReinstatePermitResponse(change=change_to_pb(change))

    async def RevokePermit(
        self, request: pb.RevokePermitRequest, context: grpc.aio.ServicerContext
    ) -> pb.RevokePermitResponse:
        await self._owned(request.permit_id)
        change = await self._service.revoke(
            request.permit_id, request_id=request.request_id, actor=actor_of(request.actor), reason=request.reason
        )
        return pb.RevokePermitResponse(change=change_to_pb(change))

    async def GetPermit(self, request: pb.GetPermitRequest, context: grpc.aio.ServicerContext) -> pb.GetPermitResponse:
        state = await self._service.get(request.permit_id)
        _may_read(state.permit.issuing_agency, request.permit_id)
        return pb.GetPermitResponse(permit=permit_state_to_pb(state))

    async def ListPermits(
        self, request: pb.ListPermitsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPermitsResponse:
        # The service applies the page size default (0 -> 50) and cap (1000) and refuses negatives.
        wanted = filter_from_pb(request.filter)
        principal = current_principal()
        if principal is not None and not principal.may_read(wanted.issuing_agency or ""):
            if wanted.issuing_agency:
                _may_read(wanted.issuing_agency, f"of {wanted.issuing_agency}")
            wanted = replace(wanted, issuing_agency=principal.agency or "")  # an agency lists its own
        states, next_token = await self._service.list(
            wanted, page_size=request.page_size, page_token=request.page_token
        )
        return pb.ListPermitsResponse(permits=[permit_state_to_pb(s) for s in states], next_page_token=next_token)

    async def GetPermitHistory(
        self, request: pb.GetPermitHistoryRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPermitHistoryResponse:
        if current_principal() is not None:
            state = await self._service.get(request.permit_id)
            _may_read(state.permit.issuing_agency, request.permit_id)
        changes = await self._service.history(request.permit_id)
        return pb.GetPermitHistoryResponse(changes=[change_to_pb(c) for c in changes])

    async def ImportPermits(
        self, request_iterator: AsyncIterator[pb.ImportPermitsRequest], context: grpc.aio.ServicerContext
    ) -> pb.ImportPermitsResponse:
        rows: list[ImportRow] = []
        strict = False
        async for request in request_iterator:
            if not rows:
                strict = request.strict
            if len(rows) == self._max_import_rows:
                # Refused while reading, so an endless feed cannot fill the server's memory.
                raise InvalidArgument(
                    [FieldViolation("requests", f"has more than {self._max_import_rows} rows; at most that per import")]
                )
            _may_change(request.permit.issuing_agency, f"{request.permit.permit_id}, line {request.line_number}")
            row = import_row_from_pb(request)
            rows.append(replace(row, actor=actor_of(row.actor)))
        report = await self._service.import_rows(rows, strict=strict)
        return import_report_to_pb(report)

    async def ReportPermitUsage(
        self, request: pb.ReportPermitUsageRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReportPermitUsageResponse:
        _may_read(request.issuing_agency, f"of {request.issuing_agency}")
        usages, next_token = await self._service.usage(
            request.issuing_agency, page_size=request.page_size, page_token=request.page_token
        )
        return pb.ReportPermitUsageResponse(permits=[usage_to_pb(u) for u in usages], next_page_token=next_token)
