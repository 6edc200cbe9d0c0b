"""Conversions between risk.v1 permit messages and the permit domain. From the wire they never fail."""

from __future__ import annotations

from protos.risk.v1 import permit_pb2, permit_service_pb2, risk_scoring_service_pb2
from risk_service.domain.permits.ledger import CancellationResult, DrawRecord, PermitUsage
from risk_service.domain.permits.model import (
    Permit,
    PermitChange,
    PermitGoodsLine,
    PermitState,
    PermitStatus,
    PermitType,
)
from risk_service.domain.permits.service import ImportReport, ImportRow
from risk_service.domain.ports import PermitFilter
from risk_service.grpc.convert import enum_from_pb, time_from_pb, time_to_pb
from risk_service.grpc.errors import status_from_error

# -- from the wire -------------------------------------------------------------------------------


def _goods_line_from_pb(message: permit_pb2.PermitGoodsLine) -> PermitGoodsLine:
    # proto3 `optional` keeps presence: absent means "not limited", which 0.0 would not say.
    return PermitGoodsLine(
        line_number=message.line_number,
        hs_prefix=message.hs_prefix,
        description=message.description,
        unit=message.unit,
        authorised_quantity=message.authorised_quantity if message.HasField("authorised_quantity") else None,
        authorised_value=message.authorised_value if message.HasField("authorised_value") else None,
    )


def permit_from_pb(message: permit_pb2.Permit) -> Permit:
    """The permit as sent; status and version are copied as they are (the registry sets its own)."""
    return Permit(
        permit_id=message.permit_id,
        issuing_agency=message.issuing_agency,
        type=enum_from_pb(PermitType, message.type),
        holder_id=message.holder_id,
        goods_lines=tuple(_goods_line_from_pb(line) for line in message.goods_lines),
        valid_from=time_from_pb(message.valid_from_time, message.HasField("valid_from_time")),
        valid_to=time_from_pb(message.valid_to_time, message.HasField("valid_to_time")),
        allowed_origin_countries=tuple(message.allowed_origin_countries),
        allowed_customs_offices=tuple(message.allowed_customs_offices),
        end_use=message.end_use,
        single_use=message.single_use,
        status=enum_from_pb(PermitStatus, message.status),
        version=message.version,
    )


def filter_from_pb(message: permit_pb2.PermitFilter) -> PermitFilter:
    return PermitFilter(
        holder_id=message.holder_id,
        issuing_agency=message.issuing_agency,
        hs_code=message.hs_code,
        status=enum_from_pb(PermitStatus, message.status),
    )


def import_row_from_pb(message: permit_service_pb2.ImportPermitsRequest) -> ImportRow:
    return ImportRow(
        line_number=message.line_number,
        request_id=message.request_id,
        actor=message.actor,
        permit=permit_from_pb(message.permit),
    )


# -- to the wire ---------------------------------------------------------------------------------


def _goods_line_to_pb(line: PermitGoodsLine) -> permit_pb2.PermitGoodsLine:
    message = permit_pb2.PermitGoodsLine(
        line_number=line.line_number, hs_prefix=line.hs_prefix, description=line.description, unit=line.unit
    )
    if line.authorised_quantity is not None:
        message.authorised_quantity = line.authorised_quantity
    if line.authorised_value is not None:
        message.authorised_value = line.authorised_value
    return message


def permit_to_pb(permit: Permit) -> permit_pb2.Permit:
    message = permit_pb2.Permit(
        permit_id=permit.permit_id,
        issuing_agency=permit.issuing_agency,
        type=permit_pb2.PermitType.ValueType(permit.type),
        holder_id=permit.holder_id,
        goods_lines=[_goods_line_to_pb(line) for line in permit.goods_lines],
        allowed_origin_countries=permit.allowed_origin_countries,
        allowed_customs_offices=permit.allowed_customs_offices,
        end_use=permit.end_use,
        single_use=permit.single_use,
        status=permit_pb2.PermitStatus.ValueType(permit.status),
        version=permit.version,
    )
    if permit.valid_from is not None:
        message.valid_from_time.CopyFrom(time_to_pb(permit.valid_from))
    if permit.valid_to is not None:
        message.valid_to_time.CopyFrom(time_to_pb(permit.valid_to))
    return message


def _balance_to_pb(line: PermitGoodsLine, state: PermitState) -> permit_pb2.LineBalance:
    drawn = state.balance(line.line_number)
    message = permit_pb2.LineBalance(
        line_number=line.line_number,
        unit=line.unit,
        drawn_quantity=drawn.drawn_quantity,
        drawn_value=drawn.drawn_value,
    )
    # Absent authorised and remaining amounts mean "not limited"; remaining is not clamped, so an
    # overdraw (which the ledger prevents) would show rather than hide.
    if line.authorised_quantity is not None:
        message.authorised_quantity = line.authorised_quantity
        message.remaining_quantity = line.authorised_quantity - drawn.drawn_quantity
    if line.authorised_value is not None:
        message.authorised_value = line.authorised_value
        message.remaining_value = line.authorised_value - drawn.drawn_value
    return message


def permit_state_to_pb(state: PermitState) -> permit_pb2.PermitRecord:
    """The permit with one balance per goods line, in the permit's line order; undrawn lines show 0 drawn."""
    return permit_pb2.PermitRecord(
        permit=permit_to_pb(state.permit),
        balances=[_balance_to_pb(line, state) for line in state.permit.goods_lines],
    )


def change_to_pb(change: PermitChange) -> permit_pb2.PermitChange:
    return permit_pb2.PermitChange(
        request_id=change.request_id,
        action=permit_pb2.PermitAction.ValueType(change.action),
        actor=change.actor,
        reason=change.reason,
        change_time=time_to_pb(change.change_time),
        permit=permit_to_pb(change.permit),
    )


def draw_record_to_pb(draw: DrawRecord) -> permit_pb2.PermitDraw:
    return permit_pb2.PermitDraw(
        permit_id=draw.permit_id,
        declaration_id=draw.declaration_id,
        declaration_version=draw.declaration_version,
        line_number=draw.line_number,
        item_number=draw.item_number,
        quantity=draw.quantity,
        value=draw.value,
        draw_time=time_to_pb(draw.drawn_at),
    )


def usage_to_pb(usage: PermitUsage) -> permit_pb2.PermitUsage:
    return permit_pb2.PermitUsage(
        permit=permit_state_to_pb(usage.state), draws=[draw_record_to_pb(d) for d in usage.draws]
    )


def import_report_to_pb(report: ImportReport) -> permit_service_pb2.ImportPermitsResponse:
    """Row errors carry the same google.rpc.Status a single call would have failed with."""
    return permit_service_pb2.ImportPermitsResponse(
        applied=report.applied,
        created=report.created,
        amended=report.amended,
        unchanged=report.unchanged,
        errors=[
            permit_service_pb2.ImportPermitsRowError(line_number=line, status=status_from_error(err))
            for line, err in report.errors
        ],
    )


def cancellation_to_pb(result: CancellationResult) -> risk_scoring_service_pb2.CancelDeclarationResponse:
    return risk_scoring_service_pb2.CancelDeclarationResponse(
        declaration_id=result.declaration_id,
        released=[draw_record_to_pb(d) for d in result.released],
        cancel_time=time_to_pb(result.cancelled_at),
    )
