"""Bad input gets INVALID_ARGUMENT naming every field path; no input makes the server answer INTERNAL."""

from __future__ import annotations

import math

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protos.risk.v1 import declaration_pb2
from protos.risk.v1 import risk_scoring_service_pb2 as pb
from risk_service.store import SqlAssessmentStore
from tests.builders import declaration, declaration_pb, declaration_to_pb, item
from tests.grpc.status import field_violations
from tests.serving import ServerThread


def refuse(stub, message: declaration_pb2.Declaration) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as info:
        stub.ScoreDeclaration(pb.ScoreDeclarationRequest(declaration=message), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    return field_violations(info.value)


def test_every_kind_of_malformed_field_is_named(server: ServerThread, stub) -> None:  # type: ignore[no-untyped-def]
    message = declaration_pb(
        items=(
            item(),
            item(item_number=2, hs_code="12345"),
            item(item_number=2, customs_value=-1.0, origin_country="XX", net_mass_kg=math.nan),
        ),
        invoice_currency="EUR1",
        export_country="Korea",
    )
    message.declaration_id = ""
    message.type = declaration_pb2.DECLARATION_TYPE_UNSPECIFIED
    message.importer.name = "x" * 10_000
    paths = refuse(stub, message)
    assert set(paths) >= {
        "declaration.declaration_id",
        "declaration.type",
        "declaration.importer.name",
        "declaration.invoice_currency",
        "declaration.export_country",
        "declaration.items[1].hs_code",
        "declaration.items[2].item_number",
        "declaration.items[2].customs_value",
        "declaration.items[2].origin_country",
        "declaration.items[2].net_mass_kg",
    }
    store = SqlAssessmentStore(server.settings.resolved_database_url)
    try:
        assert store.count() == 0, "nothing invalid is stored"
    finally:
        store.close()


def test_too_many_items_is_refused(stub, server: ServerThread) -> None:  # type: ignore[no-untyped-def]
    n = server.settings.validation.max_items + 1
    message = declaration_to_pb(declaration(items=tuple(item(item_number=i) for i in range(1, n + 1))))
    assert "declaration.items" in refuse(stub, message)


def test_an_unknown_enum_number_is_refused(stub) -> None:  # type: ignore[no-untyped-def]
    message = declaration_pb()
    message.transport_mode = 42  # type: ignore[assignment]
    assert "declaration.transport_mode" in refuse(stub, message)


def test_a_timestamp_outside_the_calendar_is_refused(stub) -> None:  # type: ignore[no-untyped-def]
    message = declaration_pb()
    message.lodgement_time.seconds = 2**60
    assert "declaration.lodgement_time" in refuse(stub, message)


def test_a_missing_declaration_is_refused(stub) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as info:
        stub.ScoreDeclaration(pb.ScoreDeclarationRequest(), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# Over-long strings are built cheaply so examples stay small for hypothesis.
_text = st.one_of(st.text(max_size=60), st.integers(500, 700).map(lambda n: "é" * n))
_number = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-1e6, 1e9))
_items = st.lists(
    st.builds(
        declaration_pb2.GoodsItem,
        item_number=st.integers(-5, 10),
        hs_code=st.one_of(st.from_regex(r"[0-9]{4,12}", fullmatch=True), _text),
        description=_text,
        quantity=_number,
        quantity_unit=st.sampled_from(["", "NAR", "KGM", "kg", "LTR", "???"]),
        net_mass_kg=_number,
        gross_mass_kg=_number,
        customs_value=_number,
        origin_country=st.sampled_from(["CN", "KR", "US", "", "XX", "cn", "ZZZ"]),
        preference_claimed=st.sampled_from(["", "KORUS", "FTA-1", "x" * 40]),
        permit_references=st.lists(_text, max_size=3),
        duties_and_taxes=st.lists(
            st.builds(declaration_pb2.DutyTax, type_code=st.sampled_from(["A00", "", "B 0"]), amount=_number),
            max_size=3,
        ),
    ),
    max_size=6,
)


