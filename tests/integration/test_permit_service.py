"""The permit registry service on SQLite and PostgreSQL: changes, bulk imports, paging, and the scoring cache."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from risk_service.domain.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermitExists,
    RequestIdConflict,
)
from risk_service.domain.permits.cache import PermitCache
from risk_service.domain.permits.checks import PERMIT_UNKNOWN, PermitCheckConfig
from risk_service.domain.permits.controlled_goods import ControlledGoodsTable
from risk_service.domain.permits.ledger import LedgerClaim, PermitDraw
from risk_service.domain.permits.model import (
    LineBalance,
    Permit,
    PermitAction,
    PermitChange,
    PermitState,
    PermitStatus,
    PermitType,
)
from risk_service.domain.permits.screen import PermitScreen
from risk_service.domain.permits.service import ImportReport, ImportRow, PermitService
from risk_service.domain.ports import AssessmentRecord, PermitFilter
from risk_service.domain.validation import ValidationLimits
from risk_service.store import SqlAssessmentStore, migrations
from risk_service.store.permit_store import SqlPermitStore
from tests import builders
from tests.permit_builders import goods_line, permit

_ids = itertools.count(1)
LIMITS = ValidationLimits()
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def request_id(prefix: str = "REQ") -> str:
    return f"{prefix}-{next(_ids):06d}"


def run(awaitable: Any) -> Any:
    return asyncio.run(awaitable)


def quarantine(permit_id: str, **overrides: Any) -> Permit:
    """An NFQS quarantine certificate for chilled beef, 24 t in kilograms, held by builders' importer."""
    base = permit(
        permit_id=permit_id,
        issuing_agency="NFQS",
        type=PermitType.QUARANTINE_CERTIFICATE,
        goods_lines=(
            goods_line(hs_prefix="020130", description="Beef, chilled", unit="KGM", authorised_quantity=24000),
        ),
        allowed_origin_countries=("AU", "NZ"),
    )
    return dataclasses.replace(base, **overrides)


def row(line_number: int, p: Permit, *, actor: str = "nfqs-feed", rid: str | None = None) -> ImportRow:
    return ImportRow(line_number, rid or request_id("FEED"), actor, p)


def counts(report: ImportReport) -> tuple[bool, int, int, int, list[int]]:
    return report.applied, report.created, report.amended, report.unchanged, [line for line, _ in report.errors]


class LoadHookStore(SqlPermitStore):
    """The real store; `during_load` runs once right after a `get_many` read, before the cache gets the result.

    Stands for whatever else the server does while a load is in flight (the ledger commits a draw, the
    reload loop polls, another process changes the permit).
    """

    during_load: Callable[[], None] | None = None

    def get_many(self, permit_ids: Sequence[str]) -> dict[str, PermitState]:
        found = super().get_many(permit_ids)
        hook, self.during_load = self.during_load, None
        if hook is not None:
            hook()
        return found


@dataclass
class Registry:
    url: str
    store: LoadHookStore
    cache: PermitCache
    service: PermitService

    def submit(self, p: Permit, *, actor: str = "nfqs-officer-3") -> PermitChange:
        change: PermitChange = run(self.service.submit(p, request_id=request_id(), actor=actor))
        return change

    def status(self, permit_id: str) -> PermitStatus:
        state: PermitState = run(self.service.get(permit_id))
        return state.permit.status


@pytest.fixture
def registry(database_url: str) -> Iterator[Registry]:
    migrations.upgrade(database_url)
    store = LoadHookStore(database_url)
    cache = PermitCache(store)
    cache.poll()
    try:
        yield Registry(database_url, store, cache, PermitService(store, cache, LIMITS))
    finally:
        store.close()


@pytest.fixture
def other_process(registry: Registry) -> Iterator[PermitService]:
    """A second server on the same database: its own store and cache."""
    store = SqlPermitStore(registry.url)
    try:
        yield PermitService(store, PermitCache(store), LIMITS)
    finally:
        store.close()


@pytest.fixture
def ledger(registry: Registry) -> Iterator[SqlAssessmentStore]:
    """The assessment writer, telling the registry's cache of every commit's new balances (as bootstrap wires it)."""
    store = SqlAssessmentStore(registry.url, on_balances=registry.cache.apply_balances)
    try:
        yield store
    finally:
        store.close()


