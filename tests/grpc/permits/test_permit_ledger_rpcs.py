"""The permit ledger through the real gRPC server on SQLite and PostgreSQL, and the proof it never overdraws."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2

from protos.risk.v1 import assessment_pb2, declaration_pb2, permit_pb2
from protos.risk.v1 import permit_service_pb2 as ppb
from protos.risk.v1 import permit_service_pb2_grpc as ppb_grpc
from protos.risk.v1 import risk_scoring_service_pb2 as pb
from protos.risk.v1 import risk_scoring_service_pb2_grpc as pb_grpc
from tests.builders import declaration_pb, item
from tests.grpc.conftest import Registry
from tests.grpc.permits.helpers import (
    ACTOR,
    TIMEOUT,
    cancel,
    failure,
    get_permit,
    goods_line_pb,
    permit_hits,
    permit_pb,
    score,
    submit,
    unique,
    usage,
)
from tests.grpc.status import field_violations
from tests.serving import ServerThread, make_settings


@pytest.fixture(scope="module")
def twin(server: ServerThread, registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """A second server process-alike on the same database: its own store writer, engine and permit cache."""
    settings = make_settings(
        tmp_path_factory.mktemp("twin"),
        database_url=server.settings.resolved_database_url,
        tracking_uri=registry.tracking_uri,
    )
    with ServerThread(settings) as running:
        yield running


def registered(permits: ppb_grpc.PermitServiceStub, **fields: object) -> permit_pb2.Permit:
    """A new permit of an agency no other test reports on (line 1: laptops, 1000 NAR unless given)."""
    sent = permit_pb(agency=unique("AGY"), **fields)  # type: ignore[arg-type]
    submit(permits, sent)
    return sent


def citing(permit_id: str, quantity: float, **fields: object) -> declaration_pb2.Declaration:
    return declaration_pb(items=(item(quantity=quantity, permit_references=(permit_id,)),), **fields)


def line_1(permits: ppb_grpc.PermitServiceStub, permit_id: str) -> permit_pb2.LineBalance:
    return get_permit(permits, permit_id).balances[0]


def report(permits: ppb_grpc.PermitServiceStub, sent: permit_pb2.Permit) -> permit_pb2.PermitUsage:
    (only,) = usage(permits, sent.issuing_agency)
    assert only.permit.permit.permit_id == sent.permit_id
    return only


# -- draws, re-scoring, amendments ---------------------------------------------------------------


def test_a_draw_is_reported_with_authorised_drawn_remaining_and_the_declaration(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    sent = registered(
        permits, lines=[goods_line_pb(1, "8471", quantity=1000.0, value=10_000_000.0), goods_line_pb(2, "8473")]
    )
    declaration = declaration_pb(
        items=(
            item(item_number=1, quantity=120, customs_value=400_000.0, permit_references=(sent.permit_id,)),
            item(item_number=2, quantity=30, customs_value=100_000.0, permit_references=(sent.permit_id,)),
        )
    )
    assessment = score(stub, declaration)
    assert permit_hits(assessment) == {}

    used = report(permits, sent)
    first, second = used.permit.balances
    assert (first.authorised_quantity, first.drawn_quantity, first.remaining_quantity) == (1000.0, 150.0, 850.0)
    assert (first.authorised_value, first.drawn_value, first.remaining_value) == (10_000_000.0, 500_000.0, 9_500_000.0)
    assert (second.drawn_quantity, second.remaining_quantity) == (0.0, 1000.0)
    assert [(d.declaration_id, d.declaration_version, d.line_number, d.item_number) for d in used.draws] == [
        (declaration.declaration_id, 1, 1, 1),
        (declaration.declaration_id, 1, 1, 2),
    ]
    assert [(d.quantity, d.value) for d in used.draws] == [(120.0, 400_000.0), (30.0, 100_000.0)]
    assert all(d.permit_id == sent.permit_id and d.draw_time.seconds > 0 for d in used.draws)
    # The registry's own view agrees with the report.
    assert get_permit(permits, sent.permit_id).balances[0] == first


def test_the_usage_report_pages_through_an_agencys_permits(permits: ppb_grpc.PermitServiceStub) -> None:
    agency = unique("AGY")
    sent = [permit_pb(agency=agency) for _ in range(3)]
    for p in sent:
        submit(permits, p)
    page = permits.ReportPermitUsage(ppb.ReportPermitUsageRequest(issuing_agency=agency, page_size=2), timeout=TIMEOUT)
    assert len(page.permits) == 2 and page.next_page_token
    rest = permits.ReportPermitUsage(
        ppb.ReportPermitUsageRequest(issuing_agency=agency, page_size=2, page_token=page.next_page_token),
        timeout=TIMEOUT,
    )
    assert len(rest.permits) == 1 and not rest.next_page_token
    listed = [u.permit.permit.permit_id for u in (*page.permits, *rest.permits)]
    assert listed == sorted(p.permit_id for p in sent)
    err = failure(permits.ReportPermitUsage, ppb.ReportPermitUsageRequest(issuing_agency=""))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "issuing_agency" in field_violations(err)


def test_rescoring_the_same_declaration_version_never_draws_twice(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    sent = registered(permits)
    declaration = citing(sent.permit_id, 100)
    first = score(stub, declaration)
    for again in (
        score(stub, declaration),
        stub.ScoreDeclarations(pb.ScoreDeclarationsRequest(declarations=[declaration]), timeout=TIMEOUT).assessments[0],
        next(
            iter(stub.StreamScoreDeclarations(iter([pb.StreamScoreDeclarationsRequest(declaration=declaration)])))
        ).assessment,
    ):
        assert again == first
    assert line_1(permits, sent.permit_id).drawn_quantity == 100.0
    assert len(report(permits, sent).draws) == 1


def test_concurrent_retries_of_one_declaration_draw_once(
    permits: ppb_grpc.PermitServiceStub, server: ServerThread, twin: ServerThread
) -> None:
    sent = registered(permits)
    declaration = citing(sent.permit_id, 100)
    results = run_concurrently([("unary", [declaration])] * 12, [server.address, twin.address], workers=12)
    assert not results.errors, results.errors
    assert len({a.assessment_id for a in results.all}) == 1, "every retry returns the one stored assessment"
    assert line_1(permits, sent.permit_id).drawn_quantity == 100.0
    assert len(report(permits, sent).draws) == 1


def test_an_amendment_replaces_the_earlier_draw(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    sent = registered(permits, lines=[goods_line_pb(1, "8471", quantity=150.0)])
    v1 = citing(sent.permit_id, 100)
    score(stub, v1)
    # Version 2 asks for 120: more than the 50 left beside version 1's draw, but that draw is given back first.
    v2 = citing(sent.permit_id, 120, declaration_id=v1.declaration_id, version=2)
    assert permit_hits(score(stub, v2)) == {}
    used = report(permits, sent)
    assert [(d.declaration_version, d.quantity) for d in used.draws] == [(2, 120.0)]
    assert used.permit.balances[0].drawn_quantity == 120.0 and used.permit.balances[0].remaining_quantity == 30.0
    v3 = citing(sent.permit_id, 40, declaration_id=v1.declaration_id, version=3)
    score(stub, v3)
    assert [(d.declaration_version, d.quantity) for d in report(permits, sent).draws] == [(3, 40.0)]
    assert line_1(permits, sent.permit_id).drawn_quantity == 40.0


def test_a_replica_with_a_stale_cached_balance_still_cannot_overdraw(
    permits: ppb_grpc.PermitServiceStub, server: ServerThread, twin: ServerThread
) -> None:
    sent = registered(permits, lines=[goods_line_pb(1, "8471", quantity=150.0)])
    with server.channel() as to_server, twin.channel() as to_twin:
        here, there = pb_grpc.RiskScoringServiceStub(to_server), pb_grpc.RiskScoringServiceStub(to_twin)
        assert permit_hits(score(there, citing(sent.permit_id, 10))) == {}  # the twin caches 140 remaining
        assert permit_hits(score(here, citing(sent.permit_id, 100))) == {}  # which the twin does not hear of
        refused = score(there, citing(sent.permit_id, 80))
    assert list(permit_hits(refused)) == ["PERMIT_BALANCE_EXCEEDED"]
    assert "40 NAR remain" in permit_hits(refused)["PERMIT_BALANCE_EXCEEDED"].message
    assert line_1(permits, sent.permit_id).drawn_quantity == 110.0


def test_a_late_older_version_does_not_replace_a_newer_draw(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    sent = registered(permits)
    v2 = citing(sent.permit_id, 40, version=2)
    v1 = citing(sent.permit_id, 100, declaration_id=v2.declaration_id, version=1)
    score(stub, v2)
    score(stub, v1)
    assert [(d.declaration_version, d.quantity) for d in report(permits, sent).draws] == [(2, 40.0)]
    assert line_1(permits, sent.permit_id).drawn_quantity == 40.0


def test_an_amendment_that_no_longer_cites_the_permit_gives_its_draw_back(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    sent = registered(permits)
    v1 = citing(sent.permit_id, 100)
    score(stub, v1)
    v2 = declaration_pb(declaration_id=v1.declaration_id, version=2, items=(item(quantity=100),))
    score(stub, v2)
    assert line_1(permits, sent.permit_id).drawn_quantity == 0.0
    assert list(report(permits, sent).draws) == []


def test_a_refused_amendment_draws_nothing_and_releases_the_earlier_draw(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    sent = registered(permits, lines=[goods_line_pb(1, "8471", quantity=100.0)])
    v1 = citing(sent.permit_id, 60)
    score(stub, v1)
    v2 = citing(sent.permit_id, 160, declaration_id=v1.declaration_id, version=2)
    assessment = score(stub, v2)
    hit = permit_hits(assessment)["PERMIT_BALANCE_EXCEEDED"]
    assert "160 NAR requested" in hit.message and "100 NAR remain" in hit.message
    assert assessment.channel == assessment_pb2.CHANNEL_RED
    # All or nothing per version: version 2 draws nothing, and version 1's draw is no longer current.
    assert line_1(permits, sent.permit_id).drawn_quantity == 0.0


# -- cancellation --------------------------------------------------------------------------------


def test_cancellation_returns_the_draw_and_a_retry_returns_the_same_result(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    sent = registered(permits, lines=[goods_line_pb(1, "8471", quantity=300.0)])
    declaration = citing(sent.permit_id, 250)
    score(stub, declaration)
    assert line_1(permits, sent.permit_id).remaining_quantity == 50.0
    # Until it is cancelled, the next filing cannot have what the first one drew.
    assert "PERMIT_BALANCE_EXCEEDED" in permit_hits(score(stub, citing(sent.permit_id, 100)))

    request_id = unique("CNL")
    cancelled = cancel(stub, declaration.declaration_id, request_id=request_id)
    assert cancelled.declaration_id == declaration.declaration_id
    assert [(d.permit_id, d.declaration_id, d.quantity, d.line_number, d.item_number) for d in cancelled.released] == [
        (sent.permit_id, declaration.declaration_id, 250.0, 1, 1)
    ]
    assert cancelled.cancel_time.seconds > 0
    balance = line_1(permits, sent.permit_id)
    assert (balance.drawn_quantity, balance.remaining_quantity) == (0.0, 300.0)
    assert list(report(permits, sent).draws) == []

    assert cancel(stub, declaration.declaration_id, request_id=request_id) == cancelled
    assert cancel(stub, declaration.declaration_id) == cancelled, "a second cancellation returns the first"
    assert line_1(permits, sent.permit_id).remaining_quantity == 300.0, "nothing is given back twice"
    assert permit_hits(score(stub, citing(sent.permit_id, 250))) == {}
    assert line_1(permits, sent.permit_id).drawn_quantity == 250.0


def test_a_cancelled_declaration_draws_nothing_again(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    sent = registered(permits)
    v1 = citing(sent.permit_id, 100)
    score(stub, v1)
    cancel(stub, v1.declaration_id)
    refiled = score(stub, citing(sent.permit_id, 100, declaration_id=v1.declaration_id, version=2))
    assert line_1(permits, sent.permit_id).drawn_quantity == 0.0
    (hit,) = [h for h in refiled.rule_hits if h.rule_id == "PERMIT_DECLARATION_CANCELLED"]
    assert f"Declaration {v1.declaration_id} was cancelled" in hit.message
    assert refiled.channel >= assessment_pb2.CHANNEL_YELLOW


def test_cancellation_frees_a_single_use_permit(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    sent = registered(permits, single_use=True)
    first = citing(sent.permit_id, 10)
    score(stub, first)
    assert "PERMIT_ALREADY_USED" in permit_hits(score(stub, citing(sent.permit_id, 10)))
    cancel(stub, first.declaration_id)
    assert permit_hits(score(stub, citing(sent.permit_id, 10))) == {}


def test_a_declaration_that_drew_nothing_can_be_cancelled(stub: pb_grpc.RiskScoringServiceStub) -> None:
    declaration = declaration_pb()
    score(stub, declaration)
    cancelled = cancel(stub, declaration.declaration_id)
    assert cancelled.declaration_id == declaration.declaration_id and list(cancelled.released) == []


def test_cancelling_an_unknown_declaration_is_not_found(stub: pb_grpc.RiskScoringServiceStub) -> None:
    declaration_id = unique("DEC-NONE")
    with pytest.raises(grpc.RpcError) as info:
        cancel(stub, declaration_id)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND, info.value.details()
    assert declaration_id in (info.value.details() or "")


def test_a_cancellation_without_actor_or_request_id_is_invalid(stub: pb_grpc.RiskScoringServiceStub) -> None:
    err = failure(stub.CancelDeclaration, pb.CancelDeclarationRequest(declaration_id="DEC-1"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {"request_id", "actor"} <= set(field_violations(err))


# -- bulk import ---------------------------------------------------------------------------------


def rows(
    permits_: Sequence[permit_pb2.Permit], *, strict: bool = False, first_line: int = 2
) -> list[ppb.ImportPermitsRequest]:
    """One request per permit, numbered like lines of a CSV file after its header."""
    return [
        ppb.ImportPermitsRequest(
            line_number=first_line + i, request_id=unique("ROW"), actor=ACTOR, permit=p, strict=strict
        )
        for i, p in enumerate(permits_)
    ]


def import_rows(permits: ppb_grpc.PermitServiceStub, requests: Sequence[ppb.ImportPermitsRequest]):  # type: ignore[no-untyped-def]
    return permits.ImportPermits(iter(requests), timeout=TIMEOUT)


def row_violations(status: object) -> dict[str, str]:
    out: dict[str, str] = {}
    for detail in status.details:  # type: ignore[attr-defined]
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out.update({v.field: v.description for v in bad.field_violations})
    return out


def malformed() -> permit_pb2.Permit:
    spoilt = permit_pb()
    spoilt.goods_lines[0].unit = "BARREL"
    return spoilt


def test_an_import_stores_good_rows_and_reports_bad_ones_by_line(permits: ppb_grpc.PermitServiceStub) -> None:
    agency = unique("AGY")
    good = [permit_pb(agency=agency) for _ in range(4)]
    reversed_validity = permit_pb(agency=agency)
    reversed_validity.valid_to_time.CopyFrom(reversed_validity.valid_from_time)
    bad_unit = malformed()
    bad_unit.issuing_agency = agency
    feed = rows([good[0], bad_unit, good[1], good[2], reversed_validity, good[3]])
    response = import_rows(permits, feed)
    assert response.applied and (response.created, response.amended, response.unchanged) == (4, 0, 0)
    assert [e.line_number for e in response.errors] == [3, 6]
    for error in response.errors:
        assert error.status.code == code_pb2.INVALID_ARGUMENT
    assert "permit.goods_lines[0].unit" in row_violations(response.errors[0].status)
    assert "permit.valid_to_time" in row_violations(response.errors[1].status)
    assert [u.permit.permit.permit_id for u in usage(permits, agency)] == sorted(p.permit_id for p in good)
    for skipped in (bad_unit, reversed_validity):
        missing = failure(permits.GetPermit, ppb.GetPermitRequest(permit_id=skipped.permit_id))
        assert missing.code() == grpc.StatusCode.NOT_FOUND
    change = permits.GetPermitHistory(ppb.GetPermitHistoryRequest(permit_id=good[0].permit_id), timeout=TIMEOUT)
    assert [(c.action, c.actor) for c in change.changes] == [(permit_pb2.PERMIT_ACTION_SUBMIT, ACTOR)]


def test_a_strict_import_with_one_bad_row_stores_nothing(permits: ppb_grpc.PermitServiceStub) -> None:
    agency = unique("AGY")
    good = [permit_pb(agency=agency) for _ in range(3)]
    bad = malformed()
    response = import_rows(permits, rows([*good, bad], strict=True))
    assert not response.applied
    assert (response.created, response.amended, response.unchanged) == (0, 0, 0)
    assert [e.line_number for e in response.errors] == [5]
    assert response.errors[0].status.code == code_pb2.INVALID_ARGUMENT
    assert usage(permits, agency) == []
    for p in good:
        assert (
            failure(permits.GetPermit, ppb.GetPermitRequest(permit_id=p.permit_id)).code() == grpc.StatusCode.NOT_FOUND
        )
    # Fixed, the same feed goes in whole.
    fixed = import_rows(permits, rows(good, strict=True))
    assert fixed.applied and fixed.created == 3 and not fixed.errors


def test_a_strict_import_refused_by_the_registry_stores_nothing(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    drawn = registered(permits)
    score(stub, citing(drawn.permit_id, 500))
    cut = permit_pb2.Permit()
    cut.CopyFrom(drawn)
    cut.goods_lines[0].authorised_quantity = 100.0  # below the 500 drawn
    fresh = permit_pb(agency=drawn.issuing_agency)
    response = import_rows(permits, rows([fresh, cut], strict=True))
    assert not response.applied and [e.line_number for e in response.errors] == [3]
    assert response.errors[0].status.code == code_pb2.FAILED_PRECONDITION
    assert (
        failure(permits.GetPermit, ppb.GetPermitRequest(permit_id=fresh.permit_id)).code() == grpc.StatusCode.NOT_FOUND
    )
    # Without strict, the good row goes in and the refused one is reported.
    response = import_rows(permits, rows([fresh, cut]))
    assert response.applied and response.created == 1 and [e.line_number for e in response.errors] == [3]
    assert line_1(permits, drawn.permit_id).authorised_quantity == 1000.0


def test_reimporting_the_same_rows_leaves_them_unchanged_and_changed_rows_are_amended(
    permits: ppb_grpc.PermitServiceStub,
) -> None:
    agency = unique("AGY")
    feed = [permit_pb(agency=agency) for _ in range(3)]
    first = rows(feed)
    assert import_rows(permits, first).created == 3
    # The very same requests (a retried upload) and the same content under new request ids are both no-ops.
    for again in (first, rows(feed)):
        response = import_rows(permits, again)
        assert response.applied and (response.created, response.amended, response.unchanged) == (0, 0, 3)
        assert not response.errors
    feed[1].goods_lines[0].authorised_quantity = 5000.0
    response = import_rows(permits, rows(feed))
    assert (response.created, response.amended, response.unchanged) == (0, 1, 2)
    assert [
        c.permit.version
        for c in permits.GetPermitHistory(
            ppb.GetPermitHistoryRequest(permit_id=feed[1].permit_id), timeout=TIMEOUT
        ).changes
    ] == [1, 2]
    assert get_permit(permits, feed[0].permit_id).permit.version == 1


def test_an_imported_permit_is_checked_at_once(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub
) -> None:
    sent = permit_pb(agency=unique("AGY"), lines=[goods_line_pb(1, "8471", quantity=50.0)])
    assert "PERMIT_UNKNOWN" in permit_hits(score(stub, citing(sent.permit_id, 10)))
    import_rows(permits, rows([sent]))
    assert permit_hits(score(stub, citing(sent.permit_id, 10))) == {}
    assert "PERMIT_BALANCE_EXCEEDED" in permit_hits(score(stub, citing(sent.permit_id, 45)))


# -- the concurrency proof -----------------------------------------------------------------------


@dataclass
class Outcomes:
    """What concurrent clients got back: one assessment per declaration sent, and any failed call."""

    all: list[assessment_pb2.Assessment] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, assessments: Sequence[assessment_pb2.Assessment]) -> None:
        with self.lock:
            self.all.extend(assessments)

    def by_declaration(self) -> dict[str, assessment_pb2.Assessment]:
        return {a.declaration_id: a for a in self.all}


Task = tuple[str, list[declaration_pb2.Declaration]]  # (RPC shape, declarations)


def run_concurrently(tasks: Sequence[Task], addresses: Sequence[str], *, workers: int) -> Outcomes:
    """Runs the tasks from `workers` threads, each with its own channel to one of the servers, all released at once."""
    outcomes = Outcomes()
    start = threading.Barrier(workers)

    def work(index: int) -> None:
        mine = tasks[index::workers]
        with grpc.insecure_channel(addresses[index % len(addresses)]) as ch:
            stub = pb_grpc.RiskScoringServiceStub(ch)
            grpc.channel_ready_future(ch).result(timeout=TIMEOUT)
            start.wait(timeout=TIMEOUT)
            for shape, declarations in mine:
                try:
                    outcomes.add(send(stub, shape, declarations))
                except grpc.RpcError as err:
                    with outcomes.lock:
                        outcomes.errors.append(f"{shape}: {err.code().name} {err.details()}")

    threads = [threading.Thread(target=work, args=(i,), name=f"client-{i}") for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a client hung"
    return outcomes


def send(
    stub: pb_grpc.RiskScoringServiceStub, shape: str, declarations: list[declaration_pb2.Declaration]
) -> list[assessment_pb2.Assessment]:
    if shape == "unary":
        return [score(stub, d) for d in declarations]
    if shape == "batch":
        request = pb.ScoreDeclarationsRequest(declarations=declarations)
        return list(stub.ScoreDeclarations(request, timeout=TIMEOUT).assessments)
    responses = stub.StreamScoreDeclarations(
        iter([pb.StreamScoreDeclarationsRequest(declaration=d) for d in declarations]), timeout=TIMEOUT
    )
    out = []
    for response in responses:
        assert response.WhichOneof("result") == "assessment", response.error
        out.append(response.assessment)
    return out


AUTHORISED, EACH, DECLARATIONS, CLIENTS = 100.0, 7.0, 60, 12


@pytest.mark.parametrize("repeat", range(3))
def test_concurrent_declarations_never_overdraw_a_permit(
    permits: ppb_grpc.PermitServiceStub, server: ServerThread, twin: ServerThread, repeat: int
) -> None:
    """60 filings each drawing 7 of 100 units, from 12 clients on two servers sharing the database, all at once.

    Half go one by one, a quarter in batches and a quarter in streams, so every RPC shape races every
    other; the two servers each have their own store writer, so their ledger transactions race in the
    database itself (PostgreSQL row locks, SQLite's write lock), not only within one process.
    """
    sent = registered(permits, lines=[goods_line_pb(1, "8471", quantity=AUTHORISED)])
    declarations = [citing(sent.permit_id, EACH) for _ in range(DECLARATIONS)]
    tasks: list[Task] = [("unary", [d]) for d in declarations[:30]]
    tasks += [("batch", declarations[i : i + 5]) for i in range(30, 45, 5)]
    tasks += [("stream", declarations[i : i + 5]) for i in range(45, 60, 5)]
    random.Random(repeat).shuffle(tasks)

    began = time.perf_counter()
    outcomes = run_concurrently(tasks, [server.address, twin.address], workers=CLIENTS)
    elapsed = time.perf_counter() - began
    assert not outcomes.errors, outcomes.errors
    assessed = outcomes.by_declaration()
    assert set(assessed) == {d.declaration_id for d in declarations}

    used = report(permits, sent)
    balance = used.permit.balances[0]
    granted = {d.declaration_id for d in used.draws}
    assert len(granted) == len(used.draws), "one draw per granted declaration"
    assert all(d.quantity == EACH and d.declaration_version == 1 for d in used.draws)
    assert balance.drawn_quantity == sum(d.quantity for d in used.draws) == EACH * len(granted)
    assert balance.drawn_quantity <= AUTHORISED and balance.remaining_quantity >= 0
    assert balance.remaining_quantity == AUTHORISED - balance.drawn_quantity
    # Refusals only happen once less than one draw remains, so exactly floor(100 / 7) are granted.
    assert len(granted) == AUTHORISED // EACH
    for declaration_id, assessment in assessed.items():
        hits = permit_hits(assessment)
        if declaration_id in granted:
            assert hits == {}, (declaration_id, [h.message for h in hits.values()])
        else:
            assert list(hits) == ["PERMIT_BALANCE_EXCEEDED"], (declaration_id, [h.message for h in hits.values()])
            assert assessment.channel == assessment_pb2.CHANNEL_RED
            assert "7 NAR requested" in hits["PERMIT_BALANCE_EXCEEDED"].message
    # What the clients were told is what was stored, and retrying all of them draws nothing more.
    with twin.channel() as ch:
        retried = pb_grpc.RiskScoringServiceStub(ch).ScoreDeclarations(
            pb.ScoreDeclarationsRequest(declarations=declarations), timeout=TIMEOUT
        )
    assert list(retried.assessments) == [assessed[d.declaration_id] for d in declarations]
    assert get_permit(permits, sent.permit_id).balances[0] == balance
    print(f"\n{len(declarations)} declarations from {CLIENTS} clients on 2 servers in {elapsed:.2f}s")


# -- the permit cache under load ------------------------------------------------------------------


def test_a_permit_first_cited_while_draws_settle_is_not_taken_for_unknown(
    permits: ppb_grpc.PermitServiceStub, stub: pb_grpc.RiskScoringServiceStub, server: ServerThread
) -> None:
    """A permit load overtaken by a ledger commit still answers the call that asked for it.

    Before 49ffb2d the cache threw such a load away, so more than half of these filings were flagged
    PERMIT_UNKNOWN and drew nothing while other draws committed.
    """
    busy = registered(permits, lines=[goods_line_pb(1, "8471", quantity=1e9)])
    fresh = [registered(permits) for _ in range(20)]
    stop = threading.Event()

    def draw_from_busy() -> None:
        # Draws from another permit commit all the time, as on any busy server.
        with server.channel() as ch:
            background = pb_grpc.RiskScoringServiceStub(ch)
            while not stop.is_set():
                batch = [citing(busy.permit_id, 1) for _ in range(20)]
                background.ScoreDeclarations(pb.ScoreDeclarationsRequest(declarations=batch), timeout=TIMEOUT)

    threads = [threading.Thread(target=draw_from_busy) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        flagged = {p.permit_id: sorted(permit_hits(score(stub, citing(p.permit_id, 10)))) for p in fresh}
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert {pid: hits for pid, hits in flagged.items() if hits} == {}
    assert [line_1(permits, p.permit_id).drawn_quantity for p in fresh] == [10.0] * len(fresh)
