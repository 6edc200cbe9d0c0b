"""Through the real server: finite but huge customs values are scored and stored, never INTERNAL."""

from __future__ import annotations

import grpc

from protos.risk.v1 import permit_service_pb2_grpc as ppb_grpc
from protos.risk.v1 import risk_scoring_service_pb2_grpc as pb_grpc
from tests.builders import declaration_pb, item
from tests.grpc.permits.helpers import get_permit, goods_line_pb, permit_pb, score, submit, unique


def test_two_items_of_huge_value_on_a_quantity_only_line_are_scored(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    sent = permit_pb(agency=unique("AGY"), lines=[goods_line_pb(1, "8471", quantity=1000.0, value=None)])
    submit(permits, sent)
    items = tuple(
        item(item_number=n, quantity=1, customs_value=1e308, permit_references=(sent.permit_id,)) for n in (1, 2)
    )
    try:
        assessment = score(stub, declaration_pb(items=items))
    except grpc.RpcError as err:
        raise AssertionError(f"scoring failed: {err.code()} {err.details()}") from err
    assert assessment.declaration_id
    assert get_permit(permits, sent.permit_id).balances[0].drawn_quantity == 2.0