def drawing(declaration_id: str, permit_id: str, quantity: float) -> AssessmentRecord:
    """A declaration's assessment drawing `quantity` from line 1 of the permit, as the screener would claim it."""
    declaration = builders.declaration(
        declaration_id=declaration_id, items=(builders.item(permit_references=(permit_id,)),)
    )
    assessment = builders.assessment(
        assessment_id=str(uuid.uuid4()), declaration_id=declaration_id, assessment_time=NOW
    )
    claim = LedgerClaim((PermitDraw(permit_id, 1, 1, quantity, 0.0),))
    content = hashlib.sha256(repr((declaration_id, permit_id, quantity)).encode()).hexdigest()
    return AssessmentRecord(assessment, declaration, content, claim)


def draw(ledger: SqlAssessmentStore, declaration_id: str, permit_id: str, quantity: float) -> None:
    (result,) = ledger.save_many([drawing(declaration_id, permit_id, quantity)]).result(timeout=30)
    assert result.created and not result.conflict


# -- single changes and their errors ------------------------------------------------------------------


def test_a_retried_submission_returns_the_stored_change_and_is_kept_once(registry: Registry) -> None:
    p = quarantine("NFQS-2026-000101")
    rid = request_id()
    first = run(registry.service.submit(p, request_id=rid, actor="nfqs-officer-3"))
    again = run(registry.service.submit(p, request_id=rid, actor="nfqs-officer-3"))
    assert again == first
    assert first.permit.version == 1 and first.permit.status == PermitStatus.ACTIVE
    assert [c.action for c in run(registry.service.history(p.permit_id))] == [PermitAction.SUBMIT]


def test_refusals_carry_the_error_a_caller_can_act_on(registry: Registry) -> None:
    p = quarantine("NFQS-2026-000102")
    rid = request_id()
    run(registry.service.submit(p, request_id=rid, actor="nfqs-officer-3"))
    with pytest.raises(PermitExists):
        registry.submit(p)
    with pytest.raises(RequestIdConflict):  # the same request id for other content
        run(registry.service.submit(quarantine("NFQS-2026-000103"), request_id=rid, actor="nfqs-officer-3"))
    with pytest.raises(NotFound):
        run(registry.service.revoke("NFQS-2026-404404", request_id=request_id(), actor="nfqs", reason="fraud"))
    with pytest.raises(FailedPrecondition):  # active permits are not reinstated
        run(registry.service.reinstate(p.permit_id, request_id=request_id(), actor="nfqs", reason="cleared"))
    with pytest.raises(FailedPrecondition):  # only the issuing agency amends
        run(
            registry.service.amend(
                dataclasses.replace(p, issuing_agency="MFDS"), request_id=request_id(), actor="mfds-officer"
            )
        )
    with pytest.raises(FailedPrecondition):  # optimistic concurrency: the caller read an older version
        run(registry.service.amend(p, request_id=request_id(), actor="nfqs", expected_version=7))
    with pytest.raises(NotFound):
        run(registry.service.get("NFQS-2026-404404"))
    with pytest.raises(NotFound):
        run(registry.service.history("NFQS-2026-404404"))
    with pytest.raises(InvalidArgument) as bad:
        registry.submit(
            quarantine(
                "NFQS-2026-000104",
                goods_lines=(goods_line(unit="BAG"),),
                valid_from=NOW,
                valid_to=NOW - timedelta(days=1),
            )
        )
    assert {v.field for v in bad.value.violations} == {"permit.goods_lines[0].unit", "permit.valid_to_time"}
    assert [c.action for c in run(registry.service.history(p.permit_id))] == [PermitAction.SUBMIT]


def test_status_changes_follow_the_lifecycle_and_are_kept_in_history(registry: Registry) -> None:
    p = quarantine("NFQS-2026-000105")
    registry.submit(p)
    service = registry.service
    run(service.suspend(p.permit_id, request_id=request_id(), actor="nfqs", reason="inspection pending"))
    assert registry.status(p.permit_id) == PermitStatus.SUSPENDED
    run(service.reinstate(p.permit_id, request_id=request_id(), actor="nfqs", reason="inspection passed"))
    run(service.revoke(p.permit_id, request_id=request_id(), actor="nfqs", reason="forged origin papers"))
    with pytest.raises(FailedPrecondition):  # revoked is final
        run(service.amend(p, request_id=request_id(), actor="nfqs"))
    history = run(service.history(p.permit_id))
    assert [(c.action, c.permit.version, c.permit.status) for c in history] == [
        (PermitAction.SUBMIT, 1, PermitStatus.ACTIVE),
        (PermitAction.SUSPEND, 2, PermitStatus.SUSPENDED),
        (PermitAction.REINSTATE, 3, PermitStatus.ACTIVE),
        (PermitAction.REVOKE, 4, PermitStatus.REVOKED),
    ]
    assert history[-1].reason == "forged origin papers"


