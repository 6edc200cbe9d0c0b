"""Permit cross-checks: each reason code on real permits and declarations, ledger refusals, and properties."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risk_service.domain.assessment import Assessment, Channel, ModelStatus, RuleHit
from risk_service.domain.declaration import Declaration, DeclarationType, GoodsItem, Party
from risk_service.domain.permits.checks import (
    DEFAULTS,
    PERMIT_ALREADY_USED,
    PERMIT_BALANCE_EXCEEDED,
    PERMIT_DECLARATION_CANCELLED,
    PERMIT_EXPIRED,
    PERMIT_GOODS_NOT_COVERED,
    PERMIT_HOLDER_MISMATCH,
    PERMIT_MISSING,
    PERMIT_NOT_USABLE,
    PERMIT_NOT_YET_VALID,
    PERMIT_OFFICE_NOT_ALLOWED,
    PERMIT_ORIGIN_NOT_ALLOWED,
    PERMIT_REVOKED,
    PERMIT_SUSPENDED,
    PERMIT_UNIT_NOT_CONVERTIBLE,
    PERMIT_UNKNOWN,
    PermitCheckConfig,
    PermitCheckResult,
    check_declaration,
    flag_refusals,
    item_quantity,
)
from risk_service.domain.permits.controlled_goods import (
    ControlledGoodsEntry,
    ControlledGoodsTable,
    EntryConditions,
)
from risk_service.domain.permits.ledger import DrawRefusal, LedgerClaim, PermitDraw, RefusalKind
from risk_service.domain.permits.model import (
    LineBalance,
    PermitState,
    PermitStatus,
    PermitType,
)
from risk_service.domain.policy import SelectionPolicy, combine_scores
from tests import builders
from tests.builders import LODGED, declaration, item
from tests.permit_builders import goods_line, permit, permit_state

CONFIG = PermitCheckConfig()
NO_CONTROL = SelectionPolicy(random_control_rate=0.0)
#: Laptops need an import licence from MOTIE; the builders' item is a laptop.
TABLE = ControlledGoodsTable(
    "t1",
    [
        ControlledGoodsEntry(
            "8471",
            PermitType.IMPORT_LICENCE,
            "MOTIE",
            "Computers: import licence",
            EntryConditions(procedures=frozenset({DeclarationType.IMPORT})),
        )
    ],
)
EMPTY = ControlledGoodsTable("empty", [])


def _check(d: Declaration, *states: PermitState, table: ControlledGoodsTable = EMPTY) -> PermitCheckResult:
    return check_declaration(d, {s.permit.permit_id: s for s in states}, table, CONFIG)


def _citing(*refs: str, **overrides: Any) -> Declaration:
    return declaration(items=(item(permit_references=refs),), **overrides)


def _only_hit(result: PermitCheckResult, reason: str) -> RuleHit:
    assert [h.rule_id for h in result.hits] == [reason], result.hits
    hit = result.hits[0]
    assert (hit.min_channel, hit.weight) == DEFAULTS[reason]
    return hit


def _failed(result: PermitCheckResult, reason: str, message: str) -> None:
    hit = _only_hit(result, reason)
    assert hit.message == message
    assert hit.fields == ("declaration.items[0].permit_references[0]",)
    assert hit.item_numbers == (1,)
    assert result.claim == LedgerClaim()


# -- a valid permit -----------------------------------------------------------------------------


def test_a_valid_permit_raises_no_hit_and_draws_the_item() -> None:
    result = _check(_citing("P-1"), permit_state(), table=TABLE)
    assert result.hits == ()
    assert result.claim == LedgerClaim(draws=(PermitDraw("P-1", 1, 1, 100.0, 3_400_000.0),))


def test_a_permit_is_valid_from_its_start_and_until_just_before_its_end() -> None:
    starts = permit_state(permit(valid_from=LODGED))
    assert _check(_citing("P-1"), starts).hits == ()
    ends = permit_state(permit(valid_to=LODGED))
    assert [h.rule_id for h in _check(_citing("P-1"), ends).hits] == [PERMIT_EXPIRED]


# -- one test per reason code -------------------------------------------------------------------


def test_missing_permit_is_flagged() -> None:
    d = declaration(items=(item(), item(item_number=2, hs_code="8471410000")))
    hit = _only_hit(_check(d, table=TABLE), PERMIT_MISSING)
    assert hit.message == (
        "No IMPORT_LICENCE from MOTIE cited: item 1, HS 8471300000 (Computers: import licence); "
        "item 2, HS 8471410000 (Computers: import licence)"
    )
    assert hit.fields == ("declaration.items[0].permit_references", "declaration.items[1].permit_references")
    assert hit.item_numbers == (1, 2)


def test_a_permit_of_another_type_or_agency_does_not_meet_a_requirement() -> None:
    other_type = permit_state(permit(type=PermitType.CONFORMITY_CERTIFICATE))
    assert [h.rule_id for h in _check(_citing("P-1"), other_type, table=TABLE).hits] == [PERMIT_MISSING]
    other_agency = permit_state(permit(issuing_agency="KATS"))
    assert [h.rule_id for h in _check(_citing("P-1"), other_agency, table=TABLE).hits] == [PERMIT_MISSING]


def test_a_requirement_met_by_a_permit_that_fails_a_check_is_flagged_once_for_the_failure() -> None:
    expired = permit_state(permit(valid_to=datetime(2026, 10, 1, tzinfo=UTC)))
    assert [h.rule_id for h in _check(_citing("P-1"), expired, table=TABLE).hits] == [PERMIT_EXPIRED]


def test_a_requirement_for_imports_is_not_asked_of_exports() -> None:
    d = _citing(type=DeclarationType.EXPORT)
    assert _check(d, table=TABLE).hits == ()


@pytest.mark.parametrize("known", [{}, {"P-9": None}], ids=["absent", "none"])
def test_unknown_permit_is_flagged(known: dict[str, PermitState | None]) -> None:
    result = check_declaration(_citing("P-9"), known, EMPTY, CONFIG)
    _failed(result, PERMIT_UNKNOWN, "Permit P-9 is not in the permit registry (cited on item 1)")
    assert math.isnan(result.item_facts[0].days_to_expiry)


def test_suspended_permit_is_flagged() -> None:
    suspended = permit_state(permit(status=PermitStatus.SUSPENDED))
    _failed(
        _check(_citing("P-1"), suspended),
        PERMIT_SUSPENDED,
        "Permit P-1 (IMPORT_LICENCE, MOTIE) is suspended (cited on item 1)",
    )


def test_revoked_permit_is_flagged() -> None:
    revoked = permit_state(permit(status=PermitStatus.REVOKED))
    _failed(
        _check(_citing("P-1"), revoked),
        PERMIT_REVOKED,
        "Permit P-1 (IMPORT_LICENCE, MOTIE) is revoked (cited on item 1)",
    )


def test_expired_permit_is_flagged() -> None:
    expired = permit_state(permit(valid_to=datetime(2026, 10, 1, tzinfo=UTC)))
    _failed(
        _check(_citing("P-1"), expired),
        PERMIT_EXPIRED,
        "Permit P-1 (IMPORT_LICENCE, MOTIE) expired on 2026-10-01, before lodgement on 2026-11-20 (cited on item 1)",
    )


def test_expiry_on_the_lodgement_day_shows_the_times() -> None:
    expired = permit_state(permit(valid_to=LODGED - timedelta(hours=2)))
    hit = _check(_citing("P-1"), expired).hits[0]
    assert "expired on 2026-11-20 07:30 UTC, before lodgement on 2026-11-20 09:30 UTC" in hit.message


def test_not_yet_valid_permit_is_flagged() -> None:
    future = permit_state(permit(valid_from=datetime(2026, 12, 1, tzinfo=UTC)))
    _failed(
        _check(_citing("P-1"), future),
        PERMIT_NOT_YET_VALID,
        "Permit P-1 (IMPORT_LICENCE, MOTIE) is valid from 2026-12-01, after lodgement on 2026-11-20 (cited on item 1)",
    )


def test_holder_mismatch_is_flagged_against_the_importer() -> None:
    someone_else = permit_state(permit(holder_id="IMP-0002"))
    _failed(
        _check(_citing("P-1"), someone_else),
        PERMIT_HOLDER_MISMATCH,
        "Permit P-1 (IMPORT_LICENCE, MOTIE) is held by IMP-0002, not the importer IMP-0001 (cited on item 1)",
    )


def test_an_export_permit_must_be_held_by_the_exporter() -> None:
    export_licence = permit_state(permit(type=PermitType.EXPORT_LICENCE, holder_id="EXP-0001"))
    d = _citing("P-1", type=DeclarationType.EXPORT, exporter=Party("EXP-0001"))
    assert _check(d, export_licence).hits == ()
    hit = _only_hit(_check(d, permit_state()), PERMIT_HOLDER_MISMATCH)
    assert "is held by IMP-0001, not the exporter EXP-0001" in hit.message


def test_transit_permits_are_held_by_the_importer() -> None:
    assert _check(_citing("P-1", type=DeclarationType.TRANSIT), permit_state()).hits == ()


def test_goods_not_covered_are_flagged() -> None:
    phones = permit_state(
        permit(goods_lines=(goods_line(hs_prefix="8517"), goods_line(line_number=2, hs_prefix="8518")))
    )
    _failed(
        _check(_citing("P-1"), phones),
        PERMIT_GOODS_NOT_COVERED,
        "Permit P-1 (IMPORT_LICENCE, MOTIE) covers HS 8517, 8518 only: not HS 8471300000 (item 1)",
    )


def test_the_longest_covering_prefix_is_the_line_drawn_from() -> None:
    lines = (
        goods_line(hs_prefix="84"),
        goods_line(line_number=2, hs_prefix="847130"),
        goods_line(line_number=3, hs_prefix="8471"),
    )
    result = _check(_citing("P-1"), permit_state(permit(goods_lines=lines)))
    assert [d.line_number for d in result.claim.draws] == [2]


def test_origin_not_allowed_is_flagged() -> None:
    korea_only = permit_state(permit(allowed_origin_countries=("KR", "VN")))
    _failed(
        _check(_citing("P-1"), korea_only),
        PERMIT_ORIGIN_NOT_ALLOWED,
        "Permit P-1 (IMPORT_LICENCE, MOTIE) allows origins KR, VN only: not CN (item 1)",
    )


def test_office_not_allowed_is_flagged() -> None:
    busan_only = permit_state(permit(allowed_customs_offices=("030",)))
    _failed(
        _check(_citing("P-1"), busan_only),
        PERMIT_OFFICE_NOT_ALLOWED,
        "Permit P-1 (IMPORT_LICENCE, MOTIE) may be used at customs offices 030 only, not 020 (cited on item 1)",
    )
    assert _check(_citing("P-1"), permit_state(permit(allowed_customs_offices=("030", "020")))).hits == ()


def test_unit_not_convertible_is_flagged() -> None:
    litres = permit_state(permit(goods_lines=(goods_line(unit="LTR"),)))
    _failed(
        _check(_citing("P-1"), litres),
        PERMIT_UNIT_NOT_CONVERTIBLE,
        "Permit P-1 (IMPORT_LICENCE, MOTIE): item quantities do not convert to the authorised unit: "
        "item 1 has 100 NAR, line 1 is in LTR",
    )


def test_a_line_limiting_only_value_needs_no_convertible_quantity() -> None:
    value_only = permit_state(
        permit(goods_lines=(goods_line(unit="", authorised_quantity=None, authorised_value=1e7),))
    )
    result = _check(declaration(items=(item(quantity_unit="BX", permit_references=("P-1",)),)), value_only)
    assert result.hits == ()
    assert result.claim.draws == (PermitDraw("P-1", 1, 1, 0.0, 3_400_000.0),)


# -- draws and claims ---------------------------------------------------------------------------


def test_a_mass_line_draws_the_net_mass_of_an_item_counted_in_pieces() -> None:
    tonnes = permit_state(permit(goods_lines=(goods_line(unit="TNE", authorised_quantity=2.0),)))
    result = _check(_citing("P-1"), tonnes)
    assert result.hits == ()
    assert result.claim.draws == (PermitDraw("P-1", 1, 1, 0.18, 3_400_000.0),)


def test_item_quantity_converts_the_declared_unit_before_falling_back_to_net_mass() -> None:
    pairs = item(quantity=6.0, quantity_unit="PR", net_mass_kg=2.5)
    assert item_quantity(pairs, "PCE") == 12.0
    assert item_quantity(pairs, "GRM") == 2500.0
    assert item_quantity(pairs, "LTR") is None
    assert item_quantity(item(quantity=3.0, quantity_unit="TNE", net_mass_kg=9.0), "KGM") == 3000.0


def test_a_line_without_limits_covers_the_goods_but_draws_nothing() -> None:
    unlimited = permit_state(permit(goods_lines=(goods_line(unit="", authorised_quantity=None),)))
    result = _check(_citing("P-1"), unlimited)
    assert result.hits == ()
    assert result.claim == LedgerClaim()


def test_a_single_use_permit_is_claimed_once_for_the_declaration() -> None:
    single = permit_state(permit(single_use=True))
    d = declaration(items=(item(permit_references=("P-1",)), item(item_number=2, permit_references=("P-1", "P-1"))))
    result = _check(d, single)
    assert result.claim.single_use_permits == ("P-1",)
    assert [(x.item_number, x.quantity) for x in result.claim.draws] == [(1, 100.0), (2, 100.0)]


def test_a_permit_that_fails_a_check_is_neither_drawn_nor_used() -> None:
    revoked_single = permit_state(permit(single_use=True, status=PermitStatus.REVOKED))
    assert _check(_citing("P-1"), revoked_single).claim == LedgerClaim()


def test_a_permit_failing_for_one_item_still_draws_for_another() -> None:
    korea_only = permit_state(permit(allowed_origin_countries=("KR",)))
    d = declaration(
        items=(item(permit_references=("P-1",)), item(item_number=2, origin_country="KR", permit_references=("P-1",)))
    )
    result = _check(d, korea_only)
    assert [h.item_numbers for h in result.hits] == [(1,)]
    assert [x.item_number for x in result.claim.draws] == [2]


# -- grouping, dates, facts, config -------------------------------------------------------------


def test_one_hit_per_reason_and_permit_lists_every_item() -> None:
    d = declaration(
        items=(
            item(permit_references=("P-8", "P-9")),
            item(item_number=2, permit_references=("P-9",)),
            item(item_number=3, permit_references=()),
        )
    )
    hits = _check(d).hits
    assert [(h.rule_id, h.item_numbers, h.fields) for h in hits] == [
        (PERMIT_UNKNOWN, (1,), ("declaration.items[0].permit_references[0]",)),
        (
            PERMIT_UNKNOWN,
            (1, 2),
            ("declaration.items[0].permit_references[1]", "declaration.items[1].permit_references[0]"),
        ),
    ]
    assert hits[1].message == "Permit P-9 is not in the permit registry (cited on items 1, 2)"


def test_a_permit_failing_several_checks_gets_a_hit_for_each() -> None:
    bad = permit_state(permit(status=PermitStatus.SUSPENDED, holder_id="X", allowed_origin_countries=("KR",)))
    assert [h.rule_id for h in _check(_citing("P-1"), bad).hits] == [
        PERMIT_SUSPENDED,
        PERMIT_HOLDER_MISMATCH,
        PERMIT_ORIGIN_NOT_ALLOWED,
    ]


def test_without_a_lodgement_time_the_given_date_is_used() -> None:
    d = _citing("P-1", lodgement_time=None)
    states = {"P-1": permit_state()}
    assert check_declaration(d, states, EMPTY, CONFIG, datetime(2026, 6, 1, tzinfo=UTC)).hits == ()
    late = check_declaration(d, states, EMPTY, CONFIG, datetime(2027, 6, 1, tzinfo=UTC))
    assert [h.rule_id for h in late.hits] == [PERMIT_EXPIRED]


def test_a_naive_validity_time_is_read_as_utc() -> None:
    naive = permit_state(permit(valid_to=datetime(2026, 10, 1)))
    assert [h.rule_id for h in _check(_citing("P-1"), naive).hits] == [PERMIT_EXPIRED]


def test_item_facts_report_balance_used_and_days_to_expiry() -> None:
    half_drawn = permit_state(line_1=LineBalance(drawn_quantity=250.0))
    value_only = permit_state(
        permit(
            permit_id="P-2",
            goods_lines=(goods_line(unit="", authorised_quantity=None, authorised_value=10_000_000.0),),
            valid_to=LODGED + timedelta(days=10, hours=12),
        ),
        line_1=LineBalance(drawn_value=8_000_000.0),
    )
    d = declaration(items=(item(permit_references=("P-1", "P-2")), item(item_number=2)))
    first, second = _check(d, half_drawn, value_only).item_facts
    assert first.balance_used == pytest.approx(0.8)
    assert first.days_to_expiry == pytest.approx(10.5)
    assert math.isnan(second.balance_used) and math.isnan(second.days_to_expiry)


def test_days_to_expiry_counts_permits_that_fail_other_checks_but_balance_only_usable_ones() -> None:
    wrong_holder = permit_state(permit(holder_id="X"), line_1=LineBalance(drawn_quantity=900.0))
    (facts,) = _check(_citing("P-1"), wrong_holder).item_facts
    assert math.isnan(facts.balance_used)
    assert facts.days_to_expiry == pytest.approx((datetime(2027, 1, 1, tzinfo=UTC) - LODGED).total_seconds() / 86400)


def test_config_overrides_channel_and_weight_per_reason() -> None:
    config = PermitCheckConfig({PERMIT_UNKNOWN: (Channel.RED, 0.9)})
    (hit,) = check_declaration(_citing("P-9"), {}, EMPTY, config).hits
    assert (hit.min_channel, hit.weight) == (Channel.RED, 0.9)
    assert config.weight(PERMIT_MISSING) == DEFAULTS[PERMIT_MISSING][1]


@pytest.mark.parametrize(
    "reasons",
    [{"PERMIT_TYPO": (Channel.RED, 0.5)}, {PERMIT_UNKNOWN: (Channel.RED, 1.5)}, {PERMIT_UNKNOWN: (None, math.nan)}],
)
def test_config_refuses_unknown_codes_and_bad_weights(reasons: dict[str, tuple[Channel | None, float]]) -> None:
    with pytest.raises(ValueError):
        PermitCheckConfig(reasons)


# -- ledger refusals ----------------------------------------------------------------------------


def _assessment(d: Declaration, **overrides: Any) -> Assessment:
    fields = {"model_score": 0.05, "risk_score": 0.05, "model_status": ModelStatus.SCORED, **overrides}
    return builders.assessment(declaration_id=d.declaration_id, declaration_version=d.version, **fields)


_BALANCE = DrawRefusal(
    RefusalKind.BALANCE,
    "P-1",
    line_number=1,
    item_numbers=(1,),
    unit="KGM",
    requested_quantity=120.0,
    remaining_quantity=80.0,
    requested_value=1_000.0,
    remaining_value=None,
)


def test_balance_exceeded_is_flagged_with_both_figures() -> None:
    d = _citing("P-1")
    flagged = flag_refusals(_assessment(d), d, [_BALANCE], CONFIG, NO_CONTROL)
    (hit,) = flagged.rule_hits
    assert hit.rule_id == PERMIT_BALANCE_EXCEEDED
    assert hit.message == "Permit P-1 line 1: 120 KGM requested, 80 KGM remain (item 1)"
    assert hit.fields == ("declaration.items[0].permit_references[0]",)
    assert flagged.channel == Channel.RED
    assert flagged.risk_score == pytest.approx(combine_scores(0.05, [0.4]))


def test_balance_messages_show_what_was_authorised_when_the_permit_is_known() -> None:
    d = _citing("P-1")
    states = {"P-1": permit_state(permit(goods_lines=(goods_line(unit="KGM", authorised_quantity=1000.0),)))}
    (hit,) = flag_refusals(_assessment(d), d, [_BALANCE], CONFIG, NO_CONTROL, states).rule_hits
    assert hit.message == "Permit P-1 line 1: 120 KGM requested, 80 KGM remain of 1000 KGM (item 1)"


def test_a_value_balance_refusal_shows_the_values() -> None:
    d = _citing("P-1")
    refusal = replace(_BALANCE, remaining_quantity=None, requested_value=5_000_000.0, remaining_value=1_250_000.0)
    (hit,) = flag_refusals(_assessment(d), d, [refusal], CONFIG, NO_CONTROL).rule_hits
    assert hit.message == "Permit P-1 line 1: value 5,000,000 requested, 1,250,000 remain (item 1)"


def test_already_used_single_use_permit_is_flagged() -> None:
    d = declaration(items=(item(permit_references=("P-0", "P-1")), item(item_number=2, permit_references=("P-1",))))
    refusal = DrawRefusal(RefusalKind.ALREADY_USED, "P-1", used_by="DEC-7")
    (hit,) = flag_refusals(_assessment(d), d, [refusal], CONFIG, NO_CONTROL, {"P-1": permit_state()}).rule_hits
    assert hit.rule_id == PERMIT_ALREADY_USED
    assert hit.message == (
        "Permit P-1 (IMPORT_LICENCE, MOTIE) is single-use and was already used by declaration DEC-7 "
        "(cited on items 1, 2)"
    )
    assert hit.fields == ("declaration.items[0].permit_references[1]", "declaration.items[1].permit_references[0]")
    assert (hit.min_channel, hit.weight) == (Channel.RED, 0.5)


def test_a_permit_not_usable_at_settlement_is_flagged() -> None:
    d = _citing("P-1")
    refusal = DrawRefusal(RefusalKind.NOT_USABLE, "P-1", item_numbers=(1,))
    (hit,) = flag_refusals(_assessment(d), d, [refusal], CONFIG, NO_CONTROL).rule_hits
    assert hit.rule_id == PERMIT_NOT_USABLE
    assert hit.message == (
        "Permit P-1 was no longer usable (suspended, revoked or withdrawn) when drawn from (cited on item 1)"
    )
    assert (hit.min_channel, hit.weight) == (Channel.YELLOW, 0.3)


def test_flagging_keeps_earlier_hits_and_random_control_and_never_lowers_the_channel() -> None:
    d = _citing("P-1")
    earlier = RuleHit("UV-LOW", "low value", ("declaration.items[0].customs_value",), 0.3, None, (1,))
    control = _assessment(d, rule_hits=(earlier,), random_control=True, channel=Channel.RED)
    refusal = DrawRefusal(RefusalKind.NOT_USABLE, "P-1")
    flagged = flag_refusals(control, d, [refusal], CONFIG, NO_CONTROL)
    assert [h.rule_id for h in flagged.rule_hits] == ["UV-LOW", PERMIT_NOT_USABLE]
    assert flagged.random_control is True
    assert flagged.channel == Channel.RED
    assert flagged.risk_score == pytest.approx(combine_scores(0.05, [0.3, 0.3]))


def test_flagging_without_refusals_returns_the_assessment() -> None:
    d = _citing("P-1")
    assessment = _assessment(d)
    assert flag_refusals(assessment, d, [], CONFIG, NO_CONTROL) is assessment


# -- properties ---------------------------------------------------------------------------------

_IDS = ("P-1", "P-2", "P-3", "P-4")
_HS = ("8471300000", "8517130000", "0201300000", "847130", "", "xx")
_UNITS = ("NAR", "KGM", "TNE", "LTR", "PR", "BX", "")
_finite = st.floats(min_value=0, max_value=1e9, allow_nan=False)
_quantity = st.one_of(_finite, st.just(math.nan), st.just(math.inf))
_times = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC))


@st.composite
def _permit_states(draw: st.DrawFn, permit_id: str) -> PermitState | None:
    """A permit that suits builders.item(), with up to three defects (none often, so some permits draw)."""
    if draw(st.integers(0, 4)) == 0:
        return None
    prefixes = draw(
        st.lists(st.sampled_from(("8471", "84", "847130", "8517", "02")), unique=True, min_size=1, max_size=3)
    )
    lines = tuple(
        goods_line(
            line_number=n,
            hs_prefix=prefix,
            unit=draw(st.sampled_from(_UNITS)),
            authorised_quantity=draw(st.none() | _finite),
            authorised_value=draw(st.none() | _finite),
        )
        for n, prefix in enumerate(prefixes, start=1)
    )
    p = permit(permit_id=permit_id, goods_lines=lines, single_use=draw(st.booleans()))
    defects = draw(st.sets(st.sampled_from(("status", "holder", "from", "to", "origin", "office", "type")), max_size=3))
    if "status" in defects:
        p = replace(p, status=draw(st.sampled_from(list(PermitStatus))))
    if "holder" in defects:
        p = replace(p, holder_id=draw(st.sampled_from(("EXP-0001", "X"))))
    if "from" in defects:
        p = replace(p, valid_from=draw(st.none() | _times))
    if "to" in defects:
        p = replace(p, valid_to=draw(st.none() | _times))
    if "origin" in defects:
        p = replace(p, allowed_origin_countries=tuple(draw(st.lists(st.sampled_from(("CN", "KR", "US")), max_size=2))))
    if "office" in defects:
        p = replace(p, allowed_customs_offices=tuple(draw(st.lists(st.sampled_from(("020", "030")), max_size=2))))
    if "type" in defects:
        p = replace(p, type=PermitType.EXPORT_LICENCE)
    balances = {n: LineBalance(draw(_finite), draw(_finite)) for n in draw(st.lists(st.integers(1, 3), max_size=3))}
    return PermitState(p, balances)


@st.composite
def _items(draw: st.DrawFn, number: int) -> GoodsItem:
    """builders.item() citing some permits, with up to two defects."""
    goods = item(item_number=number, permit_references=tuple(draw(st.lists(st.sampled_from(_IDS), max_size=3))))
    defects = draw(st.sets(st.sampled_from(("hs", "unit", "quantity", "mass", "origin")), max_size=2))
    if "hs" in defects:
        goods = replace(goods, hs_code=draw(st.sampled_from(_HS)))
    if "unit" in defects:
        goods = replace(goods, quantity_unit=draw(st.sampled_from(_UNITS)))
    if "quantity" in defects:
        goods = replace(goods, quantity=draw(_quantity))
    if "mass" in defects:
        goods = replace(goods, net_mass_kg=draw(_quantity))
    if "origin" in defects:
        goods = replace(goods, origin_country=draw(st.sampled_from(("KR", "US", ""))))
    return goods


@st.composite
def _declarations(draw: st.DrawFn) -> Declaration:
    count = draw(st.integers(0, 4))
    d = declaration(items=tuple(draw(_items(n)) for n in range(1, count + 1)))
    defects = draw(st.sets(st.sampled_from(("type", "lodged", "office")), max_size=2))
    if "type" in defects:
        d = replace(d, type=draw(st.sampled_from(list(DeclarationType))))
    if "lodged" in defects:
        d = replace(d, lodgement_time=draw(st.none() | _times))
    if "office" in defects:
        d = replace(d, customs_office=draw(st.sampled_from(("030", ""))))
    return d


_PATH = re.compile(r"declaration\.items\[(\d+)\]\.permit_references\[(\d+)\]")
_TABLE = ControlledGoodsTable(
    "t",
    [
        ControlledGoodsEntry("84", PermitType.IMPORT_LICENCE, "MOTIE", "machines"),
        ControlledGoodsEntry(
            "0201", PermitType.EXPORT_LICENCE, "MOTIE", "beef", EntryConditions(min_quantity=5.0, quantity_unit="KGM")
        ),
    ],
)


@settings(max_examples=400, deadline=None)
@given(d=_declarations(), data=st.data())
def test_checks_never_raise_and_never_draw_from_a_permit_that_failed_a_check(
    d: Declaration, data: st.DataObject
) -> None:
    permits = {pid: data.draw(_permit_states(pid)) for pid in _IDS}
    result = check_declaration(d, permits, _TABLE, CONFIG, LODGED)
    assert len(result.item_facts) == len(d.items)
    failed: set[tuple[str, int]] = set()
    for hit in result.hits:
        assert hit.rule_id in DEFAULTS and hit.message
        for path in hit.fields:
            match = _PATH.fullmatch(path)
            if match is not None:
                cited = d.items[int(match.group(1))]
                failed.add((cited.permit_references[int(match.group(2))], cited.item_number))
    for draw in result.claim.draws:
        assert (draw.permit_id, draw.item_number) not in failed
        state = permits.get(draw.permit_id)
        assert state is not None and state.permit.status == PermitStatus.ACTIVE
    for permit_id in result.claim.single_use_permits:
        state = permits.get(permit_id)
        assert state is not None and state.permit.single_use
        citing = {i.item_number for i in d.items if permit_id in i.permit_references}
        assert citing - {n for pid, n in failed if pid == permit_id}


@settings(max_examples=200, deadline=None)
@given(
    d=_declarations(),
    refusals=st.lists(
        st.builds(
            DrawRefusal,
            kind=st.sampled_from(list(RefusalKind)),
            permit_id=st.sampled_from(_IDS),
            line_number=st.integers(0, 3),
            item_numbers=st.lists(st.integers(1, 5), max_size=3).map(tuple),
            unit=st.sampled_from(_UNITS),
            requested_quantity=_quantity,
            remaining_quantity=st.none() | _quantity,
            requested_value=_quantity,
            remaining_value=st.none() | _quantity,
            used_by=st.sampled_from(("", "DEC-1")),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_flagging_refusals_never_raises_and_never_lowers_the_channel(
    d: Declaration, refusals: list[DrawRefusal]
) -> None:
    assessment = _assessment(d, channel=Channel.YELLOW)
    flagged = flag_refusals(assessment, d, refusals, CONFIG, SelectionPolicy())
    assert flagged.channel >= Channel.YELLOW
    assert len(flagged.rule_hits) >= 1
    refusal_codes = {PERMIT_BALANCE_EXCEEDED, PERMIT_ALREADY_USED, PERMIT_NOT_USABLE, PERMIT_DECLARATION_CANCELLED}
    assert {h.rule_id for h in flagged.rule_hits} <= refusal_codes
