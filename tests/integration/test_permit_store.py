"""The permit store on SQLite and PostgreSQL: changes with history, idempotent retries, atomic batches, listings."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from risk_service.domain.assessment import Assessment, Channel, ModelStatus
from risk_service.domain.errors import FailedPrecondition, NotFound, PermitExists, RequestIdConflict
from risk_service.domain.permits.model import (
    Permit,
    PermitAction,
    PermitChange,
    PermitGoodsLine,
    PermitState,
    PermitStatus,
    PermitType,
)
from risk_service.domain.ports import ChangeOutcome, PermitChangeRequest, PermitFilter, PermitTransition
from risk_service.store import codec, migrations
from risk_service.store.permit_store import SqlPermitStore
from risk_service.store.tables import permit_changes, permit_lines
from tests import builders

VALID_FROM = datetime(2026, 1, 1, tzinfo=UTC)
VALID_TO = datetime(2027, 1, 1, 9, 0, 0, 123456, tzinfo=timezone(timedelta(hours=9)))
_request_ids = itertools.count(1)


def goods_line(
    number: int = 1,
    hs_prefix: str = "8471",
    *,
    unit: str = "KGM",
    quantity: float | None = 100.0,
    value: float | None = None,
) -> PermitGoodsLine:
    return PermitGoodsLine(number, hs_prefix, f"line {number}", unit, quantity, value)


def make_permit(
    permit_id: str = "P-1",
    *lines: PermitGoodsLine,
    agency: str = "NFQS",
    holder: str = "IMP-0001",
    single_use: bool = False,
    **overrides: Any,
) -> Permit:
    base = Permit(
        permit_id=permit_id,
        issuing_agency=agency,
        type=PermitType.IMPORT_LICENCE,
        holder_id=holder,
        goods_lines=lines or (goods_line(),),
        valid_from=VALID_FROM,
        valid_to=VALID_TO,
        allowed_origin_countries=("CN", "VN"),
        allowed_customs_offices=("020",),
        end_use="resale",
        single_use=single_use,
    )
    return dataclasses.replace(base, **overrides)


def put(permit: Permit) -> PermitTransition:
    """Stands in for the registry's transitions: a new permit becomes version 1, a known one the next version."""

    def transition(current: PermitState | None) -> Permit:
        version = 1 if current is None else current.permit.version + 1
        status = PermitStatus.ACTIVE if current is None else current.permit.status
        return dataclasses.replace(permit, version=version, status=status)

    return transition


def to_status(status: PermitStatus) -> PermitTransition:
    def transition(current: PermitState | None) -> Permit:
        if current is None:
            raise NotFound("no such permit")
        if current.permit.status == PermitStatus.REVOKED:
            raise FailedPrecondition("revoked is final")
        return dataclasses.replace(current.permit, status=status, version=current.permit.version + 1)

    return transition


def refuse(current: PermitState | None) -> Permit:
    raise FailedPrecondition("refused by the transition")


def change(
    permit_id: str,
    transition: PermitTransition,
    *,
    action: PermitAction = PermitAction.SUBMIT,
    request_id: str | None = None,
    content: str = "",
    actor: str = "officer-7",
    reason: str = "",
) -> PermitChangeRequest:
    request_id = request_id or f"REQ-{next(_request_ids):06d}"
    content_hash = hashlib.sha256(f"{permit_id}|{action}|{content or request_id}".encode()).hexdigest()
    return PermitChangeRequest(request_id, permit_id, action, actor, reason, content_hash, transition)


def submit(store: SqlPermitStore, permit: Permit) -> ChangeOutcome:
    (outcome,) = store.apply([change(permit.permit_id, put(permit))], atomic=True)
    assert outcome.error is None and outcome.change is not None, outcome
    return outcome


@pytest.fixture
def store(database_url: str) -> Iterator[SqlPermitStore]:
    migrations.upgrade(database_url)
    with SqlPermitStore(database_url) as s:
        yield s


def _count(url: str, table: sa.Table) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
    finally:
        engine.dispose()


def test_submitted_permit_reads_back_exactly(store: SqlPermitStore) -> None:
    permit = make_permit(
        "P-1",
        goods_line(1, "0201", quantity=0.1 + 0.2),
        goods_line(2, "020230", unit="", quantity=None, value=5_000_000.5),
        goods_line(3, "02", quantity=None, value=None),
    )

    outcome = submit(store, permit)

    assert outcome.created and outcome.change is not None
    assert outcome.change.permit == dataclasses.replace(permit, version=1)
    assert outcome.change.change_time.tzinfo is not None
    state = store.get_many(["P-1", "P-NONE"])
    assert list(state) == ["P-1"]
    assert state["P-1"] == PermitState(dataclasses.replace(permit, version=1), {})
    stored = state["P-1"].permit
    assert stored.valid_to == VALID_TO and stored.valid_to is not None and stored.valid_to.tzinfo is not None
    assert stored.goods_lines[1].authorised_quantity is None and stored.goods_lines[2].authorised_value is None
    assert stored.goods_lines[0].authorised_quantity == 0.1 + 0.2
    (kept,) = store.history("P-1")
    assert kept == outcome.change