def test_an_amendment_may_not_cut_below_what_was_drawn(registry: Registry, ledger: SqlAssessmentStore) -> None:
    p = quarantine("NFQS-2026-000106")
    registry.submit(p)
    draw(ledger, "26020-IM-0001001", p.permit_id, 20000.0)
    cut = dataclasses.replace(p, goods_lines=(dataclasses.replace(p.goods_lines[0], authorised_quantity=15000),))
    with pytest.raises(FailedPrecondition, match="below the 20000 KGM already drawn"):
        run(registry.service.amend(cut, request_id=request_id(), actor="nfqs"))
    assert run(registry.service.get(p.permit_id)).permit.version == 1
    kept = dataclasses.replace(p, goods_lines=(dataclasses.replace(p.goods_lines[0], authorised_quantity=20000),))
    assert run(registry.service.amend(kept, request_id=request_id(), actor="nfqs")).permit.version == 2


def test_a_fully_drawn_line_can_still_be_amended_unchanged(registry: Registry, ledger: SqlAssessmentStore) -> None:
    # 0.3 t authorised; declarations in kilograms draw 100 kg and 200 kg: 0.1 + 0.2 t, which floats sum to
    # 0.30000000000000004. The agency then only extends the validity.
    line = goods_line(hs_prefix="020130", unit="TNE", authorised_quantity=0.3)
    p = quarantine("NFQS-2026-000107", goods_lines=(line,))
    registry.submit(p)
    draw(ledger, "26020-IM-0001002", p.permit_id, 0.1)
    draw(ledger, "26020-IM-0001003", p.permit_id, 0.2)
    extended = dataclasses.replace(p, valid_to=p.valid_to + timedelta(days=90) if p.valid_to else None)
    assert run(registry.service.amend(extended, request_id=request_id(), actor="nfqs")).permit.version == 2


def test_an_actor_with_control_characters_is_invalid_argument(registry: Registry) -> None:
    with pytest.raises(InvalidArgument) as bad:
        registry.submit(quarantine("NFQS-2026-000108"), actor="nfqs\x00officer")
    assert [v.field for v in bad.value.violations] == ["actor"]


# -- bulk imports ---------------------------------------------------------------------------------


def test_import_counts_created_amended_and_unchanged(registry: Registry) -> None:
    permits = [quarantine(f"NFQS-2026-0002{n:02d}") for n in range(1, 4)]
    service = registry.service
    first = run(service.import_rows([row(n + 2, p) for n, p in enumerate(permits)], strict=False))
    assert counts(first) == (True, 3, 0, 0, [])

    # The same feed again, as a new run (new request ids): nothing to do.
    assert counts(run(service.import_rows([row(n + 2, p) for n, p in enumerate(permits)], strict=False))) == (
        True,
        0,
        0,
        3,
        [],
    )

    # The agency extends the second certificate; the same run retried (same request ids) changes nothing more.
    changed = [permits[0], dataclasses.replace(permits[1], end_use="retail"), permits[2]]
    rows = [row(n + 2, p) for n, p in enumerate(changed)]
    assert counts(run(service.import_rows(rows, strict=False))) == (True, 0, 1, 2, [])
    assert counts(run(service.import_rows(rows, strict=False))) == (True, 0, 0, 3, [])

    state = run(service.get(permits[1].permit_id))
    assert (state.permit.version, state.permit.end_use) == (2, "retail")
    history = run(service.history(permits[1].permit_id))
    assert [(c.action, c.actor, c.reason) for c in history] == [
        (PermitAction.SUBMIT, "nfqs-feed", "bulk import"),
        (PermitAction.AMEND, "nfqs-feed", "bulk import"),
    ]