@st.composite
def declarations(draw: st.DrawFn) -> declaration_pb2.Declaration:
    message = declaration_pb2.Declaration(
        declaration_id=draw(st.one_of(st.from_regex(r"[A-Z]{3}-[0-9]{1,8}", fullmatch=True), _text)),
        version=draw(st.integers(-3, 4)),
        type=draw(st.integers(0, 5)),
        customs_office=draw(st.sampled_from(["020", "", "office 1"])),
        declarant=declaration_pb2.Party(id=draw(st.sampled_from(["BRK-1", ""])), name=draw(_text)),
        importer=declaration_pb2.Party(
            id=draw(st.sampled_from(["IMP-1", "IMP-2", "", "id with space"])), name=draw(_text)
        ),
        exporter=declaration_pb2.Party(id=draw(st.sampled_from(["EXP-1", ""])), name=draw(_text)),
        aeo_status=draw(st.integers(0, 6)),
        export_country=draw(st.sampled_from(["CN", "VN", "", "XX"])),
        origin_country=draw(st.sampled_from(["CN", "KR", "", "??"])),
        destination_country=draw(st.sampled_from(["KR", ""])),
        transport_mode=draw(st.integers(0, 9)),
        container_numbers=draw(st.lists(st.sampled_from(["MSCU1234566", "BAD", ""]), max_size=3)),
        incoterm=draw(st.sampled_from(["", "FOB", "XYZ"])),
        invoice_currency=draw(st.sampled_from(["USD", "KRW", "", "US$"])),
        invoice_amount=draw(_number),
        items=draw(_items),
    )
    if draw(st.booleans()):
        message.lodgement_time.seconds = draw(st.integers(-(2**62), 2**62))
        message.lodgement_time.nanos = draw(st.integers(-(10**9), 2 * 10**9))
    return message


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=declarations())
def test_no_declaration_makes_the_server_fail(stub, message: declaration_pb2.Declaration) -> None:  # type: ignore[no-untyped-def]
    try:
        response = stub.ScoreDeclaration(pb.ScoreDeclarationRequest(declaration=message), timeout=10)
        assert 0.0 <= response.assessment.risk_score <= 1.0
    except grpc.RpcError as err:
        assert err.code() in {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS}, err.details()
        if err.code() == grpc.StatusCode.INVALID_ARGUMENT:
            assert all(path.startswith("declaration") for path in field_violations(err))


def test_bytes_that_are_not_a_message_are_invalid_argument(channel) -> None:  # type: ignore[no-untyped-def]
    raw_unary = channel.unary_unary("/risk.v1.RiskScoringService/ScoreDeclaration")
    for garbage in (b"\x0a\x05\x0a\x03\xff\xfe\xfd", b"\xff\xff\xff\xff", b"\x0a\xff\x01"):
        with pytest.raises(grpc.RpcError) as info:
            raw_unary(garbage, timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
        assert "Decode" not in (info.value.details() or "")


def test_a_corrupt_stream_message_ends_the_stream_with_invalid_argument(channel) -> None:  # type: ignore[no-untyped-def]
    raw_stream = channel.stream_stream("/risk.v1.RiskScoringService/StreamScoreDeclarations")
    good = pb.StreamScoreDeclarationsRequest(declaration=declaration_pb()).SerializeToString()
    call = raw_stream(iter([good, b"\xff\xff\xff"]), timeout=10)
    with pytest.raises(grpc.RpcError) as info:
        list(call)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300))
def test_no_byte_string_makes_the_server_fail(channel, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    raw_unary = channel.unary_unary("/risk.v1.RiskScoringService/ScoreDeclaration")
    try:
        raw_unary(raw, timeout=10)
    except grpc.RpcError as err:
        assert err.code() in {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS}, err.details()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(declarations(), min_size=1, max_size=3))
def test_no_batch_or_stream_makes_the_server_fail(stub, batch: list[declaration_pb2.Declaration]) -> None:  # type: ignore[no-untyped-def]
    try:
        stub.ScoreDeclarations(pb.ScoreDeclarationsRequest(declarations=batch), timeout=10)
    except grpc.RpcError as err:
        assert err.code() in {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS}, err.details()
    requests = [pb.StreamScoreDeclarationsRequest(declaration=d) for d in batch]
    responses = list(stub.StreamScoreDeclarations(iter(requests), timeout=10))
    assert len(responses) == len(batch)
    for r in responses:
        if r.WhichOneof("result") == "error":
            assert r.error.code in {grpc.StatusCode.INVALID_ARGUMENT.value[0], grpc.StatusCode.ALREADY_EXISTS.value[0]}


def test_a_flood_of_violations_still_answers_invalid_argument(stub) -> None:  # type: ignore[no-untyped-def]
    items = tuple(item(item_number=i, hs_code="bad", origin_country="XX", description="") for i in range(1, 400))
    paths = refuse(stub, declaration_to_pb(declaration(items=items)))
    assert "declaration.items[0].hs_code" in paths
    assert len(paths) < 400  # capped so the trailers fit the client's metadata limit; the rest are counted