def test_every_change_is_kept_in_history_oldest_first(store: SqlPermitStore) -> None:
    permit = make_permit("P-1")
    submit(store, permit)
    amended = make_permit("P-1", goods_line(1, quantity=250.0), end_use="manufacture")
    steps = [
        (PermitAction.AMEND, put(amended), "tighten"),
        (PermitAction.SUSPEND, to_status(PermitStatus.SUSPENDED), "audit"),
        (PermitAction.REINSTATE, to_status(PermitStatus.ACTIVE), "audit passed"),
        (PermitAction.REVOKE, to_status(PermitStatus.REVOKED), "fraud"),
    ]
    for action, transition, reason in steps:
        (outcome,) = store.apply([change("P-1", transition, action=action, reason=reason)])
        assert outcome.error is None and outcome.created

    history = store.history("P-1")

    assert [(c.action, c.permit.version, c.permit.status) for c in history] == [
        (PermitAction.SUBMIT, 1, PermitStatus.ACTIVE),
        (PermitAction.AMEND, 2, PermitStatus.ACTIVE),
        (PermitAction.SUSPEND, 3, PermitStatus.SUSPENDED),
        (PermitAction.REINSTATE, 4, PermitStatus.ACTIVE),
        (PermitAction.REVOKE, 5, PermitStatus.REVOKED),
    ]
    assert [c.reason for c in history[1:]] == ["tighten", "audit", "audit passed", "fraud"]
    assert all(c.actor == "officer-7" for c in history)
    assert history[1].permit.goods_lines[0].authorised_quantity == 250.0
    assert [c.change_time for c in history] == sorted(c.change_time for c in history)
    assert store.get_many(["P-1"])["P-1"].permit == history[-1].permit
    assert store.history("P-NONE") == []


def test_retry_with_the_same_request_id_returns_the_stored_change(store: SqlPermitStore, database_url: str) -> None:
    request = change("P-1", put(make_permit("P-1")), request_id="REQ-A", content="submit P-1")
    (first,) = store.apply([request])
    # A retry carries the same id and content; its transition would now refuse (the permit exists).
    retry = change("P-1", refuse, request_id="REQ-A", content="submit P-1")

    (again,) = store.apply([retry])
    (atomic_again,) = store.apply([retry], atomic=True)

    assert first.created and first.change is not None
    assert again == ChangeOutcome(first.change, None, created=False)
    assert atomic_again == ChangeOutcome(first.change, None, created=False)
    assert len(store.history("P-1")) == 1
    assert _count(database_url, permit_changes) == 1


def test_reused_request_id_with_other_content_is_a_conflict(store: SqlPermitStore) -> None:
    store.apply([change("P-1", put(make_permit("P-1")), request_id="REQ-A", content="submit P-1")])

    (outcome,) = store.apply([change("P-2", put(make_permit("P-2")), request_id="REQ-A", content="submit P-2")])

    assert outcome.change is None and isinstance(outcome.error, RequestIdConflict)
    assert outcome.error.metadata == {"request_id": "REQ-A"}
    assert store.get_many(["P-2"]) == {}


def test_refused_change_leaves_the_rest_of_a_batch_applied(store: SqlPermitStore) -> None:
    submit(store, make_permit("P-0"))
    requests = [
        change("P-1", put(make_permit("P-1"))),
        change("P-0", refuse, action=PermitAction.AMEND),
        change("P-2", put(make_permit("P-2"))),
    ]

    outcomes = store.apply(requests)

    assert [o.created for o in outcomes] == [True, False, True]
    assert isinstance(outcomes[1].error, FailedPrecondition) and outcomes[1].change is None
    assert set(store.get_many(["P-0", "P-1", "P-2"])) == {"P-0", "P-1", "P-2"}
    assert store.get_many(["P-0"])["P-0"].permit.version == 1


def test_atomic_batch_with_one_refusal_writes_nothing(store: SqlPermitStore, database_url: str) -> None:
    submit(store, make_permit("P-0"))
    before = _count(database_url, permit_changes)
    requests = [
        change("P-1", put(make_permit("P-1"))),
        change("P-0", put(make_permit("P-0", goods_line(1, quantity=5.0))), action=PermitAction.AMEND),
        change("P-0", refuse, action=PermitAction.SUSPEND),
        change("P-2", put(make_permit("P-2"))),
    ]

    outcomes = store.apply(requests, atomic=True)

    assert outcomes[0] == outcomes[1] == outcomes[3] == ChangeOutcome(None, None)
    assert isinstance(outcomes[2].error, FailedPrecondition)
    assert store.get_many(["P-1", "P-2"]) == {}
    assert store.get_many(["P-0"])["P-0"].permit.version == 1
    assert _count(database_url, permit_changes) == before