def test_import_skips_bad_rows_and_stores_the_good_ones(registry: Registry) -> None:
    revoked = quarantine("NFQS-2026-000301")
    registry.submit(revoked)
    run(registry.service.revoke(revoked.permit_id, request_id=request_id(), actor="nfqs", reason="fraud"))
    rows = [
        row(2, quarantine("NFQS-2026-000302")),
        row(3, quarantine("NFQS-2026-000303", goods_lines=(goods_line(unit="BAG"),))),  # invalid
        row(4, dataclasses.replace(revoked, end_use="resale")),  # refused by the transition: revoked
        row(5, quarantine("NFQS-2026-000304")),
    ]
    report = run(registry.service.import_rows(rows, strict=False))
    assert counts(report) == (True, 2, 0, 0, [3, 4])
    errors = dict(report.errors)
    assert isinstance(errors[3], InvalidArgument)
    assert [v.field for v in errors[3].violations] == ["permit.goods_lines[0].unit"]
    assert isinstance(errors[4], FailedPrecondition)
    found = run(registry.service.list(PermitFilter(issuing_agency="NFQS"), page_size=10, page_token=""))[0]
    assert [s.permit.permit_id for s in found] == ["NFQS-2026-000301", "NFQS-2026-000302", "NFQS-2026-000304"]


def test_strict_import_stores_nothing_when_a_row_is_invalid(registry: Registry) -> None:
    rows = [
        row(2, quarantine("NFQS-2026-000401")),
        row(3, quarantine("NFQS-2026-000402", valid_from=NOW, valid_to=NOW)),  # validity must not be empty
    ]
    report = run(registry.service.import_rows(rows, strict=True))
    assert counts(report) == (False, 0, 0, 0, [3])
    with pytest.raises(NotFound):
        run(registry.service.get("NFQS-2026-000401"))


def test_strict_import_stores_nothing_when_the_store_refuses_a_row(registry: Registry) -> None:
    suspended = quarantine("NFQS-2026-000501")
    registry.submit(suspended)
    run(registry.service.revoke(suspended.permit_id, request_id=request_id(), actor="nfqs", reason="fraud"))
    rows = [
        row(2, quarantine("NFQS-2026-000502")),
        row(3, dataclasses.replace(suspended, end_use="resale")),  # valid, but a revoked permit is not amended
        row(4, quarantine("NFQS-2026-000503")),
    ]
    report = run(registry.service.import_rows(rows, strict=True))
    assert counts(report) == (False, 0, 0, 0, [3])
    assert isinstance(dict(report.errors)[3], FailedPrecondition)
    for permit_id in ("NFQS-2026-000502", "NFQS-2026-000503"):
        with pytest.raises(NotFound):
            run(registry.service.get(permit_id))
    # Fixed, the same feed goes through whole.
    rows[1] = row(3, quarantine("NFQS-2026-000504"))
    assert counts(run(registry.service.import_rows(rows, strict=True))) == (True, 3, 0, 0, [])


def test_a_new_permit_fed_twice_is_created_then_amended(registry: Registry) -> None:
    p = quarantine("NFQS-2026-000601")
    later = dataclasses.replace(p, end_use="retail")  # the agency's file holds the correction further down
    report = run(registry.service.import_rows([row(2, p), row(9, later)], strict=False))
    history = run(registry.service.history(p.permit_id))
    assert [(c.action, c.permit.version) for c in history] == [(PermitAction.SUBMIT, 1), (PermitAction.AMEND, 2)]
    assert counts(report) == (True, 1, 1, 0, [])


# -- listing and paging -----------------------------------------------------------------------------


def test_listing_pages_through_every_permit_once(registry: Registry) -> None:
    nfqs = [quarantine(f"NFQS-2026-0007{n:02d}") for n in range(1, 8)]
    other = [quarantine(f"MFDS-2026-0007{n:02d}", issuing_agency="MFDS") for n in range(1, 3)]
    report = run(registry.service.import_rows([row(n, p) for n, p in enumerate(nfqs + other, start=2)], strict=False))
    assert report.created == 9
    where = PermitFilter(issuing_agency="NFQS")
    pages: list[list[str]] = []
    token = ""
    while True:
        states, token = run(registry.service.list(where, page_size=3, page_token=token))
        pages.append([s.permit.permit_id for s in states])
        if not token:
            break
    assert pages == [[p.permit_id for p in nfqs[i : i + 3]] for i in (0, 3, 6)]

    # The reconciliation report pages the same way.
    usage_pages: list[list[str]] = []
    token = ""
    while True:
        usages, token = run(registry.service.usage("NFQS", page_size=3, page_token=token))
        usage_pages.append([u.state.permit.permit_id for u in usages])
        if not token:
            break
    assert usage_pages == pages

    # An exact page leaves no token for an empty next page.
    states, token = run(registry.service.list(PermitFilter(issuing_agency="MFDS"), page_size=2, page_token=""))
    assert len(states) == 2 and token == ""


