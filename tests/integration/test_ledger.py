"""The permit ledger on SQLite and PostgreSQL: draws settle with their assessment, under lock, never twice or over."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from risk_service.domain.assessment import Assessment, Channel, RuleHit
from risk_service.domain.errors import FailedPrecondition, NotFound
from risk_service.domain.permits.ledger import DrawRecord, DrawRefusal, LedgerClaim, PermitDraw, RefusalKind
from risk_service.domain.permits.model import LineBalance, Permit, PermitAction, PermitState, PermitStatus
from risk_service.domain.ports import AssessmentRecord, SaveResult
from risk_service.store import SqlAssessmentStore, codec, migrations
from risk_service.store.permit_store import SqlPermitStore
from risk_service.store.tables import assessments, permit_draws, permit_lines, permit_uses
from tests import builders
from tests.integration.test_permit_store import change, goods_line, make_permit, put, submit, to_status

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
CANCELLED_AT = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
log = logging.getLogger(__name__)
_RULE = {
    RefusalKind.BALANCE: "PERMIT_BALANCE_EXCEEDED",
    RefusalKind.ALREADY_USED: "PERMIT_ALREADY_USED",
    RefusalKind.NOT_USABLE: "PERMIT_SUSPENDED",
    RefusalKind.DECLARATION_CANCELLED: "PERMIT_DECLARATION_CANCELLED",
}


class Flagger:
    """A settle function as the screener provides one: a rule hit per refusal, channel at least RED."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, tuple[DrawRefusal, ...]]] = []
        self._lock = threading.Lock()

    def __call__(self, record: AssessmentRecord, refusals: Sequence[DrawRefusal]) -> Assessment:
        a = record.assessment
        with self._lock:
            self.calls.append((a.declaration_id, a.declaration_version, tuple(refusals)))
        hits = tuple(
            RuleHit(_RULE[r.kind], f"{r.kind.value} on {r.permit_id}", (), 0.4, Channel.RED, r.item_numbers)
            for r in refusals
        )
        return dataclasses.replace(a, channel=max(a.channel, Channel.RED), rule_hits=a.rule_hits + hits)


class BalanceLog:
    def __init__(self) -> None:
        self.updates: list[dict[tuple[str, int], LineBalance]] = []

    def __call__(self, totals: Mapping[tuple[str, int], LineBalance]) -> None:
        self.updates.append(dict(totals))


def draw(permit_id: str, quantity: float, *, line: int = 1, item: int = 1, value: float = 0.0) -> PermitDraw:
    return PermitDraw(permit_id, line, item, quantity, value)


def claim(*draws: PermitDraw, single_use: Sequence[str] = ()) -> LedgerClaim:
    return LedgerClaim(tuple(draws), tuple(single_use))


def record(declaration_id: str, version: int = 1, ledger_claim: LedgerClaim | None = None) -> AssessmentRecord:
    items = tuple(builders.item(item_number=n) for n in range(1, 4))
    declaration = builders.declaration(declaration_id=declaration_id, version=version, items=items)
    assessment = builders.assessment(
        assessment_id=str(uuid.uuid4()),
        declaration_id=declaration_id,
        declaration_version=version,
        assessment_time=T0,
        controlled_goods_version="cg-2026.11",
    )
    content = hashlib.sha256(repr((declaration_id, version, ledger_claim)).encode()).hexdigest()
    return AssessmentRecord(assessment, declaration, content, ledger_claim)


def flagged(a: Assessment) -> bool:
    return any(h.rule_id.startswith("PERMIT_") for h in a.rule_hits)