def test_a_later_request_in_the_batch_sees_the_earlier_ones(store: SqlPermitStore) -> None:
    seen: list[PermitState | None] = []

    def amend_seeing(current: PermitState | None) -> Permit:
        seen.append(current)
        return put(make_permit("P-1", goods_line(1, "8471", quantity=10.0), goods_line(2, "8504")))(current)

    outcomes = store.apply(
        [
            change("P-1", put(make_permit("P-1"))),
            change("P-1", amend_seeing, action=PermitAction.AMEND),
            change("P-1", to_status(PermitStatus.SUSPENDED), action=PermitAction.SUSPEND),
        ]
    )

    assert [o.change.permit.version for o in outcomes if o.change is not None] == [1, 2, 3]
    assert seen[0] is not None and seen[0].permit.version == 1
    state = store.get_many(["P-1"])["P-1"]
    assert state.permit.version == 3 and state.permit.status == PermitStatus.SUSPENDED
    assert [line.line_number for line in state.permit.goods_lines] == [1, 2]
    assert [c.permit.version for c in store.history("P-1")] == [1, 2, 3]


def test_submitting_an_existing_permit_is_refused_by_its_transition(store: SqlPermitStore) -> None:
    submit(store, make_permit("P-1"))

    def submit_new(current: PermitState | None) -> Permit:
        if current is not None:
            raise PermitExists("already registered")
        return make_permit("P-1")

    (outcome,) = store.apply([change("P-1", submit_new)])

    assert isinstance(outcome.error, PermitExists)


def test_amendment_rewrites_the_goods_lines(store: SqlPermitStore, database_url: str) -> None:
    submit(store, make_permit("P-1", goods_line(1, "0201"), goods_line(2, "0202"), goods_line(3, "0203")))
    amended = make_permit(
        "P-1", goods_line(1, "020110", quantity=50.0, value=9.5), goods_line(3, "0203"), goods_line(4, "0204")
    )

    (outcome,) = store.apply([change("P-1", put(amended), action=PermitAction.AMEND)])

    assert outcome.error is None
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    permit_lines.c.line_number,
                    permit_lines.c.hs_prefix,
                    permit_lines.c.authorised_quantity,
                    permit_lines.c.authorised_value,
                ).order_by(permit_lines.c.line_number)
            ).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [(1, "020110", 50.0, 9.5), (3, "0203", 100.0, None), (4, "0204", 100.0, None)]
    assert store.find(PermitFilter(hs_code="0202990000"), after="", limit=10) == []
    assert [s.permit.permit_id for s in store.find(PermitFilter(hs_code="0204100000"), after="", limit=10)] == ["P-1"]


def test_find_filters_and_pages_in_permit_id_order(store: SqlPermitStore) -> None:
    for n in range(1, 8):
        submit(
            store,
            make_permit(f"P-{n}", agency="NFQS" if n % 2 else "MFDS", holder="IMP-A" if n <= 4 else "IMP-B"),
        )
    store.apply([change("P-3", to_status(PermitStatus.SUSPENDED), action=PermitAction.SUSPEND)])

    def ids(where: PermitFilter, after: str = "", limit: int = 100) -> list[str]:
        return [s.permit.permit_id for s in store.find(where, after=after, limit=limit)]

    assert ids(PermitFilter()) == [f"P-{n}" for n in range(1, 8)]
    assert ids(PermitFilter(holder_id="IMP-A")) == ["P-1", "P-2", "P-3", "P-4"]
    assert ids(PermitFilter(issuing_agency="NFQS")) == ["P-1", "P-3", "P-5", "P-7"]
    assert ids(PermitFilter(issuing_agency="NFQS", holder_id="IMP-B")) == ["P-5", "P-7"]
    assert ids(PermitFilter(status=PermitStatus.SUSPENDED)) == ["P-3"]
    assert ids(PermitFilter(status=PermitStatus.ACTIVE, holder_id="IMP-A")) == ["P-1", "P-2", "P-4"]
    # Keyset paging: each page starts after the last id of the one before.
    pages: list[list[str]] = []
    after = ""
    while True:
        page = ids(PermitFilter(), after=after, limit=3)
        if not page:
            break
        pages.append(page)
        after = page[-1]
    assert pages == [["P-1", "P-2", "P-3"], ["P-4", "P-5", "P-6"], ["P-7"]]
    assert ids(PermitFilter(), limit=0) == []


