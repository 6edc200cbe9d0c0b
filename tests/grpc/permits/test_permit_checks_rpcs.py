"""Permit cross-checks through ScoreDeclaration on SQLite and PostgreSQL: one test per reason code, and overrides."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from protos.risk.v1 import assessment_pb2, declaration_pb2, permit_pb2
from protos.risk.v1 import permit_service_pb2 as ppb
from protos.risk.v1 import permit_service_pb2_grpc as ppb_grpc
from protos.risk.v1 import risk_scoring_service_pb2_grpc as pb_grpc
from risk_service.domain.declaration import DeclarationType, Party
from risk_service.domain.permits.controlled_goods import DEFAULT_CONTROLLED_GOODS_PATH, ControlledGoodsHolder
from tests.builders import declaration_pb, item
from tests.grpc.conftest import Registry
from tests.grpc.permits.helpers import (
    ACTOR,
    TIMEOUT,
    get_permit,
    goods_line_pb,
    permit_hits,
    permit_pb,
    score,
    submit,
    unique,
)
from tests.serving import ServerThread, make_settings

RED, YELLOW = assessment_pb2.CHANNEL_RED, assessment_pb2.CHANNEL_YELLOW
SHIPPED_TABLE_VERSION = ControlledGoodsHolder(DEFAULT_CONTROLLED_GOODS_PATH).current.version


def only_hit(assessment: assessment_pb2.Assessment, rule_id: str) -> assessment_pb2.RuleHit:
    """The one permit hit of the assessment, which must have `rule_id`, checked against the defaults it applies."""
    hits = permit_hits(assessment)
    assert list(hits) == [rule_id], [(h.rule_id, h.message) for h in hits.values()]
    hit = hits[rule_id]
    assert hit.item_numbers == [1]
    # The hit's minimum channel is applied: the declaration goes at least that far.
    assert hit.min_channel != assessment_pb2.CHANNEL_UNSPECIFIED
    assert assessment.channel >= hit.min_channel
    assert assessment.controlled_goods_version == SHIPPED_TABLE_VERSION
    return hit


def assert_defaults(hit: assessment_pb2.RuleHit, channel: int, weight: float) -> None:
    assert (hit.min_channel, hit.weight) == (channel, pytest.approx(weight))


def citing(permit_id: str, **item_fields: object) -> declaration_pb2.Declaration:
    """A laptop import of builders.declaration() whose one item cites the permit."""
    return declaration_pb(items=(item(permit_references=(permit_id,), **item_fields),))


def suspend(permits: ppb_grpc.PermitServiceStub, permit_id: str) -> None:
    request = ppb.SuspendPermitRequest(permit_id=permit_id, request_id=unique("REQ"), actor=ACTOR, reason="audit")
    permits.SuspendPermit(request, timeout=TIMEOUT)


def revoke(permits: ppb_grpc.PermitServiceStub, permit_id: str) -> None:
    request = ppb.RevokePermitRequest(permit_id=permit_id, request_id=unique("REQ"), actor=ACTOR, reason="fraud")
    permits.RevokePermit(request, timeout=TIMEOUT)


def test_a_declaration_citing_a_valid_permit_gets_no_permit_hit_and_draws(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    sent = permit_pb()
    submit(permits, sent)
    assessment = score(stub, citing(sent.permit_id, quantity=40))
    assert permit_hits(assessment) == {}
    assert assessment.controlled_goods_version == SHIPPED_TABLE_VERSION
    assert get_permit(permits, sent.permit_id).balances[0].drawn_quantity == 40.0


def test_controlled_goods_without_a_permit_are_flagged(stub: pb_grpc.RiskScoringServiceStub) -> None:
    # Toys (HS 9503) need a KC conformity certificate from KATS on import in the shipped table.
    toys = item(hs_code="9503000000", description="Plastic toy figures", quantity=500)
    assessment = score(stub, declaration_pb(items=(toys,)))
    hit = only_hit(assessment, "PERMIT_MISSING")
    assert_defaults(hit, YELLOW, 0.35)
    assert "CONFORMITY_CERTIFICATE" in hit.message and "KATS" in hit.message
    assert "9503000000" in hit.message and "item 1" in hit.message
    assert list(hit.fields) == ["declaration.items[0].permit_references"]


def test_controlled_goods_with_the_required_permit_are_not_flagged(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    certificate = permit_pb(
        agency="KATS",
        type=permit_pb2.PERMIT_TYPE_CONFORMITY_CERTIFICATE,
        lines=[goods_line_pb(1, "9503", quantity=10_000)],
    )
    submit(permits, certificate)
    toys = item(hs_code="9503000000", quantity=500, permit_references=(certificate.permit_id,))
    assert permit_hits(score(stub, declaration_pb(items=(toys,)))) == {}
    assert get_permit(permits, certificate.permit_id).balances[0].drawn_quantity == 500.0
    # A permit of another type from another agency does not stand in for the certificate.
    licence = permit_pb(lines=[goods_line_pb(1, "9503", quantity=10_000)])
    submit(permits, licence)
    wrong = item(hs_code="9503000000", quantity=500, permit_references=(licence.permit_id,))
    assert list(permit_hits(score(stub, declaration_pb(items=(wrong,))))) == ["PERMIT_MISSING"]


def test_an_unknown_permit_is_flagged(stub: pb_grpc.RiskScoringServiceStub) -> None:
    pid = unique("NOPE")
    hit = only_hit(score(stub, citing(pid)), "PERMIT_UNKNOWN")
    assert_defaults(hit, YELLOW, 0.4)
    assert pid in hit.message and "not in the permit registry" in hit.message
    assert list(hit.fields) == ["declaration.items[0].permit_references[0]"]


def test_a_suspended_permit_is_flagged(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    sent = permit_pb()
    submit(permits, sent)
    suspend(permits, sent.permit_id)
    hit = only_hit(score(stub, citing(sent.permit_id)), "PERMIT_SUSPENDED")
    assert_defaults(hit, YELLOW, 0.3)
    assert sent.permit_id in hit.message and "suspended" in hit.message
    assert list(hit.fields) == ["declaration.items[0].permit_references[0]"]
    assert get_permit(permits, sent.permit_id).balances[0].drawn_quantity == 0.0, "a flagged permit draws nothing"


def test_a_revoked_permit_is_flagged(permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub) -> None:
    sent = permit_pb()
    submit(permits, sent)
    revoke(permits, sent.permit_id)
    assessment = score(stub, citing(sent.permit_id))
    hit = only_hit(assessment, "PERMIT_REVOKED")
    assert_defaults(hit, RED, 0.5)
    assert assessment.channel == RED
    assert sent.permit_id in hit.message and "revoked" in hit.message
    assert list(hit.fields) == ["declaration.items[0].permit_references[0]"]


def test_a_reinstated_permit_is_no_longer_flagged(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    sent = permit_pb()
    submit(permits, sent)
    suspend(permits, sent.permit_id)
    assert "PERMIT_SUSPENDED" in permit_hits(score(stub, citing(sent.permit_id)))
    request = ppb.ReinstatePermitRequest(permit_id=sent.permit_id, request_id=unique("R"), actor=ACTOR, reason="ok")
    permits.ReinstatePermit(request, timeout=TIMEOUT)
    assert permit_hits(score(stub, citing(sent.permit_id))) == {}


def test_an_expired_permit_is_flagged(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    sent = permit_pb(valid_to=datetime(2026, 6, 1, tzinfo=UTC))
    submit(permits, sent)
    hit = only_hit(score(stub, citing(sent.permit_id)), "PERMIT_EXPIRED")  # lodged 2026-11-20
    assert_defaults(hit, YELLOW, 0.3)
    assert sent.permit_id in hit.message and "2026-06-01" in hit.message and "2026-11-20" in hit.message
    assert list(hit.fields) == ["declaration.items[0].permit_references[0]"]


def test_a_permit_not_yet_valid_is_flagged(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    sent = permit_pb(valid_from=datetime(2026, 12, 1, tzinfo=UTC), valid_to=datetime(2027, 12, 1, tzinfo=UTC))
    submit(permits, sent)
    hit = only_hit(score(stub, citing(sent.permit_id)), "PERMIT_NOT_YET_VALID")
    assert_defaults(hit, YELLOW, 0.2)
    assert sent.permit_id in hit.message and "2026-12-01" in hit.message and "2026-11-20" in hit.message
    assert list(hit.fields) == ["declaration.items[0].permit_references[0]"]


def test_a_permit_held_by_another_importer_is_flagged(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    sent = permit_pb(holder_id="IMP-0002")
    submit(permits, sent)
    assessment = score(stub, citing(sent.permit_id))
    hit = only_hit(assessment, "PERMIT_HOLDER_MISMATCH")
    assert_defaults(hit, RED, 0.5)
    assert assessment.channel == RED
    assert sent.permit_id in hit.message and "IMP-0002" in hit.message and "importer IMP-0001" in hit.message
    assert list(hit.fields) == ["declaration.items[0].permit_references[0]"]


def test_on_an_export_the_exporter_is_the_holder(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    # Laptops leaving the country need a strategic trade permit from YESTRADE (dual-use category 4).
    licence = permit_pb(agency="YESTRADE", type=permit_pb2.PERMIT_TYPE_STRATEGIC_TRADE_PERMIT, holder_id="KR-EXP-0009")
    submit(permits, licence)
    export = {
        "type": DeclarationType.EXPORT,
        "importer": Party("US-IMP-0001", "Buyer Inc"),
        "exporter": Party("KR-EXP-0009", "Seoul Electronics"),
        "export_country": "KR",
        "destination_country": "US",
    }
    lines = (item(origin_country="KR", permit_references=(licence.permit_id,)),)
    assert permit_hits(score(stub, declaration_pb(items=lines, **export))) == {}

    other = {**export, "exporter": Party("KR-EXP-0010", "Another Exporter")}
    assessment = score(stub, declaration_pb(items=lines, **other))
    hit = only_hit(assessment, "PERMIT_HOLDER_MISMATCH")
    assert "KR-EXP-0009" in hit.message and "exporter KR-EXP-0010" in hit.message
    uncited = score(stub, declaration_pb(items=(item(origin_country="KR"),), **export))
    missing = only_hit(uncited, "PERMIT_MISSING")
    assert "STRATEGIC_TRADE_PERMIT" in missing.message and "YESTRADE" in missing.message


def test_goods_not_covered_by_the_permit_are_flagged(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    sent = permit_pb(lines=[goods_line_pb(1, "0306", unit="KGM")])
    submit(permits, sent)
    hit = only_hit(score(stub, citing(sent.permit_id)), "PERMIT_GOODS_NOT_COVERED")
    assert_defaults(hit, YELLOW, 0.35)
    assert sent.permit_id in hit.message and "0306" in hit.message and "8471300000" in hit.message
    assert list(hit.fields) == ["declaration.items[0].permit_references[0]"]


def test_an_origin_the_permit_does_not_allow_is_flagged(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    sent = permit_pb(origins=["VN", "TH"])
    submit(permits, sent)
    hit = only_hit(score(stub, citing(sent.permit_id, origin_country="CN")), "PERMIT_ORIGIN_NOT_ALLOWED")
    assert_defaults(hit, YELLOW, 0.35)
    assert sent.permit_id in hit.message and "VN, TH" in hit.message and "not CN" in hit.message
    assert list(hit.fields) == ["declaration.items[0].permit_references[0]"]
    assert permit_hits(score(stub, citing(sent.permit_id, origin_country="VN"))) == {}


def test_an_office_the_permit_does_not_allow_is_flagged(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    sent = permit_pb(offices=["030"])
    submit(permits, sent)
    hit = only_hit(score(stub, citing(sent.permit_id)), "PERMIT_OFFICE_NOT_ALLOWED")  # lodged at office 020
    assert_defaults(hit, YELLOW, 0.2)
    assert sent.permit_id in hit.message and "030" in hit.message and "not 020" in hit.message
    assert list(hit.fields) == ["declaration.items[0].permit_references[0]"]
    at_030 = declaration_pb(customs_office="030", items=(item(permit_references=(sent.permit_id,)),))
    assert permit_hits(score(stub, at_030)) == {}


def test_a_unit_that_does_not_convert_to_the_permits_is_flagged(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    sent = permit_pb(lines=[goods_line_pb(1, "8471", unit="LTR", quantity=1000.0)])
    submit(permits, sent)
    hit = only_hit(
        score(stub, citing(sent.permit_id, quantity=100, quantity_unit="NAR")), "PERMIT_UNIT_NOT_CONVERTIBLE"
    )
    assert_defaults(hit, YELLOW, 0.1)
    assert sent.permit_id in hit.message and "100 NAR" in hit.message and "LTR" in hit.message
    assert list(hit.fields) == ["declaration.items[0].permit_references[0]"]
    assert get_permit(permits, sent.permit_id).balances[0].drawn_quantity == 0.0


def test_a_convertible_unit_draws_in_the_permits_unit(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    sent = permit_pb(lines=[goods_line_pb(1, "8471", unit="TNE", quantity=2.0)])
    submit(permits, sent)
    # 180 kg net of laptops counted in pieces: the mass reaches the tonne line through net mass.
    assert permit_hits(score(stub, citing(sent.permit_id, quantity=100, quantity_unit="NAR"))) == {}
    assert get_permit(permits, sent.permit_id).balances[0].drawn_quantity == pytest.approx(0.18)


def test_a_draw_above_the_remaining_balance_is_flagged(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    sent = permit_pb(lines=[goods_line_pb(1, "8471", quantity=150.0)])
    submit(permits, sent)
    assert permit_hits(score(stub, citing(sent.permit_id, quantity=100))) == {}
    assessment = score(stub, citing(sent.permit_id, quantity=80))
    hit = only_hit(assessment, "PERMIT_BALANCE_EXCEEDED")
    assert_defaults(hit, RED, 0.4)
    assert assessment.channel == RED
    assert sent.permit_id in hit.message and "80 NAR requested" in hit.message and "50 NAR remain" in hit.message
    assert "150" in hit.message
    assert list(hit.fields) == ["declaration.items[0].permit_references[0]"]
    balance = get_permit(permits, sent.permit_id).balances[0]
    assert balance.drawn_quantity == 100.0 and balance.remaining_quantity == 50.0, "the refused draw took nothing"


def test_a_value_above_the_remaining_balance_is_flagged(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    sent = permit_pb(lines=[goods_line_pb(1, "8471", unit="", quantity=None, value=1_000_000.0)])
    submit(permits, sent)
    hit = only_hit(score(stub, citing(sent.permit_id, customs_value=1_500_000.0)), "PERMIT_BALANCE_EXCEEDED")
    assert "1,500,000" in hit.message and "1,000,000" in hit.message
    assert get_permit(permits, sent.permit_id).balances[0].drawn_value == 0.0


def test_a_single_use_permit_cited_by_a_second_declaration_is_flagged(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    sent = permit_pb(single_use=True)
    submit(permits, sent)
    first = citing(sent.permit_id, quantity=10)
    assert permit_hits(score(stub, first)) == {}
    assessment = score(stub, citing(sent.permit_id, quantity=10))
    hit = only_hit(assessment, "PERMIT_ALREADY_USED")
    assert_defaults(hit, RED, 0.5)
    assert assessment.channel == RED
    assert sent.permit_id in hit.message and first.declaration_id in hit.message
    assert list(hit.fields) == ["declaration.items[0].permit_references[0]"]
    assert get_permit(permits, sent.permit_id).balances[0].drawn_quantity == 10.0
    # The first declaration's own amendment may still use it.
    amended = declaration_pb(
        declaration_id=first.declaration_id, version=2, items=(item(quantity=12, permit_references=(sent.permit_id,)),)
    )
    assert permit_hits(score(stub, amended)) == {}
    assert get_permit(permits, sent.permit_id).balances[0].drawn_quantity == 12.0


def test_every_item_and_permit_is_checked_and_hits_name_their_items(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    good, expired = permit_pb(), permit_pb(valid_to=datetime(2026, 3, 1, tzinfo=UTC))
    for p in (good, expired):
        submit(permits, p)
    items = (
        item(item_number=1, permit_references=(good.permit_id,)),
        item(item_number=2, permit_references=(expired.permit_id,)),
        item(item_number=3, permit_references=(good.permit_id, expired.permit_id)),
    )
    hits = permit_hits(score(stub, declaration_pb(items=items)))
    assert list(hits) == ["PERMIT_EXPIRED"]
    assert list(hits["PERMIT_EXPIRED"].item_numbers) == [2, 3]
    assert list(hits["PERMIT_EXPIRED"].fields) == [
        "declaration.items[1].permit_references[0]",
        "declaration.items[2].permit_references[1]",
    ]


# -- configured channels -------------------------------------------------------------------------


@pytest.fixture
def strict_server(database_url: str, registry: Registry, tmp_path: Path) -> Iterator[ServerThread]:
    """A server whose settings send unknown permits to RED and make an office mismatch count for nothing."""
    checks = {
        "PERMIT_UNKNOWN": {"min_channel": "RED", "weight": 0.45},
        "PERMIT_OFFICE_NOT_ALLOWED": {"min_channel": None, "weight": 0.0},
    }
    settings = make_settings(
        tmp_path, database_url=database_url, tracking_uri=registry.tracking_uri, permits={"checks": checks}
    )
    with ServerThread(settings) as running:
        yield running


def test_settings_change_a_checks_channel_and_weight(strict_server: ServerThread) -> None:
    with strict_server.channel() as ch:
        stub, permits = pb_grpc.RiskScoringServiceStub(ch), ppb_grpc.PermitServiceStub(ch)
        assessment = score(stub, citing(unique("NOPE")))
        hit = permit_hits(assessment)["PERMIT_UNKNOWN"]
        assert (hit.min_channel, hit.weight) == (RED, pytest.approx(0.45))
        assert assessment.channel == RED
        sent = permit_pb(offices=["030"])
        submit(permits, sent)
        assessment = score(stub, citing(sent.permit_id))
        office = permit_hits(assessment)["PERMIT_OFFICE_NOT_ALLOWED"]
        assert office.min_channel == assessment_pb2.CHANNEL_UNSPECIFIED and office.weight == 0.0


# -- replicas ------------------------------------------------------------------------------------


@pytest.fixture
def replicas(database_url: str, registry: Registry, tmp_path: Path) -> Iterator[tuple[ServerThread, ServerThread]]:
    """Two servers on one database, as two replicas behind a load balancer; each polls for the other's changes."""

    def settings(name: str):  # type: ignore[no-untyped-def]
        return make_settings(
            tmp_path / name, database_url=database_url, tracking_uri=registry.tracking_uri, reload_interval_s=0.1
        )

    with ServerThread(settings("a")) as a, ServerThread(settings("b")) as b:
        yield a, b


def test_a_suspension_made_through_one_replica_is_flagged_by_the_other(
    replicas: tuple[ServerThread, ServerThread],
) -> None:
    a, b = replicas
    with a.channel() as to_a, b.channel() as to_b:
        permits, stub_b = ppb_grpc.PermitServiceStub(to_a), pb_grpc.RiskScoringServiceStub(to_b)
        sent = permit_pb()
        submit(permits, sent)
        assert permit_hits(score(stub_b, citing(sent.permit_id, quantity=1))) == {}  # now in b's cache
        suspend(permits, sent.permit_id)
        deadline = time.monotonic() + 10
        seen: list[str] = []
        while time.monotonic() < deadline:
            seen = sorted(permit_hits(score(stub_b, citing(sent.permit_id, quantity=1))))
            if seen == ["PERMIT_SUSPENDED"]:
                break
            time.sleep(0.05)
        assert seen == ["PERMIT_SUSPENDED"], "b's reload loop picks up the suspension made through a"