@dataclasses.dataclass
class Ledger:
    url: str
    permits: SqlPermitStore
    assessments: SqlAssessmentStore
    flagger: Flagger
    balances: BalanceLog

    def save(self, *records: AssessmentRecord) -> list[SaveResult]:
        return self.assessments.save_many(list(records)).result(timeout=30)

    def state(self, permit_id: str) -> PermitState:
        return self.permits.get_many([permit_id])[permit_id]

    def draws(self) -> list[tuple[Any, ...]]:
        t = permit_draws
        return [
            tuple(r)
            for r in self._query(
                sa.select(
                    t.c.declaration_id,
                    t.c.declaration_version,
                    t.c.permit_id,
                    t.c.line_number,
                    t.c.item_number,
                    t.c.quantity,
                ).order_by(t.c.declaration_id, t.c.permit_id, t.c.line_number, t.c.item_number)
            )
        ]

    def uses(self) -> list[tuple[Any, ...]]:
        t = permit_uses
        return [
            tuple(r)
            for r in self._query(
                sa.select(t.c.permit_id, t.c.declaration_id, t.c.declaration_version).order_by(t.c.permit_id)
            )
        ]

    def _query(self, query: sa.Select[Any]) -> list[sa.Row[Any]]:
        engine = sa.create_engine(self.url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(query))
        finally:
            engine.dispose()


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    migrations.upgrade(database_url)
    flagger, balances = Flagger(), BalanceLog()
    permits = SqlPermitStore(database_url, on_balances=balances)
    assessments = SqlAssessmentStore(database_url, settle=flagger, on_balances=balances)
    try:
        yield Ledger(database_url, permits, assessments, flagger, balances)
    finally:
        assessments.close()
        permits.close()


def test_draw_is_recorded_with_the_assessment(ledger: Ledger) -> None:
    submit(ledger.permits, make_permit("P-1", goods_line(1, quantity=100.0, value=1000.0)))
    r = record("D-1", 1, claim(draw("P-1", 30.0, value=250.0, item=1), draw("P-1", 5.0, value=10.0, item=2)))

    (result,) = ledger.save(r)

    assert result.created and result.assessment == r.assessment and not flagged(result.assessment)
    stored = ledger.assessments.get("D-1", 1)
    assert stored == r.assessment and stored.controlled_goods_version == "cg-2026.11"
    assert ledger.state("P-1").balances == {1: LineBalance(35.0, 260.0)}
    assert ledger.draws() == [("D-1", 1, "P-1", 1, 1, 30.0), ("D-1", 1, "P-1", 1, 2, 5.0)]
    assert ledger.balances.updates == [{("P-1", 1): LineBalance(35.0, 260.0)}]
    (usage,) = ledger.permits.usage("NFQS", after="", limit=10)
    assert usage.state == ledger.state("P-1")
    assert [(d.permit_id, d.declaration_id, d.item_number, d.quantity, d.value) for d in usage.draws] == [
        ("P-1", "D-1", 1, 30.0, 250.0),
        ("P-1", "D-1", 2, 5.0, 10.0),
    ]
    assert all(d.drawn_at.tzinfo is not None for d in usage.draws)


def test_draws_and_totals_keep_every_bit_of_their_numbers_and_time(ledger: Ledger) -> None:
    """The writer sends draw rows and line totals as text (JSON on PostgreSQL): nothing may be rounded."""
    submit(ledger.permits, make_permit("P-1", goods_line(1, quantity=1.0, value=1.0)))
    quantity, value = 0.1 + 0.2, 1 / 3  # 0.30000000000000004 and 0.3333333333333333
    before = datetime.now(UTC)

    ledger.save(record("D-1", 1, claim(draw("P-1", quantity, value=value), draw("P-1", 1e-7, item=2))))

    assert ledger.draws() == [("D-1", 1, "P-1", 1, 1, quantity), ("D-1", 1, "P-1", 1, 2, 1e-7)]
    assert ledger.state("P-1").balances == {1: LineBalance(quantity + 1e-7, value)}
    (usage,) = ledger.permits.usage("NFQS", after="", limit=10)
    assert all(before <= d.drawn_at <= datetime.now(UTC) for d in usage.draws)
    assert len({d.drawn_at for d in usage.draws}) == 1


def test_a_filing_without_a_claim_costs_the_ledger_nothing(ledger: Ledger) -> None:
    submit(ledger.permits, make_permit("P-1"))
    statements: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa.event.listen(sa.Engine, "before_cursor_execute", capture)
    try:
        results = ledger.save(record("D-1"), record("D-2", 1, LedgerClaim()))
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", capture)

    assert [r.created for r in results] == [True, True]
    assert any("INSERT INTO assessments" in s for s in statements)
    touched = ("permit", "pg_advisory", "declaration_cancellations")
    ledger_work = [s for s in statements if any(word in s for word in touched) and "audit_chain" not in s]
    assert not ledger_work  # the audit trail's own lock (audit_chain) is taken for every stored filing