def test_find_by_hs_code_matches_every_covering_prefix_with_an_index_lookup(store: SqlPermitStore) -> None:
    submit(store, make_permit("P-CH84", goods_line(1, "84")))
    submit(store, make_permit("P-8471", goods_line(1, "0101"), goods_line(2, "8471")))
    submit(store, make_permit("P-847130", goods_line(1, "847130")))
    submit(store, make_permit("P-8472", goods_line(1, "8472")))
    submit(store, make_permit("P-TWO-LINES", goods_line(1, "847130"), goods_line(2, "8471300000")))
    statements: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa.event.listen(sa.Engine, "before_cursor_execute", capture)
    try:
        found = store.find(PermitFilter(hs_code="8471300000"), after="", limit=10)
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", capture)

    assert [s.permit.permit_id for s in found] == ["P-8471", "P-847130", "P-CH84", "P-TWO-LINES"]
    assert [s.permit.permit_id for s in store.find(PermitFilter(hs_code="8472"), after="", limit=10)] == [
        "P-8472",
        "P-CH84",
    ]
    assert store.find(PermitFilter(hs_code="9999"), after="", limit=10) == []
    assert statements and not any("LIKE" in s.upper() for s in statements)
    assert any("hs_prefix IN" in s for s in statements)


def test_chunks_of_a_large_batch_each_see_the_earlier_chunks(database_url: str) -> None:
    migrations.upgrade(database_url)
    with SqlPermitStore(database_url, chunk_size=2) as store:
        requests = [change(f"P-{n}", put(make_permit(f"P-{n}"))) for n in range(5)]
        requests.insert(3, change("P-0", to_status(PermitStatus.SUSPENDED), action=PermitAction.SUSPEND))
        requests.append(change("P-4", refuse, action=PermitAction.AMEND))

        outcomes = store.apply(requests)

        assert [o.created for o in outcomes] == [True] * 6 + [False]
        assert isinstance(outcomes[-1].error, FailedPrecondition)
        states = store.get_many([f"P-{n}" for n in range(5)])
        assert len(states) == 5 and states["P-0"].permit.status == PermitStatus.SUSPENDED


def test_a_database_error_fails_only_its_own_request_and_the_ones_after_it(
    store: SqlPermitStore, database_url: str
) -> None:
    twice = make_permit("P-BAD", goods_line(1), goods_line(1, "8504"))  # line 1 twice: the primary key says no
    requests = [
        change("P-1", put(make_permit("P-1"))),
        change("P-BAD", put(twice)),
        change("P-2", put(make_permit("P-2"))),
    ]

    with pytest.raises(sa.exc.IntegrityError):
        store.apply(requests)

    # Retried alone, the first request was committed before the poison one failed.
    assert set(store.get_many(["P-1", "P-BAD", "P-2"])) == {"P-1"}
    outcomes = store.apply([requests[0], requests[2]])
    assert [o.created for o in outcomes] == [False, True]  # the retry finds the first stored


def test_changes_since_lists_changes_in_number_order(store: SqlPermitStore) -> None:
    assert store.last_change_seq() == 0
    assert store.changes_since(0) == []
    submit(store, make_permit("P-1"))
    submit(store, make_permit("P-2"))
    mark = store.last_change_seq()
    store.apply([change("P-1", to_status(PermitStatus.SUSPENDED), action=PermitAction.SUSPEND)])

    assert [pid for _, pid in store.changes_since(0)] == ["P-1", "P-2", "P-1"]
    later = store.changes_since(mark)
    assert [pid for _, pid in later] == ["P-1"] and later[0][0] > mark
    assert store.last_change_seq() == later[0][0]
    assert store.ping()


def test_codec_round_trips_permits_and_changes_and_reads_old_assessments() -> None:
    permit = make_permit(
        "P-1",
        goods_line(1, quantity=None, value=None),
        goods_line(2, quantity=1e-300, value=float("inf")),
        valid_from=None,
        status=PermitStatus.SUSPENDED,
        version=7,
    )
    kept = PermitChange("REQ-1", PermitAction.SUSPEND, "officer", "audit", VALID_TO, permit)

    assert codec.permit_from_dict(codec.permit_to_dict(permit)) == permit
    assert codec.permit_change_from_dict(codec.permit_change_to_dict(kept)) == kept
    assert codec.permit_change_from_dict(codec.permit_change_to_dict(kept)).change_time.tzinfo is not None
    declaration = builders.declaration()
    assessment = Assessment(
        "A-1", declaration.declaration_id, 1, Channel.GREEN, 0.1, None, (), (), False,
        ModelStatus.UNAVAILABLE, "", "", "rules-1", VALID_FROM, controlled_goods_version="cg-7",
    )  # fmt: skip
    document = codec.assessment_to_dict(assessment)
    assert codec.assessment_from_dict(document) == assessment
    del document["controlled_goods_version"]  # as stored before permits were checked
    assert codec.assessment_from_dict(document).controlled_goods_version == ""