def test_a_page_token_only_continues_the_query_it_came_from(registry: Registry) -> None:
    run(registry.service.import_rows([row(n, quarantine(f"NFQS-2026-0008{n:02d}")) for n in range(1, 5)], strict=False))
    _, token = run(registry.service.list(PermitFilter(issuing_agency="NFQS"), page_size=2, page_token=""))
    assert token
    for call in (
        registry.service.list(PermitFilter(holder_id="IMP-0001"), page_size=2, page_token=token),
        registry.service.usage("NFQS", page_size=2, page_token=token),
        registry.service.list(PermitFilter(issuing_agency="NFQS"), page_size=2, page_token=token[:-3] + "%%%"),
    ):
        with pytest.raises(InvalidArgument) as bad:
            run(call)
        assert [v.field for v in bad.value.violations] == ["page_token"]
    with pytest.raises(InvalidArgument):
        run(registry.service.list(PermitFilter(), page_size=-1, page_token=""))
    # By HS code: a line for prefix 020130 covers the declared 0201300000.
    covered, _ = run(registry.service.list(PermitFilter(hs_code="0201300000"), page_size=0, page_token=""))
    assert len(covered) == 4


# -- the scoring cache ------------------------------------------------------------------------------


def test_a_change_by_another_process_reaches_the_cache_on_poll(
    registry: Registry, other_process: PermitService
) -> None:
    p = quarantine("NFQS-2026-000901")
    registry.submit(p)
    cache = registry.cache
    cache.poll()
    run(cache.snapshot([p.permit_id]))
    assert cache.cached([p.permit_id])[p.permit_id] is not None

    run(other_process.suspend(p.permit_id, request_id=request_id(), actor="nfqs", reason="inspection pending"))
    stale = cache.cached([p.permit_id])[p.permit_id]
    assert stale is not None and stale.permit.status == PermitStatus.ACTIVE  # until the reload loop polls

    assert cache.poll() == 1
    run(cache.snapshot([p.permit_id]))
    fresh = cache.cached([p.permit_id])[p.permit_id]
    assert fresh is not None and fresh.permit.status == PermitStatus.SUSPENDED
    assert cache.poll() == 0


def test_a_permit_unknown_until_another_process_submits_it_is_found_after_poll(
    registry: Registry, other_process: PermitService
) -> None:
    cache = registry.cache
    run(cache.snapshot(["NFQS-2026-000902"]))
    assert cache.cached(["NFQS-2026-000902"]) == {"NFQS-2026-000902": None}
    run(other_process.submit(quarantine("NFQS-2026-000902"), request_id=request_id(), actor="nfqs"))
    cache.poll()
    run(cache.snapshot(["NFQS-2026-000902"]))
    assert cache.cached(["NFQS-2026-000902"])["NFQS-2026-000902"] is not None


def test_changes_through_the_service_reach_the_cache_at_once(registry: Registry, ledger: SqlAssessmentStore) -> None:
    p = quarantine("NFQS-2026-000903")
    registry.submit(p)
    cache = registry.cache
    run(cache.snapshot([p.permit_id]))
    draw(ledger, "26020-IM-0009031", p.permit_id, 1500.0)
    drawn = cache.cached([p.permit_id])[p.permit_id]
    assert drawn is not None and drawn.balance(1) == LineBalance(1500.0, 0.0)  # from the writer, not a reload

    run(registry.service.suspend(p.permit_id, request_id=request_id(), actor="nfqs", reason="inspection pending"))
    run(cache.snapshot([p.permit_id]))
    suspended = cache.cached([p.permit_id])[p.permit_id]
    assert suspended is not None and suspended.permit.status == PermitStatus.SUSPENDED
    assert suspended.balance(1) == LineBalance(1500.0, 0.0)

    result = run(
        registry.service.cancel_declaration("26020-IM-0009031", request_id=request_id(), actor="clerk", reason="void")
    )
    assert [(d.permit_id, d.quantity) for d in result.released] == [(p.permit_id, 1500.0)]
    run(cache.snapshot([p.permit_id]))
    released = cache.cached([p.permit_id])[p.permit_id]
    assert released is not None and released.balance(1) == LineBalance()


