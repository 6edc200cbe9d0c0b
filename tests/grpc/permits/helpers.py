"""Permit messages, calls and a module-wide server on both databases for the permit gRPC tests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest

from protos.risk.v1 import assessment_pb2, permit_pb2
from protos.risk.v1 import permit_service_pb2 as ppb
from protos.risk.v1 import permit_service_pb2_grpc as ppb_grpc
from protos.risk.v1 import risk_scoring_service_pb2 as pb
from protos.risk.v1 import risk_scoring_service_pb2_grpc as pb_grpc
from tests.builders import next_id
from tests.conftest import fresh_database
from tests.grpc.conftest import Registry
from tests.serving import ServerThread, make_settings

DATABASES = ("sqlite", "postgresql")
VALID_FROM = datetime(2026, 1, 1, tzinfo=UTC)
VALID_TO = datetime(2027, 1, 1, tzinfo=UTC)
ACTOR = "agency-user-7"
TIMEOUT = 15.0


# -- a server shared by a test module -------------------------------------------------------------


@contextmanager
def module_server(
    request: pytest.FixtureRequest,
    registry: Registry,
    postgres_available: bool,
    tmp_path_factory: pytest.TempPathFactory,
    **settings: Any,
) -> Iterator[ServerThread]:
    """A real server with the real champion on the database named by request.param; tests keep apart by unique ids."""
    kind = request.param  # type: ignore[attr-defined]
    with fresh_database(request, kind, tmp_path_factory.mktemp("permits"), postgres_available) as url:
        data_dir = tmp_path_factory.mktemp("data")
        configured = make_settings(data_dir, database_url=url, tracking_uri=registry.tracking_uri, **settings)
        with ServerThread(configured) as running:
            yield running


# -- messages ------------------------------------------------------------------------------------


def goods_line_pb(
    line_number: int = 1,
    hs_prefix: str = "8471",
    *,
    unit: str = "NAR",
    quantity: float | None = 1000.0,
    value: float | None = None,
    description: str = "Portable computers",
) -> permit_pb2.PermitGoodsLine:
    """A goods line; quantity or value None leaves it unlimited (the field absent)."""
    line = permit_pb2.PermitGoodsLine(line_number=line_number, hs_prefix=hs_prefix, description=description, unit=unit)
    if quantity is not None:
        line.authorised_quantity = quantity
    if value is not None:
        line.authorised_value = value
    return line


def permit_pb(
    permit_id: str | None = None,
    *,
    agency: str = "MOTIE",
    type: permit_pb2.PermitType.ValueType = permit_pb2.PERMIT_TYPE_IMPORT_LICENCE,
    holder_id: str = "IMP-0001",
    lines: Sequence[permit_pb2.PermitGoodsLine] | None = None,
    origins: Sequence[str] = (),
    offices: Sequence[str] = (),
    valid_from: datetime | None = VALID_FROM,
    valid_to: datetime | None = VALID_TO,
    single_use: bool = False,
    end_use: str = "",
) -> permit_pb2.Permit:
    """An import licence for builders.declaration()'s importer and laptops (line 1: 8471, 1000 NAR), valid in 2026."""
    message = permit_pb2.Permit(
        permit_id=permit_id or next_id("PRM"),
        issuing_agency=agency,
        type=type,
        holder_id=holder_id,
        goods_lines=list(lines) if lines is not None else [goods_line_pb()],
        allowed_origin_countries=origins,
        allowed_customs_offices=offices,
        end_use=end_use,
        single_use=single_use,
    )
    if valid_from is not None:
        message.valid_from_time.FromDatetime(valid_from)
    if valid_to is not None:
        message.valid_to_time.FromDatetime(valid_to)
    return message


def unique(prefix: str) -> str:
    """An id no other test of the module uses (the server and its database are shared)."""
    return next_id(prefix)


# -- calls ---------------------------------------------------------------------------------------


def submit(
    permits: ppb_grpc.PermitServiceStub, permit: permit_pb2.Permit, *, request_id: str | None = None, reason: str = ""
) -> permit_pb2.PermitChange:
    request = ppb.SubmitPermitRequest(
        permit=permit, request_id=request_id or unique("REQ"), actor=ACTOR, reason=reason or "new permit"
    )
    return permits.SubmitPermit(request, timeout=TIMEOUT).change


def get_permit(permits: ppb_grpc.PermitServiceStub, permit_id: str) -> permit_pb2.PermitRecord:
    return permits.GetPermit(ppb.GetPermitRequest(permit_id=permit_id), timeout=TIMEOUT).permit


def history(permits: ppb_grpc.PermitServiceStub, permit_id: str) -> list[permit_pb2.PermitChange]:
    return list(permits.GetPermitHistory(ppb.GetPermitHistoryRequest(permit_id=permit_id), timeout=TIMEOUT).changes)


def usage(permits: ppb_grpc.PermitServiceStub, agency: str) -> list[permit_pb2.PermitUsage]:
    """Every permit of the agency in the reconciliation report, over all pages."""
    out: list[permit_pb2.PermitUsage] = []
    token = ""
    while True:
        request = ppb.ReportPermitUsageRequest(issuing_agency=agency, page_size=100, page_token=token)
        response = permits.ReportPermitUsage(request, timeout=TIMEOUT)
        out.extend(response.permits)
        token = response.next_page_token
        if not token:
            return out


def score(stub: pb_grpc.RiskScoringServiceStub, declaration: Any) -> assessment_pb2.Assessment:
    return stub.ScoreDeclaration(pb.ScoreDeclarationRequest(declaration=declaration), timeout=TIMEOUT).assessment


def cancel(
    stub: pb_grpc.RiskScoringServiceStub, declaration_id: str, *, request_id: str | None = None
) -> pb.CancelDeclarationResponse:
    request = pb.CancelDeclarationRequest(
        declaration_id=declaration_id,
        request_id=request_id or unique("CNL"),
        actor="officer-3",
        reason="declaration withdrawn by the declarant",
    )
    return stub.CancelDeclaration(request, timeout=TIMEOUT)


def failure(call: Any, request: Any) -> grpc.RpcError:
    """The error a call that must fail raised."""
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=TIMEOUT)
    return info.value


def permit_hits(assessment: assessment_pb2.Assessment) -> dict[str, assessment_pb2.RuleHit]:
    """The assessment's permit cross-check hits by reason code."""
    return {h.rule_id: h for h in assessment.rule_hits if h.rule_id.startswith("PERMIT_")}
