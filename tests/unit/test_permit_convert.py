"""Permit messages convert to the domain and back without loss, and never fail on what the wire brings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2
from hypothesis import given
from hypothesis import strategies as st

from protos.risk.v1 import permit_pb2, permit_service_pb2
from risk_service.domain.errors import FieldViolation, InvalidArgument, NotFound
from risk_service.domain.permits.ledger import CancellationResult, DrawRecord, PermitUsage
from risk_service.domain.permits.model import (
    LineBalance,
    Permit,
    PermitAction,
    PermitChange,
    PermitGoodsLine,
    PermitState,
    PermitStatus,
    PermitType,
)
from risk_service.domain.permits.service import ImportReport
from risk_service.domain.ports import PermitFilter
from risk_service.grpc.permit_convert import (
    cancellation_to_pb,
    change_to_pb,
    draw_record_to_pb,
    filter_from_pb,
    import_report_to_pb,
    import_row_from_pb,
    permit_from_pb,
    permit_state_to_pb,
    permit_to_pb,
    usage_to_pb,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def a_permit(**overrides: object) -> Permit:
    fields: dict[str, object] = {
        "permit_id": "NFQS-2026-0001",
        "issuing_agency": "NFQS",
        "type": PermitType.QUARANTINE_CERTIFICATE,
        "holder_id": "KR1234567",
        "goods_lines": (
            PermitGoodsLine(1, "0808", "apples", "KGM", authorised_quantity=5000.0, authorised_value=20_000.0),
            PermitGoodsLine(2, "080810", "pears", "KGM", authorised_quantity=1000.0),
            PermitGoodsLine(3, "0810", "berries", "", authorised_value=7_500.5),
            PermitGoodsLine(4, "081090", "other fruit"),
        ),
        "valid_from": T0,
        "valid_to": T0 + timedelta(days=180, microseconds=250),
        "allowed_origin_countries": ("NZ", "CL"),
        "allowed_customs_offices": ("020", "030"),
        "end_use": "retail",
        "single_use": True,
        "status": PermitStatus.SUSPENDED,
        "version": 3,
    }
    fields.update(overrides)
    return Permit(**fields)  # type: ignore[arg-type]


def draw(**overrides: object) -> DrawRecord:
    fields: dict[str, object] = {
        "permit_id": "NFQS-2026-0001",
        "declaration_id": "D-1",
        "declaration_version": 2,
        "line_number": 1,
        "item_number": 3,
        "quantity": 120.5,
        "value": 480.0,
        "drawn_at": T0 + timedelta(days=3),
    }
    fields.update(overrides)
    return DrawRecord(**fields)  # type: ignore[arg-type]


def test_a_permit_survives_the_round_trip_through_the_wire() -> None:
    permit = a_permit()
    assert permit_from_pb(permit_to_pb(permit)) == permit


def test_a_permit_survives_the_round_trip_through_bytes() -> None:
    permit = a_permit()
    wire = permit_pb2.Permit.FromString(permit_to_pb(permit).SerializeToString())
    assert permit_from_pb(wire) == permit


def test_absent_authorised_amounts_mean_unlimited_and_zero_stays_zero() -> None:
    message = permit_pb2.Permit(
        goods_lines=[
            permit_pb2.PermitGoodsLine(line_number=1, hs_prefix="0808"),
            permit_pb2.PermitGoodsLine(line_number=2, hs_prefix="0808", authorised_quantity=0.0, authorised_value=0.0),
        ]
    )
    unlimited, zero = permit_from_pb(message).goods_lines
    assert (unlimited.authorised_quantity, unlimited.authorised_value) == (None, None)
    assert (zero.authorised_quantity, zero.authorised_value) == (0.0, 0.0)


def test_unlimited_amounts_are_left_absent_on_the_wire() -> None:
    line = permit_to_pb(a_permit()).goods_lines[3]
    assert not line.HasField("authorised_quantity")
    assert not line.HasField("authorised_value")


def test_unknown_enum_numbers_become_unspecified() -> None:
    message = permit_pb2.Permit(permit_id="P-1")
    message.type = 99  # type: ignore[assignment]
    message.status = 42  # type: ignore[assignment]
    permit = permit_from_pb(message)
    assert permit.type is PermitType.UNSPECIFIED
    assert permit.status is PermitStatus.UNSPECIFIED

    where = permit_pb2.PermitFilter()
    where.status = 7  # type: ignore[assignment]
    assert filter_from_pb(where).status is PermitStatus.UNSPECIFIED


def test_the_wire_enums_mirror_the_domain_enums() -> None:
    for domain, wire, prefix in (
        (PermitType, permit_pb2.PermitType, "PERMIT_TYPE_"),
        (PermitStatus, permit_pb2.PermitStatus, "PERMIT_STATUS_"),
        (PermitAction, permit_pb2.PermitAction, "PERMIT_ACTION_"),
    ):
        assert {prefix + m.name: m.value for m in domain} == dict(wire.items())  # type: ignore[attr-defined]


def test_missing_validity_times_become_none() -> None:
    permit = permit_from_pb(permit_pb2.Permit(permit_id="P-1"))
    assert permit.valid_from is None
    assert permit.valid_to is None


def test_a_permit_without_validity_times_leaves_them_unset_on_the_wire() -> None:
    message = permit_to_pb(a_permit(valid_from=None, valid_to=None))
    assert not message.HasField("valid_from_time")
    assert not message.HasField("valid_to_time")


def test_out_of_range_timestamps_are_clamped_instead_of_failing() -> None:
    message = permit_pb2.Permit(permit_id="P-1")
    message.valid_from_time.seconds = -(10**15)
    message.valid_to_time.seconds = 10**15
    permit = permit_from_pb(message)
    assert permit.valid_from == datetime.min.replace(tzinfo=UTC)
    assert permit.valid_to == datetime.max.replace(tzinfo=UTC)


def test_output_only_fields_from_the_wire_are_kept_as_sent() -> None:
    # The registry sets status and version itself; conversion neither invents nor refuses them.
    permit = permit_from_pb(permit_pb2.Permit(permit_id="P-1"))
    assert permit.status is PermitStatus.UNSPECIFIED
    assert permit.version == 0


@given(st.binary(max_size=512))
def test_any_decodable_bytes_convert_without_failing(raw: bytes) -> None:
    try:
        message = permit_pb2.Permit.FromString(raw)
    except DecodeError:
        return
    assert isinstance(permit_from_pb(message), Permit)


_amounts = st.none() | st.floats(allow_nan=False)
_lines = st.builds(
    PermitGoodsLine,
    line_number=st.integers(0, 2**31 - 1),
    hs_prefix=st.text(max_size=10),
    description=st.text(max_size=20),
    unit=st.text(max_size=3),
    authorised_quantity=_amounts,
    authorised_value=_amounts,
)
_times = st.none() | st.datetimes(timezones=st.just(UTC))


@given(
    st.builds(
        Permit,
        permit_id=st.text(max_size=64),
        issuing_agency=st.text(max_size=8),
        type=st.sampled_from(PermitType),
        holder_id=st.text(max_size=16),
        goods_lines=st.lists(_lines, max_size=4).map(tuple),
        valid_from=_times,
        valid_to=_times,
        allowed_origin_countries=st.lists(st.text(max_size=2), max_size=3).map(tuple),
        allowed_customs_offices=st.lists(st.text(max_size=4), max_size=3).map(tuple),
        end_use=st.text(max_size=20),
        single_use=st.booleans(),
        status=st.sampled_from(PermitStatus),
        version=st.integers(0, 2**31 - 1),
    )
)
def test_any_permit_survives_the_round_trip(permit: Permit) -> None:
    assert permit_from_pb(permit_to_pb(permit)) == permit


def test_balances_show_what_remains_on_each_line() -> None:
    state = PermitState(a_permit(), {1: LineBalance(1200.0, 4800.0), 3: LineBalance(0.0, 7_000.5)})
    record = permit_state_to_pb(state)
    assert record.permit == permit_to_pb(state.permit)
    by_line = {b.line_number: b for b in record.balances}
    assert list(by_line) == [1, 2, 3, 4]

    limited = by_line[1]
    assert (limited.unit, limited.authorised_quantity, limited.drawn_quantity, limited.remaining_quantity) == (
        "KGM",
        5000.0,
        1200.0,
        3800.0,
    )
    assert (limited.authorised_value, limited.drawn_value, limited.remaining_value) == (20_000.0, 4800.0, 15_200.0)

    undrawn = by_line[2]
    assert (undrawn.drawn_quantity, undrawn.remaining_quantity) == (0.0, 1000.0)
    assert not undrawn.HasField("remaining_value")

    value_only = by_line[3]
    assert not value_only.HasField("authorised_quantity")
    assert not value_only.HasField("remaining_quantity")
    assert value_only.remaining_value == 500.0

    unlimited = by_line[4]
    for name in ("authorised_quantity", "remaining_quantity", "authorised_value", "remaining_value"):
        assert not unlimited.HasField(name)


def test_a_change_says_who_did_what_when_and_why() -> None:
    change = PermitChange("req-7", PermitAction.SUSPEND, "officer.kim", "under investigation", T0, a_permit())
    message = change_to_pb(change)
    assert message.request_id == "req-7"
    assert message.action == permit_pb2.PERMIT_ACTION_SUSPEND
    assert (message.actor, message.reason) == ("officer.kim", "under investigation")
    assert message.change_time.ToDatetime(tzinfo=UTC) == T0
    assert permit_from_pb(message.permit) == change.permit


def test_a_draw_names_the_permit_line_and_goods_item() -> None:
    message = draw_record_to_pb(draw())
    assert (message.permit_id, message.declaration_id, message.declaration_version) == ("NFQS-2026-0001", "D-1", 2)
    assert (message.line_number, message.item_number, message.quantity, message.value) == (1, 3, 120.5, 480.0)
    assert message.draw_time.ToDatetime(tzinfo=UTC) == T0 + timedelta(days=3)


def test_usage_lists_the_permit_with_its_balances_and_draws() -> None:
    state = PermitState(a_permit(), {1: LineBalance(120.5, 480.0)})
    message = usage_to_pb(PermitUsage(state, (draw(), draw(item_number=4))))
    assert message.permit == permit_state_to_pb(state)
    assert [d.item_number for d in message.draws] == [3, 4]


def test_a_cancellation_lists_the_released_draws() -> None:
    result = CancellationResult("D-1", (draw(), draw(line_number=2)), T0 + timedelta(days=5), created=False)
    message = cancellation_to_pb(result)
    assert message.declaration_id == "D-1"
    assert [d.line_number for d in message.released] == [1, 2]
    assert message.cancel_time.ToDatetime(tzinfo=UTC) == T0 + timedelta(days=5)


def test_the_filter_comes_over_as_sent() -> None:
    message = permit_pb2.PermitFilter(
        holder_id="KR1", issuing_agency="MFDS", hs_code="080810", status=permit_pb2.PERMIT_STATUS_ACTIVE
    )
    assert filter_from_pb(message) == PermitFilter("KR1", "MFDS", "080810", PermitStatus.ACTIVE)
    assert filter_from_pb(permit_pb2.PermitFilter()) == PermitFilter()


def test_an_import_row_carries_its_line_and_permit() -> None:
    request = permit_service_pb2.ImportPermitsRequest(
        line_number=12, request_id="feed-1:12", actor="nfqs-feed", permit=permit_to_pb(a_permit()), strict=True
    )
    row = import_row_from_pb(request)
    assert (row.line_number, row.request_id, row.actor) == (12, "feed-1:12", "nfqs-feed")
    assert row.permit == a_permit()


def test_import_row_errors_carry_the_status_a_single_call_would_get() -> None:
    report = ImportReport(
        applied=False,
        created=0,
        amended=0,
        unchanged=0,
        errors=(
            (3, InvalidArgument([FieldViolation("permit.goods_lines[1].unit", "is not a UN/ECE Rec 20 code")])),
            (9, NotFound("permit P-9 is not registered")),
        ),
    )
    message = import_report_to_pb(report)
    assert not message.applied
    first, second = message.errors
    assert (first.line_number, first.status.code) == (3, code_pb2.INVALID_ARGUMENT)
    bad_request = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad_request) for d in first.status.details)
    assert [v.field for v in bad_request.field_violations] == ["permit.goods_lines[1].unit"]
    assert (second.line_number, second.status.code) == (9, code_pb2.NOT_FOUND)


def test_import_counts_come_over_as_reported() -> None:
    message = import_report_to_pb(ImportReport(True, 4, 2, 7, ()))
    assert (message.applied, message.created, message.amended, message.unchanged) == (True, 4, 2, 7)
    assert not message.errors