def test_retry_never_draws_twice(ledger: Ledger) -> None:
    submit(ledger.permits, make_permit("P-1"))
    first = record("D-1", 1, claim(draw("P-1", 30.0)))
    ledger.save(first)
    retry = dataclasses.replace(first, assessment=dataclasses.replace(first.assessment, assessment_id="rescored"))

    (again,) = ledger.save(retry)
    copies = ledger.save(record("D-2", 1, claim(draw("P-1", 10.0))), record("D-2", 1, claim(draw("P-1", 10.0))))

    assert not again.created and again.assessment.assessment_id == first.assessment.assessment_id
    assert [c.created for c in copies] == [True, False]
    assert ledger.state("P-1").balances == {1: LineBalance(40.0, 0.0)}
    assert [d[0] for d in ledger.draws()] == ["D-1", "D-2"]


def test_amendment_replaces_the_earlier_draw(ledger: Ledger) -> None:
    submit(ledger.permits, make_permit("P-1"))
    submit(ledger.permits, make_permit("P-2", goods_line(1, "8504")))
    ledger.save(record("D-1", 1, claim(draw("P-1", 30.0))))

    ledger.save(record("D-1", 2, claim(draw("P-1", 50.0), draw("P-2", 7.0, item=2))))

    assert ledger.state("P-1").balances == {1: LineBalance(50.0, 0.0)}
    assert ledger.draws() == [("D-1", 2, "P-1", 1, 1, 50.0), ("D-1", 2, "P-2", 1, 2, 7.0)]

    # An amendment that cites no permit any more gives everything back.
    ledger.save(record("D-1", 3, LedgerClaim()))

    assert ledger.state("P-1").balances == {} and ledger.state("P-2").balances == {}
    assert ledger.draws() == []
    assert ledger.balances.updates[-1] == {("P-1", 1): LineBalance(0.0, 0.0), ("P-2", 1): LineBalance(0.0, 0.0)}


def test_giving_everything_back_leaves_no_float_residue(ledger: Ledger) -> None:
    # Sums of floats do not cancel exactly; a residue would count as drawn and keep the line from
    # being dropped. Amounts of mixed magnitude, one declaration alone on a line and two sharing one.
    submit(ledger.permits, make_permit("P-1", goods_line(1, quantity=1e7)))
    submit(ledger.permits, make_permit("P-2", goods_line(1, quantity=1e7)))
    ledger.save(record("D-1", 1, claim(draw("P-1", 649475.65, item=1), draw("P-1", 0.01, item=2))))
    ledger.save(record("D-2", 1, claim(draw("P-2", 67.43))))
    ledger.save(record("D-3", 1, claim(draw("P-2", 375350.47, item=1), draw("P-2", 238496.32, item=2))))

    ledger.save(record("D-1", 2, LedgerClaim()))
    ledger.save(record("D-3", 2, LedgerClaim()))
    ledger.save(record("D-2", 2, LedgerClaim()))

    assert ledger.state("P-1").balances == {} and ledger.state("P-2").balances == {}
    (dropped,) = ledger.permits.apply(
        [change("P-1", put(make_permit("P-1", goods_line(2, "8504"))), action=PermitAction.AMEND)]
    )
    assert dropped.error is None and [line.line_number for line in ledger.state("P-1").permit.goods_lines] == [2]


def test_versions_in_one_batch_settle_as_if_saved_in_order(ledger: Ledger) -> None:
    submit(ledger.permits, make_permit("P-1"))

    ledger.save(
        record("D-1", 1, claim(draw("P-1", 10.0))),
        record("D-1", 2, claim(draw("P-1", 20.0))),
        record("D-2", 3, claim(draw("P-1", 5.0))),
        record("D-2", 2, claim(draw("P-1", 40.0))),  # older than the version before it: ignored
    )

    assert ledger.draws() == [("D-1", 2, "P-1", 1, 1, 20.0), ("D-2", 3, "P-1", 1, 1, 5.0)]
    assert ledger.state("P-1").balances == {1: LineBalance(25.0, 0.0)}


def test_older_version_arriving_late_is_ignored(ledger: Ledger) -> None:
    submit(ledger.permits, make_permit("P-1"))
    ledger.save(record("D-1", 2, claim(draw("P-1", 50.0))))
    ledger.save(record("D-2", 2, None))  # the latest version of D-2 cites nothing

    late = ledger.save(record("D-1", 1, claim(draw("P-1", 30.0))), record("D-2", 1, claim(draw("P-1", 30.0))))

    assert [r.created for r in late] == [True, True]  # stored for the record, but they draw nothing
    assert ledger.draws() == [("D-1", 2, "P-1", 1, 1, 50.0)]
    assert ledger.state("P-1").balances == {1: LineBalance(50.0, 0.0)}