def test_the_cache_keeps_at_most_its_bound_dropping_the_oldest(registry: Registry) -> None:
    ids = [f"NFQS-2026-001{n:03d}" for n in range(130)]
    run(registry.service.import_rows([row(n, quarantine(pid)) for n, pid in enumerate(ids[:10], 2)], strict=False))
    cache = PermitCache(registry.store, max_entries=100)
    run(cache.snapshot(ids[:100]))  # ten registered, ninety remembered as unknown
    assert cache.missing(ids[:100]) == []
    run(cache.snapshot(ids[100:130]))
    assert cache.missing(ids) == ids[:30]  # the thirty loaded first made room
    assert len(ids) - len(cache.missing(ids)) == 100
    # An evicted permit loads again, as it is now.
    run(cache.snapshot(ids[:1]))
    state = cache.cached(ids[:1])[ids[0]]
    assert state is not None and state.permit.permit_id == ids[0]
    assert len(ids) - len(cache.missing(ids)) == 100


def test_a_change_polled_while_its_permit_loads_is_not_lost(registry: Registry, other_process: PermitService) -> None:
    p = quarantine("NFQS-2026-001201")
    registry.submit(p)
    cache = registry.cache
    cache.poll()

    def revoked_and_polled_meanwhile() -> None:
        run(other_process.revoke(p.permit_id, request_id=request_id(), actor="nfqs", reason="forged papers"))
        cache.poll()  # the reload loop's thread

    cache.invalidate([p.permit_id])  # writes read a permit back into memory; make this call load it
    registry.store.during_load = revoked_and_polled_meanwhile
    run(cache.snapshot([p.permit_id]))
    cache.poll()
    run(cache.snapshot([p.permit_id]))
    state = cache.cached([p.permit_id])[p.permit_id]
    assert state is not None and state.permit.status == PermitStatus.REVOKED


@dataclass
class _FixedTable:
    current: ControlledGoodsTable


def test_a_draw_committed_while_a_permit_loads_does_not_make_it_unknown(
    registry: Registry, ledger: SqlAssessmentStore
) -> None:
    cited, busy = quarantine("NFQS-2026-001301"), quarantine("NFQS-2026-001302")
    registry.submit(cited)
    registry.submit(busy)
    cache = registry.cache
    run(cache.snapshot([busy.permit_id]))
    screen = PermitScreen(cache, _FixedTable(ControlledGoodsTable("cg-test", [])), PermitCheckConfig())
    beef = builders.item(
        hs_code="0201300000",
        quantity=1200.0,
        quantity_unit="KGM",
        origin_country="AU",
        permit_references=(cited.permit_id,),
    )
    declaration = builders.declaration(items=(beef,))
    # Another declaration's draw commits on the writer thread while this call loads its permit.
    registry.store.during_load = lambda: draw(ledger, "26020-IM-0013001", busy.permit_id, 100.0)
    snapshot = run(screen.prepare([declaration]))
    result = screen.check(declaration, snapshot, NOW)
    assert PERMIT_UNKNOWN not in {hit.rule_id for hit in result.hits}
    assert [(d.permit_id, d.quantity) for d in result.claim.draws] == [(cited.permit_id, 1200.0)]


def test_registered_permits_are_in_memory_before_their_first_citation(
    registry: Registry, other_process: PermitService
) -> None:
    """Most certificates are cited once, so a write, a poll and start-up all read permits in, not just drop them."""
    mine, theirs = quarantine("NFQS-2026-001401"), quarantine("NFQS-2026-001402")
    registry.submit(mine)
    assert registry.cache.missing([mine.permit_id]) == []
    run(other_process.submit(theirs, request_id=request_id(), actor="nfqs"))
    registry.cache.poll()
    state = registry.cache.cached([theirs.permit_id])[theirs.permit_id]
    assert state is not None and state.permit.version == 1

    revoked = quarantine("NFQS-2026-001403")
    registry.submit(revoked)
    run(registry.service.revoke(revoked.permit_id, request_id=request_id(), actor="nfqs", reason="recalled"))
    fresh = PermitCache(registry.store)
    assert fresh.warm(NOW, 1000) == 2
    assert fresh.missing([mine.permit_id, theirs.permit_id]) == []
    assert fresh.missing([revoked.permit_id]) == [revoked.permit_id], "revoked permits are not warmed"
