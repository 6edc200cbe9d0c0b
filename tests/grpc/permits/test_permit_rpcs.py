"""The permit registry through the real gRPC server on SQLite and PostgreSQL: changes, history, listings, bad input."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

import grpc
import pytest
from google.protobuf import timestamp_pb2
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from protos.risk.v1 import permit_pb2
from protos.risk.v1 import permit_service_pb2 as ppb
from protos.risk.v1 import permit_service_pb2_grpc as ppb_grpc
from protos.risk.v1 import risk_scoring_service_pb2_grpc as pb_grpc
from tests.builders import declaration_pb, item
from tests.grpc.permits.helpers import (
    ACTOR,
    TIMEOUT,
    VALID_FROM,
    failure,
    get_permit,
    goods_line_pb,
    history,
    permit_pb,
    score,
    submit,
    unique,
)
from tests.grpc.status import error_reason, field_violations


def amend_request(
    permit: permit_pb2.Permit, *, reason: str = "quota raised", expected_version: int = 0
) -> ppb.AmendPermitRequest:
    return ppb.AmendPermitRequest(
        permit=permit, request_id=unique("REQ"), actor=ACTOR, reason=reason, expected_version=expected_version
    )


StatusRequest = ppb.SuspendPermitRequest | ppb.ReinstatePermitRequest | ppb.RevokePermitRequest


def status_request(
    kind: type[StatusRequest], permit_id: str, reason: str, request_id: str | None = None
) -> StatusRequest:
    return kind(permit_id=permit_id, request_id=request_id or unique("REQ"), actor=ACTOR, reason=reason)


# -- submit, get, amend --------------------------------------------------------------------------


def test_a_submitted_permit_is_active_at_version_1_with_full_balances(permits: ppb_grpc.PermitServiceStub) -> None:
    sent = permit_pb(
        lines=[goods_line_pb(1, "8471", quantity=1000.0), goods_line_pb(2, "8473", unit="", quantity=None, value=5e6)],
        origins=["CN", "VN"],
        offices=["020", "030"],
        end_use="resale",
    )
    change = submit(permits, sent, reason="issued after review")
    assert change.action == permit_pb2.PERMIT_ACTION_SUBMIT
    assert change.actor == ACTOR and change.reason == "issued after review"
    assert change.permit.version == 1 and change.permit.status == permit_pb2.PERMIT_STATUS_ACTIVE

    record = get_permit(permits, sent.permit_id)
    stored = record.permit
    assert stored.status == permit_pb2.PERMIT_STATUS_ACTIVE and stored.version == 1
    # Everything the agency sent comes back as sent; the registry only sets status and version.
    expected = permit_pb2.Permit()
    expected.CopyFrom(sent)
    expected.status, expected.version = stored.status, stored.version
    assert stored == expected
    quantity_line, value_line = record.balances
    assert (quantity_line.line_number, quantity_line.unit) == (1, "NAR")
    assert quantity_line.authorised_quantity == 1000.0 and quantity_line.remaining_quantity == 1000.0
    assert quantity_line.drawn_quantity == 0.0 and not quantity_line.HasField("authorised_value")
    assert value_line.line_number == 2 and value_line.authorised_value == 5e6 and value_line.remaining_value == 5e6
    # An unlimited quantity is absent, not 0: absent means "not limited".
    assert not value_line.HasField("authorised_quantity") and not value_line.HasField("remaining_quantity")


def test_an_amendment_makes_version_2_and_keeps_the_status(permits: ppb_grpc.PermitServiceStub) -> None:
    sent = permit_pb()
    submit(permits, sent)
    sent.goods_lines[0].authorised_quantity = 1500.0
    change = permits.AmendPermit(amend_request(sent, expected_version=1), timeout=TIMEOUT).change
    assert change.action == permit_pb2.PERMIT_ACTION_AMEND and change.permit.version == 2
    record = get_permit(permits, sent.permit_id)
    assert record.permit.version == 2 and record.permit.status == permit_pb2.PERMIT_STATUS_ACTIVE
    assert record.balances[0].authorised_quantity == 1500.0 and record.balances[0].remaining_quantity == 1500.0


def test_an_amendment_of_a_stale_version_is_refused(permits: ppb_grpc.PermitServiceStub) -> None:
    sent = permit_pb()
    submit(permits, sent)
    sent.end_use = "first edit"
    permits.AmendPermit(amend_request(sent, expected_version=1), timeout=TIMEOUT)
    sent.end_use = "edit of a stale read"
    err = failure(permits.AmendPermit, amend_request(sent, expected_version=1))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
    assert "version 2" in (err.details() or "")
    assert get_permit(permits, sent.permit_id).permit.end_use == "first edit"


def test_an_amendment_by_another_agency_is_refused(permits: ppb_grpc.PermitServiceStub) -> None:
    sent = permit_pb(agency="MOTIE")
    submit(permits, sent)
    sent.issuing_agency = "MFDS"
    err = failure(permits.AmendPermit, amend_request(sent))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
    assert get_permit(permits, sent.permit_id).permit.issuing_agency == "MOTIE"


# -- status changes and history ------------------------------------------------------------------


def test_every_change_is_kept_with_actor_reason_time_and_action(permits: ppb_grpc.PermitServiceStub) -> None:
    sent = permit_pb()
    before = datetime.now().timestamp()
    submit(permits, sent, reason="issued")
    sent.goods_lines[0].authorised_quantity = 2000.0
    permits.AmendPermit(amend_request(sent, reason="quota raised"), timeout=TIMEOUT)
    pid = sent.permit_id
    suspended = permits.SuspendPermit(status_request(ppb.SuspendPermitRequest, pid, "audit pending"), timeout=TIMEOUT)
    assert suspended.change.permit.status == permit_pb2.PERMIT_STATUS_SUSPENDED
    assert get_permit(permits, pid).permit.status == permit_pb2.PERMIT_STATUS_SUSPENDED
    reinstated = permits.ReinstatePermit(
        status_request(ppb.ReinstatePermitRequest, pid, "audit passed"), timeout=TIMEOUT
    )
    assert reinstated.change.permit.status == permit_pb2.PERMIT_STATUS_ACTIVE
    revoked = permits.RevokePermit(status_request(ppb.RevokePermitRequest, pid, "fraud found"), timeout=TIMEOUT)
    assert revoked.change.permit.status == permit_pb2.PERMIT_STATUS_REVOKED
    after = datetime.now().timestamp()

    changes = history(permits, pid)
    assert [(c.action, c.reason, c.permit.version, c.permit.status) for c in changes] == [
        (permit_pb2.PERMIT_ACTION_SUBMIT, "issued", 1, permit_pb2.PERMIT_STATUS_ACTIVE),
        (permit_pb2.PERMIT_ACTION_AMEND, "quota raised", 2, permit_pb2.PERMIT_STATUS_ACTIVE),
        (permit_pb2.PERMIT_ACTION_SUSPEND, "audit pending", 3, permit_pb2.PERMIT_STATUS_SUSPENDED),
        (permit_pb2.PERMIT_ACTION_REINSTATE, "audit passed", 4, permit_pb2.PERMIT_STATUS_ACTIVE),
        (permit_pb2.PERMIT_ACTION_REVOKE, "fraud found", 5, permit_pb2.PERMIT_STATUS_REVOKED),
    ]
    assert all(c.actor == ACTOR and c.request_id for c in changes)
    assert len({c.request_id for c in changes}) == 5
    times = [c.change_time.ToMicroseconds() / 1e6 for c in changes]
    assert times == sorted(times) and before - 1 <= times[0] and times[-1] <= after + 1
    # Each entry carries the permit as it was after the change: the amendment's quota is in it.
    assert changes[0].permit.goods_lines[0].authorised_quantity == 1000.0
    assert changes[1].permit.goods_lines[0].authorised_quantity == 2000.0
    assert get_permit(permits, pid).permit.version == 5


def test_a_revoked_permit_cannot_be_revoked_again_or_amended(permits: ppb_grpc.PermitServiceStub) -> None:
    sent = permit_pb()
    submit(permits, sent)
    pid = sent.permit_id
    permits.RevokePermit(status_request(ppb.RevokePermitRequest, pid, "withdrawn"), timeout=TIMEOUT)
    again = failure(permits.RevokePermit, status_request(ppb.RevokePermitRequest, pid, "withdrawn twice"))
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION, again.details()
    for kind in (ppb.SuspendPermitRequest, ppb.ReinstatePermitRequest):
        err = failure(
            permits.SuspendPermit if kind is ppb.SuspendPermitRequest else permits.ReinstatePermit,
            status_request(kind, pid, "too late"),
        )
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
    amended = failure(permits.AmendPermit, amend_request(sent))
    assert amended.code() == grpc.StatusCode.FAILED_PRECONDITION, amended.details()
    assert [c.action for c in history(permits, pid)] == [
        permit_pb2.PERMIT_ACTION_SUBMIT,
        permit_pb2.PERMIT_ACTION_REVOKE,
    ]


def test_reinstating_an_active_permit_is_refused(permits: ppb_grpc.PermitServiceStub) -> None:
    sent = permit_pb()
    submit(permits, sent)
    err = failure(permits.ReinstatePermit, status_request(ppb.ReinstatePermitRequest, sent.permit_id, "not needed"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()


@pytest.mark.parametrize("action", ["SuspendPermit", "ReinstatePermit", "RevokePermit"])
def test_a_status_change_of_an_unknown_permit_is_not_found(permits: ppb_grpc.PermitServiceStub, action: str) -> None:
    kind = getattr(ppb, f"{action}Request")
    pid = unique("NOPE")
    err = failure(getattr(permits, action), status_request(kind, pid, "no such permit"))
    assert err.code() == grpc.StatusCode.NOT_FOUND, err.details()
    assert pid in (err.details() or "")


def test_reads_of_an_unknown_permit_are_not_found(permits: ppb_grpc.PermitServiceStub) -> None:
    pid = unique("NOPE")
    for call, request in (
        (permits.GetPermit, ppb.GetPermitRequest(permit_id=pid)),
        (permits.GetPermitHistory, ppb.GetPermitHistoryRequest(permit_id=pid)),
    ):
        err = failure(call, request)
        assert err.code() == grpc.StatusCode.NOT_FOUND, err.details()
    amended = failure(permits.AmendPermit, amend_request(permit_pb(pid)))
    assert amended.code() == grpc.StatusCode.NOT_FOUND, amended.details()


# -- idempotency ---------------------------------------------------------------------------------


def test_a_retried_submission_returns_the_same_change(permits: ppb_grpc.PermitServiceStub) -> None:
    sent = permit_pb()
    request_id = unique("REQ")
    first = submit(permits, sent, request_id=request_id, reason="issued")
    again = submit(permits, sent, request_id=request_id, reason="issued")
    assert again == first
    assert get_permit(permits, sent.permit_id).permit.version == 1
    assert len(history(permits, sent.permit_id)) == 1


def test_retried_amendments_and_status_changes_make_no_new_version(permits: ppb_grpc.PermitServiceStub) -> None:
    sent = permit_pb()
    submit(permits, sent)
    sent.goods_lines[0].authorised_quantity = 1200.0
    amend = amend_request(sent, expected_version=1)
    first = permits.AmendPermit(amend, timeout=TIMEOUT).change
    # The retry's expected_version is stale by now; it is the same request, so it returns the stored change.
    assert permits.AmendPermit(amend, timeout=TIMEOUT).change == first
    suspend = status_request(ppb.SuspendPermitRequest, sent.permit_id, "audit")
    suspended = permits.SuspendPermit(suspend, timeout=TIMEOUT).change
    assert permits.SuspendPermit(suspend, timeout=TIMEOUT).change == suspended
    assert get_permit(permits, sent.permit_id).permit.version == 3
    assert [c.permit.version for c in history(permits, sent.permit_id)] == [1, 2, 3]


def test_a_request_id_reused_for_another_change_is_refused(permits: ppb_grpc.PermitServiceStub) -> None:
    request_id = unique("REQ")
    sent = permit_pb()
    submit(permits, sent, request_id=request_id)
    other = permit_pb()
    err = failure(
        permits.SubmitPermit, ppb.SubmitPermitRequest(permit=other, request_id=request_id, actor=ACTOR, reason="x")
    )
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS, err.details()
    assert error_reason(err) == "REQUEST_ID_CONFLICT"
    missing = failure(permits.GetPermit, ppb.GetPermitRequest(permit_id=other.permit_id))
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    # The same id for a status change of the first permit is another change too.
    err = failure(permits.SuspendPermit, status_request(ppb.SuspendPermitRequest, sent.permit_id, "audit", request_id))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS and error_reason(err) == "REQUEST_ID_CONFLICT"
    assert get_permit(permits, sent.permit_id).permit.status == permit_pb2.PERMIT_STATUS_ACTIVE


def test_a_second_submission_of_a_registered_id_is_refused(permits: ppb_grpc.PermitServiceStub) -> None:
    sent = permit_pb()
    submit(permits, sent)
    sent.end_use = "different content"
    err = failure(
        permits.SubmitPermit, ppb.SubmitPermitRequest(permit=sent, request_id=unique("REQ"), actor=ACTOR, reason="")
    )
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS, err.details()
    assert error_reason(err) == "PERMIT_EXISTS"
    assert get_permit(permits, sent.permit_id).permit.end_use == ""


# -- listings ------------------------------------------------------------------------------------


def list_ids(permits: ppb_grpc.PermitServiceStub, **where: object) -> list[str]:
    """Ids of every permit matching the filter, over all pages."""
    ids: list[str] = []
    token = ""
    while True:
        request = ppb.ListPermitsRequest(filter=permit_pb2.PermitFilter(**where), page_size=100, page_token=token)  # type: ignore[arg-type]
        response = permits.ListPermits(request, timeout=TIMEOUT)
        ids.extend(p.permit.permit_id for p in response.permits)
        token = response.next_page_token
        if not token:
            return ids


def test_permits_are_listed_by_holder_and_by_agency(permits: ppb_grpc.PermitServiceStub) -> None:
    holder, agency = unique("HLD"), unique("AGY")
    mine = [permit_pb(holder_id=holder), permit_pb(holder_id=holder, agency=agency)]
    theirs = permit_pb(agency=agency)
    for p in (*mine, theirs):
        submit(permits, p)
    assert list_ids(permits, holder_id=holder) == sorted(p.permit_id for p in mine)
    assert list_ids(permits, issuing_agency=agency) == sorted([mine[1].permit_id, theirs.permit_id])
    assert list_ids(permits, holder_id=holder, issuing_agency=agency) == [mine[1].permit_id]


def test_permits_are_listed_by_the_hs_code_their_lines_cover(permits: ppb_grpc.PermitServiceStub) -> None:
    holder = unique("HLD")
    shrimp = permit_pb(holder_id=holder, lines=[goods_line_pb(1, "0306", unit="KGM")])
    molluscs = permit_pb(holder_id=holder, lines=[goods_line_pb(1, "0307", unit="KGM")])
    crustaceans_and_more = permit_pb(
        holder_id=holder, lines=[goods_line_pb(1, "8471"), goods_line_pb(2, "03061", unit="KGM")]
    )
    for p in (shrimp, molluscs, crustaceans_and_more):
        submit(permits, p)
    frozen_shrimp = list_ids(permits, hs_code="0306170000")
    assert shrimp.permit_id in frozen_shrimp and crustaceans_and_more.permit_id in frozen_shrimp
    assert molluscs.permit_id not in frozen_shrimp
    oysters = list_ids(permits, hs_code="0307110000")
    assert molluscs.permit_id in oysters and shrimp.permit_id not in oysters
    # A 4-digit code is covered by a 4-digit line, not by a longer, narrower one.
    assert list_ids(permits, hs_code="0306", holder_id=holder) == [shrimp.permit_id]


def test_permits_are_listed_by_status(permits: ppb_grpc.PermitServiceStub) -> None:
    holder = unique("HLD")
    active, suspended = permit_pb(holder_id=holder), permit_pb(holder_id=holder)
    for p in (active, suspended):
        submit(permits, p)
    permits.SuspendPermit(status_request(ppb.SuspendPermitRequest, suspended.permit_id, "audit"), timeout=TIMEOUT)
    assert list_ids(permits, holder_id=holder, status=permit_pb2.PERMIT_STATUS_SUSPENDED) == [suspended.permit_id]
    assert list_ids(permits, holder_id=holder, status=permit_pb2.PERMIT_STATUS_ACTIVE) == [active.permit_id]


def test_a_listing_pages_through_every_permit_once_in_id_order(permits: ppb_grpc.PermitServiceStub) -> None:
    holder = unique("HLD")
    sent = [permit_pb(holder_id=holder) for _ in range(5)]
    for p in sent:
        submit(permits, p)
    where = permit_pb2.PermitFilter(holder_id=holder)
    pages: list[list[str]] = []
    token = ""
    while True:
        request = ppb.ListPermitsRequest(filter=where, page_size=2, page_token=token)
        response = permits.ListPermits(request, timeout=TIMEOUT)
        pages.append([p.permit.permit_id for p in response.permits])
        token = response.next_page_token
        if not token:
            break
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [pid for page in pages for pid in page] == sorted(p.permit_id for p in sent)
    # Listed permits carry their balances too.
    first = permits.ListPermits(ppb.ListPermitsRequest(filter=where, page_size=1), timeout=TIMEOUT).permits[0]
    assert first.balances[0].remaining_quantity == 1000.0


@pytest.mark.parametrize("token", ["not-a-token", "eyJhZnRlciI6IDF9", "!!!"])
def test_a_bad_page_token_is_refused_naming_page_token(permits: ppb_grpc.PermitServiceStub, token: str) -> None:
    err = failure(permits.ListPermits, ppb.ListPermitsRequest(page_size=2, page_token=token))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert "page_token" in field_violations(err)


def test_a_page_token_of_another_query_is_refused(permits: ppb_grpc.PermitServiceStub) -> None:
    holder = unique("HLD")
    for _ in range(3):
        submit(permits, permit_pb(holder_id=holder))
    page = permits.ListPermits(
        ppb.ListPermitsRequest(filter=permit_pb2.PermitFilter(holder_id=holder), page_size=1), timeout=TIMEOUT
    )
    assert page.next_page_token
    other = ppb.ListPermitsRequest(
        filter=permit_pb2.PermitFilter(holder_id=unique("HLD")), page_size=1, page_token=page.next_page_token
    )
    err = failure(permits.ListPermits, other)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in field_violations(err)


@pytest.mark.parametrize(
    ("request_", "path"),
    [
        (ppb.ListPermitsRequest(page_size=-1), "page_size"),
        (ppb.ListPermitsRequest(filter=permit_pb2.PermitFilter(hs_code="03.06")), "filter.hs_code"),
    ],
)
def test_a_bad_listing_request_is_refused(
    permits: ppb_grpc.PermitServiceStub, request_: ppb.ListPermitsRequest, path: str
) -> None:
    err = failure(permits.ListPermits, request_)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and path in field_violations(err)


# -- bad input -----------------------------------------------------------------------------------


def _unknown_unit(p: permit_pb2.Permit) -> None:
    p.goods_lines[0].unit = "BARREL"


def _validity_reversed(p: permit_pb2.Permit) -> None:
    p.valid_to_time.FromDatetime(VALID_FROM.replace(year=2025))


def _negative_quantity(p: permit_pb2.Permit) -> None:
    p.goods_lines[0].authorised_quantity = -5.0


def _negative_value(p: permit_pb2.Permit) -> None:
    p.goods_lines[0].authorised_value = -1.0


def _duplicate_line_number(p: permit_pb2.Permit) -> None:
    p.goods_lines.append(goods_line_pb(1, "8473"))


def _duplicate_prefix(p: permit_pb2.Permit) -> None:
    p.goods_lines.append(goods_line_pb(2, "8471"))


def _no_lines(p: permit_pb2.Permit) -> None:
    del p.goods_lines[:]


def _no_validity_end(p: permit_pb2.Permit) -> None:
    p.ClearField("valid_to_time")


def _unknown_type(p: permit_pb2.Permit) -> None:
    p.type = permit_pb2.PERMIT_TYPE_UNSPECIFIED


def _bad_origin(p: permit_pb2.Permit) -> None:
    p.allowed_origin_countries.append("XX")


def _nan_quantity(p: permit_pb2.Permit) -> None:
    p.goods_lines[0].authorised_quantity = math.nan


MALFORMED = [
    (_unknown_unit, "permit.goods_lines[0].unit"),
    (_validity_reversed, "permit.valid_to_time"),
    (_negative_quantity, "permit.goods_lines[0].authorised_quantity"),
    (_negative_value, "permit.goods_lines[0].authorised_value"),
    (_duplicate_line_number, "permit.goods_lines[1].line_number"),
    (_duplicate_prefix, "permit.goods_lines[1].hs_prefix"),
    (_no_lines, "permit.goods_lines"),
    (_no_validity_end, "permit.valid_to_time"),
    (_unknown_type, "permit.type"),
    (_bad_origin, "permit.allowed_origin_countries[0]"),
    (_nan_quantity, "permit.goods_lines[0].authorised_quantity"),
]


@pytest.mark.parametrize(("spoil", "path"), MALFORMED, ids=[spoil.__name__.strip("_") for spoil, _ in MALFORMED])
def test_a_malformed_permit_is_refused_naming_the_field_and_nothing_is_stored(
    permits: ppb_grpc.PermitServiceStub,
    spoil: Callable[[permit_pb2.Permit], None],
    path: str,
) -> None:
    sent = permit_pb()
    spoil(sent)
    err = failure(
        permits.SubmitPermit, ppb.SubmitPermitRequest(permit=sent, request_id=unique("REQ"), actor=ACTOR, reason="")
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert path in field_violations(err), field_violations(err)
    for call, request in (
        (permits.GetPermit, ppb.GetPermitRequest(permit_id=sent.permit_id)),
        (permits.GetPermitHistory, ppb.GetPermitHistoryRequest(permit_id=sent.permit_id)),
    ):
        assert failure(call, request).code() == grpc.StatusCode.NOT_FOUND


def test_every_defect_of_a_permit_is_named_at_once(permits: ppb_grpc.PermitServiceStub) -> None:
    sent = permit_pb()
    for spoil in (_unknown_unit, _validity_reversed, _duplicate_line_number):
        spoil(sent)
    sent.goods_lines[1].authorised_quantity = -3.0
    err = failure(permits.SubmitPermit, ppb.SubmitPermitRequest(permit=sent, request_id="", actor="", reason=""))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(err)) >= {
        "request_id",
        "actor",
        "permit.goods_lines[0].unit",
        "permit.valid_to_time",
        "permit.goods_lines[1].line_number",
        "permit.goods_lines[1].authorised_quantity",
    }


def test_a_malformed_amendment_leaves_the_permit_as_it_was(permits: ppb_grpc.PermitServiceStub) -> None:
    sent = permit_pb()
    submit(permits, sent)
    spoilt = permit_pb2.Permit()
    spoilt.CopyFrom(sent)
    _unknown_unit(spoilt)
    err = failure(permits.AmendPermit, amend_request(spoilt))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "permit.goods_lines[0].unit" in field_violations(err)
    assert get_permit(permits, sent.permit_id).permit.goods_lines[0].unit == "NAR"
    assert len(history(permits, sent.permit_id)) == 1


def test_an_amendment_below_what_was_drawn_is_refused_and_changes_nothing(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    sent = permit_pb(lines=[goods_line_pb(1, "8471", quantity=1000.0), goods_line_pb(2, "8473", quantity=50.0)])
    submit(permits, sent)
    assessment = score(stub, declaration_pb(items=(item(quantity=300, permit_references=(sent.permit_id,)),)))
    assert not [h for h in assessment.rule_hits if h.rule_id.startswith("PERMIT_")]
    assert get_permit(permits, sent.permit_id).balances[0].drawn_quantity == 300.0

    cut = permit_pb2.Permit()
    cut.CopyFrom(sent)
    cut.goods_lines[0].authorised_quantity = 250.0
    err = failure(permits.AmendPermit, amend_request(cut))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
    assert "300" in (err.details() or "") and "250" in (err.details() or "")
    dropped = permit_pb2.Permit()
    dropped.CopyFrom(sent)
    del dropped.goods_lines[0]
    assert failure(permits.AmendPermit, amend_request(dropped)).code() == grpc.StatusCode.FAILED_PRECONDITION
    rewound = permit_pb2.Permit()
    rewound.CopyFrom(sent)
    rewound.goods_lines[0].unit = "KGM"
    assert failure(permits.AmendPermit, amend_request(rewound)).code() == grpc.StatusCode.FAILED_PRECONDITION

    record = get_permit(permits, sent.permit_id)
    assert record.permit.version == 1 and record.permit.goods_lines[0].authorised_quantity == 1000.0
    assert record.balances[0].drawn_quantity == 300.0 and record.balances[0].remaining_quantity == 700.0
    assert len(history(permits, sent.permit_id)) == 1
    # Down to exactly what was drawn is allowed; a line nothing was drawn from may go.
    cut.goods_lines[0].authorised_quantity = 300.0
    del cut.goods_lines[1]
    assert permits.AmendPermit(amend_request(cut), timeout=TIMEOUT).change.permit.version == 2
    assert get_permit(permits, sent.permit_id).balances[0].remaining_quantity == 0.0


# Arbitrary permits: each field plausible, or hostile when hypothesis picks it to spoil, so that
# some permits are stored (and amended) and the rest fail in every way validation must catch.
_text = st.one_of(st.text(max_size=30), st.integers(520, 600).map(lambda n: "é" * n))
_hostile_amount = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-10, 1e7))
_amount = st.one_of(st.none(), st.floats(0, 1e7))
_stamp = st.builds(
    timestamp_pb2.Timestamp,
    seconds=st.one_of(st.integers(-(2**62), 2**62), st.integers(1_700_000_000, 1_900_000_000)),
    nanos=st.integers(-(10**9), 2 * 10**9),
)


@st.composite
def _goods_lines(draw: st.DrawFn, spoilt: bool) -> list[permit_pb2.PermitGoodsLine]:
    prefixes = draw(st.lists(st.from_regex(r"[0-9]{2,10}", fullmatch=True), min_size=1, max_size=3, unique=True))
    lines = [
        goods_line_pb(
            number,
            prefix,
            unit=draw(st.sampled_from(["NAR", "KGM", "TNE", "LTR", "DZN"])),
            quantity=draw(_amount),
            value=draw(_amount),
            description=draw(st.text(max_size=20)),
        )
        for number, prefix in enumerate(prefixes, start=1)
    ]
    if spoilt:
        line = draw(st.sampled_from(lines))
        line.line_number = draw(st.integers(-2, 4))
        line.hs_prefix = draw(st.one_of(st.from_regex(r"[0-9]{0,12}", fullmatch=True), _text))
        line.unit = draw(st.sampled_from(["", "kg", "BARREL", "NAR", "\x00"]))
        for field in ("authorised_quantity", "authorised_value"):
            amount = draw(st.one_of(st.none(), _hostile_amount))
            if amount is None:
                line.ClearField(field)
            else:
                setattr(line, field, amount)
        if draw(st.booleans()):
            lines = [] if draw(st.booleans()) else [*lines, lines[0]]
    return lines


_FIELDS = ("permit_id", "agency", "type", "holder", "lines", "origins", "offices", "validity", "end_use", "status")


@st.composite
def permit_messages(draw: st.DrawFn) -> permit_pb2.Permit:
    spoil = draw(st.sets(st.sampled_from(_FIELDS), max_size=3))

    def pick(field: str, plausible: st.SearchStrategy[object], hostile: st.SearchStrategy[object]) -> object:
        return draw(hostile if field in spoil else plausible)

    message = permit_pb2.Permit(
        permit_id=pick("permit_id", st.from_regex(r"HYP-[0-9]{1,2}", fullmatch=True), _text),  # type: ignore[arg-type]
        issuing_agency=pick("agency", st.sampled_from(["MOTIE", "NFQS"]), st.sampled_from(["", " MFDS", "x" * 80])),  # type: ignore[arg-type]
        type=pick("type", st.integers(1, 9), st.sampled_from([0, 10, 42, -1])),  # type: ignore[arg-type]
        holder_id=pick("holder", st.sampled_from(["IMP-0001", "IMP-0002"]), st.sampled_from(["", " x", "\x00"])),  # type: ignore[arg-type]
        goods_lines=draw(_goods_lines("lines" in spoil)),
        allowed_origin_countries=pick(  # type: ignore[arg-type]
            "origins",
            st.lists(st.sampled_from(["CN", "KR", "VN"]), max_size=2),
            st.lists(st.sampled_from(["", "XX", "cn", "KOR"]), min_size=1, max_size=2),
        ),
        allowed_customs_offices=pick(  # type: ignore[arg-type]
            "offices",
            st.lists(st.sampled_from(["020", "030"]), max_size=2),
            st.lists(st.sampled_from(["", " 0"]), min_size=1),
        ),
        end_use=pick("end_use", st.text(max_size=20), _text),  # type: ignore[arg-type]
        single_use=draw(st.booleans()),
        # Status and version are output only: whatever is sent, the registry sets its own.
        status=pick("status", st.integers(0, 3), st.integers(4, 9)),  # type: ignore[arg-type]
        version=draw(st.integers(0, 3)),
    )
    if "validity" in spoil:
        for field in ("valid_from_time", "valid_to_time"):
            stamp = draw(st.one_of(st.none(), _stamp))
            if stamp is not None:
                getattr(message, field).CopyFrom(stamp)
    else:
        start = draw(st.integers(1_700_000_000, 1_800_000_000))
        message.valid_from_time.seconds = start
        message.valid_to_time.seconds = start + draw(st.integers(1, 10**8))
    return message


_ACCEPTABLE = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=permit_messages(), amend=st.booleans())
def test_no_permit_makes_the_registry_fail(
    permits: ppb_grpc.PermitServiceStub, message: permit_pb2.Permit, amend: bool
) -> None:
    request_id = unique("HYP")
    try:
        if amend:
            # NOT_FOUND and FAILED_PRECONDITION are answers an amendment may rightly get.
            change = permits.AmendPermit(
                ppb.AmendPermitRequest(permit=message, request_id=request_id, actor=ACTOR), timeout=TIMEOUT
            ).change
        else:
            change = permits.SubmitPermit(
                ppb.SubmitPermitRequest(permit=message, request_id=request_id, actor=ACTOR), timeout=TIMEOUT
            ).change
    except grpc.RpcError as err:
        event(err.code().name)
        allowed = _ACCEPTABLE | ({grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION} if amend else set())
        assert err.code() in allowed, (err.code(), err.details())
        if err.code() == grpc.StatusCode.INVALID_ARGUMENT:
            assert all(path.startswith("permit") for path in field_violations(err)), field_violations(err)
        return
    event("stored")
    assert change.permit.permit_id == message.permit_id
    assert change.permit.status == permit_pb2.PERMIT_STATUS_ACTIVE
    stored = get_permit(permits, message.permit_id)
    assert stored.permit.version == change.permit.version