def test_over_draw_is_refused_and_the_assessment_flagged(ledger: Ledger) -> None:
    submit(ledger.permits, make_permit("P-1", goods_line(1, quantity=100.0), goods_line(2, "8504", quantity=None)))
    submit(ledger.permits, make_permit("P-2", goods_line(1, quantity=None, value=500.0)))
    ledger.save(record("D-1", 1, claim(draw("P-1", 80.0))))
    greedy = record(
        "D-2",
        1,
        claim(
            draw("P-1", 15.0, item=1),
            draw("P-1", 15.0, item=2),  # together 30 of the 20 left
            draw("P-1", 999.0, line=2, item=3),  # unlimited, but all-or-nothing
            draw("P-2", 0.0, value=501.0, item=3),
        ),
    )

    (result,) = ledger.save(greedy)

    assert result.created and flagged(result.assessment) and result.assessment.channel == Channel.RED
    assert ledger.assessments.get("D-2", 1) == result.assessment
    ((declaration_id, version, refusals),) = ledger.flagger.calls
    assert (declaration_id, version) == ("D-2", 1)
    assert refusals == (
        DrawRefusal(
            RefusalKind.BALANCE,
            "P-1",
            1,
            item_numbers=(1, 2),
            unit="KGM",
            requested_quantity=30.0,
            remaining_quantity=20.0,
            requested_value=0.0,
            remaining_value=None,
            authorised_quantity=100.0,
        ),
        DrawRefusal(
            RefusalKind.BALANCE,
            "P-2",
            1,
            item_numbers=(3,),
            unit="KGM",
            requested_quantity=0.0,
            remaining_quantity=None,
            requested_value=501.0,
            remaining_value=500.0,
            authorised_value=500.0,
        ),
    )
    assert ledger.draws() == [("D-1", 1, "P-1", 1, 1, 80.0)]
    assert ledger.state("P-1").balances == {1: LineBalance(80.0, 0.0)}
    # What exactly remains can still be drawn, whatever float rounding did to the total.
    (exact,) = ledger.save(record("D-3", 1, claim(draw("P-1", 0.1), draw("P-1", 19.9, item=2))))
    assert not flagged(exact.assessment)


def test_without_a_settle_function_the_refusal_still_holds_but_the_assessment_is_stored_as_is(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    migrations.upgrade(database_url)
    with SqlPermitStore(database_url) as permits, SqlAssessmentStore(database_url) as assessments:
        submit(permits, make_permit("P-1", goods_line(1, quantity=10.0)))
        caplog.set_level(logging.WARNING, logger="risk_service.store")
        r = record("D-1", 1, claim(draw("P-1", 11.0)))

        (result,) = assessments.save_many([r]).result(timeout=30)

        assert result.created and result.assessment == r.assessment
        assert permits.get_many(["P-1"])["P-1"].balances == {}
        assert "no settle function" in caplog.text


def test_single_use_permit_is_used_once(ledger: Ledger) -> None:
    submit(ledger.permits, make_permit("P-ONCE", goods_line(1, quantity=None), single_use=True))
    submit(ledger.permits, make_permit("P-ALSO", goods_line(1, quantity=None), single_use=True))

    (first,) = ledger.save(record("D-1", 1, claim(draw("P-ONCE", 1.0), single_use=["P-ONCE"])))
    (second,) = ledger.save(record("D-2", 1, claim(draw("P-ONCE", 1.0), single_use=["P-ONCE"])))
    # The screener did not list it, but the permit says single use: the ledger, under lock, decides.
    (third,) = ledger.save(record("D-3", 1, claim(draw("P-ONCE", 1.0))))
    (amended,) = ledger.save(record("D-1", 2, claim(draw("P-ONCE", 2.0), single_use=["P-ONCE"])))
    (uses_only,) = ledger.save(record("D-4", 1, claim(single_use=["P-ALSO"])))

    assert not flagged(first.assessment) and not flagged(amended.assessment) and not flagged(uses_only.assessment)
    assert flagged(second.assessment) and flagged(third.assessment)
    refusal = ledger.flagger.calls[0][2][0]
    assert (refusal.kind, refusal.permit_id, refusal.used_by) == (RefusalKind.ALREADY_USED, "P-ONCE", "D-1")
    assert ledger.uses() == [("P-ALSO", "D-4", 1), ("P-ONCE", "D-1", 2)]
    assert ledger.draws() == [("D-1", 2, "P-ONCE", 1, 1, 2.0)]


def test_permit_suspended_at_settle_time_is_not_usable(ledger: Ledger) -> None:
    submit(ledger.permits, make_permit("P-1"))
    submit(ledger.permits, make_permit("P-2", goods_line(1, "8504")))
    ledger.permits.apply([change("P-1", to_status(PermitStatus.SUSPENDED), action=PermitAction.SUSPEND)])

    (result,) = ledger.save(record("D-1", 1, claim(draw("P-1", 1.0, item=2), draw("P-2", 1.0, item=1))))
    (unknown,) = ledger.save(record("D-2", 1, claim(draw("P-GONE", 1.0))))

    assert flagged(result.assessment) and flagged(unknown.assessment)
    assert ledger.flagger.calls[0][2] == (DrawRefusal(RefusalKind.NOT_USABLE, "P-1", item_numbers=(2,)),)
    assert ledger.flagger.calls[1][2] == (DrawRefusal(RefusalKind.NOT_USABLE, "P-GONE", item_numbers=(1,)),)
    assert ledger.draws() == []  # nothing from P-2 either: all or nothing


def test_permit_change_sees_the_drawn_balances_under_lock(ledger: Ledger) -> None:
    submit(ledger.permits, make_permit("P-1", goods_line(1, quantity=100.0), goods_line(2, "8504")))
    ledger.save(record("D-1", 1, claim(draw("P-1", 60.0))))

    def cut(current: PermitState | None) -> Permit:
        assert current is not None
        drawn = current.balance(1).drawn_quantity
        if drawn > 50.0:
            raise FailedPrecondition(f"line 1 has {drawn:g} drawn")
        return make_permit("P-1", goods_line(1, quantity=50.0))

    (refused,) = ledger.permits.apply([change("P-1", cut, action=PermitAction.AMEND)])
    # Dropping line 2, which nothing was drawn from, is fine; line 1 keeps its drawn total.
    (kept,) = ledger.permits.apply(
        [change("P-1", put(make_permit("P-1", goods_line(1, quantity=70.0))), action=PermitAction.AMEND)]
    )

    assert isinstance(refused.error, FailedPrecondition) and "60 drawn" in refused.error.message
    assert kept.error is None
    state = ledger.state("P-1")
    assert state.balances == {1: LineBalance(60.0, 0.0)} and len(state.permit.goods_lines) == 1
    (over,) = ledger.save(record("D-2", 1, claim(draw("P-1", 11.0))))
    assert flagged(over.assessment)
    assert ledger.flagger.calls[-1][2][0].remaining_quantity == 10.0


def test_cancellation_returns_the_balance_and_is_idempotent(ledger: Ledger) -> None:
    submit(ledger.permits, make_permit("P-1"))
    submit(ledger.permits, make_permit("P-ONCE", goods_line(1, quantity=None), single_use=True))
    ledger.save(record("D-1", 1, claim(draw("P-1", 30.0), draw("P-ONCE", 1.0, item=2), single_use=["P-ONCE"])))
    ledger.save(record("D-2", 1, claim(draw("P-1", 20.0))))
    ledger.balances.updates.clear()

    result = ledger.permits.cancel_declaration(
        "D-1", request_id="CAN-1", actor="officer-7", reason="withdrawn", at=CANCELLED_AT
    )
    again = ledger.permits.cancel_declaration("D-1", request_id="CAN-2", actor="officer-7", reason="withdrawn", at=T0)

    assert result.created and not again.created
    assert result.cancelled_at == again.cancelled_at == CANCELLED_AT
    assert sorted(result.released, key=lambda d: d.permit_id) == [
        DrawRecord("P-1", "D-1", 1, 1, 1, 30.0, 0.0, result.released[0].drawn_at),
        DrawRecord("P-ONCE", "D-1", 1, 1, 2, 1.0, 0.0, result.released[1].drawn_at),
    ]
    assert again.released == result.released
    assert ledger.state("P-1").balances == {1: LineBalance(20.0, 0.0)}
    assert ledger.uses() == []
    assert ledger.balances.updates == [{("P-1", 1): LineBalance(20.0, 0.0), ("P-ONCE", 1): LineBalance(0.0, 0.0)}]
    # The single-use permit is free again, and a later version of the cancelled filing draws nothing
    # and is flagged for it: its goods would otherwise clear against a balance given back.
    (other,) = ledger.save(record("D-3", 1, claim(draw("P-ONCE", 1.0), single_use=["P-ONCE"])))
    (late,) = ledger.save(record("D-1", 2, claim(draw("P-1", 5.0))))
    assert not flagged(other.assessment) and late.created and flagged(late.assessment)
    assert ledger.flagger.calls[-1] == (
        "D-1",
        2,
        (DrawRefusal(RefusalKind.DECLARATION_CANCELLED, "P-1", item_numbers=(1,)),),
    )
    assert late.assessment.channel == Channel.RED
    assert [d[0] for d in ledger.draws()] == ["D-2", "D-3"]
    # A later version without permits (amended to need none) is not flagged.
    (plain,) = ledger.save(record("D-1", 3, LedgerClaim()))
    assert not flagged(plain.assessment)


def test_an_unchecked_version_neither_draws_nor_gives_back(ledger: Ledger) -> None:
    """Permit checks switched off (claim None): an amendment must not hand back what goods already drew."""
    submit(ledger.permits, make_permit("P-1"))
    ledger.save(record("D-1", 1, claim(draw("P-1", 30.0))))

    (unchecked,) = ledger.save(record("D-1", 2, None))

    assert unchecked.created and not flagged(unchecked.assessment)
    assert ledger.state("P-1").balances == {1: LineBalance(30.0, 0.0)}
    assert [(d[0], d[1]) for d in ledger.draws()] == [("D-1", 1)]


def test_cancelling_a_declaration_without_draws_records_it(ledger: Ledger) -> None:
    ledger.save(record("D-1"))

    result = ledger.permits.cancel_declaration("D-1", request_id="CAN-1", actor="a", reason="", at=CANCELLED_AT)

    assert result.created and result.released == ()
    assert not ledger.permits.cancel_declaration("D-1", request_id="CAN-1", actor="a", reason="", at=T0).created


def test_cancelling_an_unknown_declaration_is_not_found(ledger: Ledger) -> None:
    with pytest.raises(NotFound):
        ledger.permits.cancel_declaration("D-NONE", request_id="CAN-1", actor="a", reason="", at=CANCELLED_AT)
    ledger.save(record("D-NONE"))  # once assessed, it can be cancelled: nothing was kept of the refusal
    assert ledger.permits.cancel_declaration(
        "D-NONE", request_id="CAN-1", actor="a", reason="", at=CANCELLED_AT
    ).created


def test_usage_pages_the_agency_permits_with_their_draws(ledger: Ledger) -> None:
    for n in range(1, 5):
        submit(ledger.permits, make_permit(f"P-{n}", agency="NFQS" if n != 3 else "MFDS"))
    ledger.save(record("D-1", 1, claim(draw("P-1", 1.0), draw("P-2", 2.0, item=2), draw("P-4", 4.0, item=3))))
    ledger.save(record("D-2", 1, claim(draw("P-2", 3.0))))

    first = ledger.permits.usage("NFQS", after="", limit=2)
    rest = ledger.permits.usage("NFQS", after=first[-1].state.permit.permit_id, limit=2)

    assert [u.state.permit.permit_id for u in first] == ["P-1", "P-2"]
    assert [u.state.permit.permit_id for u in rest] == ["P-4"]
    assert [(d.declaration_id, d.quantity) for d in first[1].draws] == [("D-1", 2.0), ("D-2", 3.0)]
    assert first[1].state.balances == {1: LineBalance(5.0, 0.0)}
    assert ledger.permits.usage("NONE", after="", limit=5) == []


def test_a_listener_failure_does_not_fail_the_writer(database_url: str) -> None:
    migrations.upgrade(database_url)

    def broken(totals: Mapping[tuple[str, int], LineBalance]) -> None:
        raise RuntimeError("listener down")

    with SqlPermitStore(database_url) as permits, SqlAssessmentStore(database_url, on_balances=broken) as store:
        submit(permits, make_permit("P-1"))
        (result,) = store.save_many([record("D-1", 1, claim(draw("P-1", 1.0)))]).result(timeout=30)
        assert result.created and store.ping()
        assert permits.get_many(["P-1"])["P-1"].balances == {1: LineBalance(1.0, 0.0)}


def lock_waiters(engine: sa.Engine) -> int:
    """Backends of this PostgreSQL database waiting for a lock."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(DISTINCT l.pid) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE NOT l.granted AND a.datname = current_database()"
                )
            ).scalar_one()
        )


def test_a_filing_stored_by_another_writer_meanwhile_draws_nothing(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    """The ledger settles before the insert; if another writer stored the key in between, the draws roll back."""
    submit(ledger.permits, make_permit("P-1"))
    theirs = record("D-1", 1, None)  # another server stored this version without a claim
    ours = record("D-1", 1, claim(draw("P-1", 30.0)))
    a = theirs.assessment
    row = {
        "assessment_id": a.assessment_id,
        "declaration_id": "D-1",
        "declaration_version": 1,
        "content_hash": theirs.content_hash,
        "channel": int(a.channel),
        "risk_score": a.risk_score,
        "model_score": None,
        "random_control": False,
        "model_status": int(a.model_status),
        "model_name": "",
        "model_version": "",
        "rule_set_version": a.rule_set_version,
        "assessed_at": a.assessment_time,
        "lodged_at": None,
        "importer_id": "IMP-0001",
        "customs_office": "020",
        "declaration": codec.declaration_to_dict(theirs.declaration),
        "assessment": codec.assessment_to_dict(a),
    }
    caplog.set_level(logging.WARNING, logger="risk_service.store")
    engine = sa.create_engine(ledger.url)
    other = engine.connect()
    try:
        if engine.dialect.name == "postgresql":
            # Uncommitted, so the ledger does not see it; the insert then waits for it and skips the key.
            other.execute(sa.insert(assessments), row)
            future = ledger.assessments.save_many([ours])
            deadline = time.monotonic() + 20
            while lock_waiters(engine) < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            other.commit()
        else:  # SQLite writers are serialised: the ledger sees the row and settles nothing
            other.execute(sa.insert(assessments), row)
            other.commit()
            future = ledger.assessments.save_many([ours])
        (result,) = future.result(timeout=30)
    finally:
        other.close()
        engine.dispose()

    assert not result.created and result.conflict and result.assessment == theirs.assessment
    assert ledger.draws() == [] and ledger.state("P-1").balances == {}
    if ledger.url.startswith("postgresql"):
        assert "retrying each on its own" in caplog.text


class PermitLockGate:
    """Holds permit P-A's row lock (PostgreSQL) or the write lock (SQLite) from outside the stores, then lets go."""

    def __init__(self, url: str) -> None:
        self._engine = sa.create_engine(url)
        self._conn = self._engine.connect()
        self.postgres = self._engine.dialect.name == "postgresql"
        if self.postgres:
            self._conn.execute(sa.text("SELECT permit_id FROM permits WHERE permit_id = 'P-A' FOR UPDATE"))
        else:
            self._conn.exec_driver_sql("BEGIN IMMEDIATE")

    def waiting(self) -> int:
        return lock_waiters(self._engine)

    def release(self) -> None:
        self._conn.rollback()
        self._conn.close()

    def close(self) -> None:
        self._engine.dispose()


def test_concurrent_writers_never_overdraw(database_url: str) -> None:
    """Two stores (two writer threads, two connections) and many callers draw from the same two permits."""
    migrations.upgrade(database_url)
    authorised = {"P-A": 150.0, "P-B": 60.0}
    flagger = Flagger()
    stores = [SqlAssessmentStore(database_url, settle=flagger) for _ in range(2)]
    permits = SqlPermitStore(database_url)
    submit(permits, make_permit("P-A", goods_line(1, quantity=authorised["P-A"])))
    submit(permits, make_permit("P-B", goods_line(1, "8504", quantity=authorised["P-B"])))
    threads_per_store, per_thread = 8, 20
    errors: list[BaseException] = []
    start = threading.Barrier(2 * threads_per_store + 1)

    def claim_of(t: int, n: int, version: int) -> LedgerClaim:
        quantity = float(1 + (t + n + version) % 3)
        draws = [draw("P-A", quantity)]
        if n % 2:  # listed B first: the ledger must lock in its own order, whatever the claim's
            draws.insert(0, draw("P-B", quantity, item=2))
        return claim(*draws)

    def caller(store: SqlAssessmentStore, t: int) -> None:
        try:
            start.wait()
            pending: list[Future[list[SaveResult]]] = []
            for n in range(per_thread):
                # The same declarations go to both stores: every one is also a cross-writer retry.
                declaration_id = f"C-{t}-{n}"
                pending.append(store.save_many([record(declaration_id, 1, claim_of(t, n, 1))]))
                if n % 4 == 0:  # every fourth is amended once its first version is stored
                    pending[-1].result(timeout=60)
                    pending.append(store.save_many([record(declaration_id, 2, claim_of(t, n, 2))]))
                if len(pending) >= 2:  # two in flight per caller keeps both writers busy, batches small
                    for future in pending:
                        future.result(timeout=60)
                    pending.clear()
            for future in pending:
                future.result(timeout=60)
        except BaseException as err:
            errors.append(err)

    workers = [threading.Thread(target=caller, args=(s, t)) for s in stores for t in range(threads_per_store)]
    # Both writers' first transactions queue on the gate's lock, so the run starts contended.
    gate = PermitLockGate(database_url)
    try:
        for w in workers:
            w.start()
        start.wait()
        if gate.postgres:
            deadline = time.monotonic() + 20
            while gate.waiting() < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert gate.waiting() >= 2, "both writers should be waiting for permit P-A's lock"
        else:
            time.sleep(0.3)
        gate.release()
        samples: list[int] = []
        while gate.postgres and any(w.is_alive() for w in workers):
            samples.append(gate.waiting())  # how often a writer waits for the other's lock, for the log
            time.sleep(0.005)
        for w in workers:
            w.join()
        assert errors == []

        engine = sa.create_engine(database_url)
        try:
            with engine.connect() as conn:
                draws = conn.execute(
                    sa.select(
                        permit_draws.c.declaration_id,
                        permit_draws.c.declaration_version,
                        permit_draws.c.permit_id,
                        permit_draws.c.quantity,
                    )
                ).all()
                totals = {
                    p: q for p, q in conn.execute(sa.select(permit_lines.c.permit_id, permit_lines.c.drawn_quantity))
                }
        finally:
            engine.dispose()
        for permit_id, limit in authorised.items():
            drawn = sum(q for _, _, p, q in draws if p == permit_id)
            assert drawn <= limit + 1e-9
            assert totals[permit_id] == pytest.approx(drawn, abs=1e-9)
        by_declaration: dict[str, set[int]] = {}
        for declaration_id, version, _, _ in draws:
            by_declaration.setdefault(declaration_id, set()).add(version)
        granted = refused = 0
        refusals = {(d, v) for d, v, _ in flagger.calls}
        for t in range(threads_per_store):
            for n in range(per_thread):
                declaration_id = f"C-{t}-{n}"
                history = stores[0].history(declaration_id)
                # Every stored version is flagged exactly when the ledger refused it.
                assert {(a.declaration_id, a.declaration_version) for a in history if flagged(a)} == {
                    (declaration_id, a.declaration_version)
                    for a in history
                    if (declaration_id, a.declaration_version) in refusals
                }
                latest = history[-1]
                versions = by_declaration.get(declaration_id, set())
                if flagged(latest):
                    refused += 1
                    assert versions == set(), f"{declaration_id} was refused but draws"
                else:
                    granted += 1
                    assert versions == {latest.declaration_version}, f"{declaration_id} drew {versions}"
        # Each version was settled (and so refused) at most once, though both stores received it.
        assert len(flagger.calls) == len(refusals)
        assert granted > 0 and refused > 0
        log.info(
            "concurrent ledger: %d declarations granted, %d refused, %d draw rows; a writer waited in %d of %d samples",
            granted,
            refused,
            len(draws),
            sum(1 for n in samples if n),
            len(samples),
        )
    finally:
        gate.close()
        for s in stores:
            s.close()
        permits.close()


def test_the_first_filed_of_one_commit_gets_the_last_units_whatever_its_id(ledger: Ledger) -> None:
    """Claims in one group commit settle in filing order, not in key order (a review found key order)."""
    submit(ledger.permits, make_permit("P-1", goods_line(1, quantity=100.0)))
    zulu, alpha = ledger.save(
        record("D-ZULU", 1, claim(draw("P-1", 80.0))),  # filed first
        record("D-ALPHA", 1, claim(draw("P-1", 80.0))),
    )
    assert not flagged(zulu.assessment) and flagged(alpha.assessment)
