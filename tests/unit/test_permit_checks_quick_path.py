"""The permit checks' quick path (_usable_line) decides exactly as the full checks do, on random input.

The quick path answers the common case without building messages; whenever it says no, the full
check decides. This keeps the two from drifting apart: forcing the full check everywhere must give
the same hits, draws and facts."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from unittest.mock import patch

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from risk_service.domain.declaration import DeclarationType, Party
from risk_service.domain.permits import checks as new_checks
from risk_service.domain.permits.controlled_goods import ControlledGoodsEntry, ControlledGoodsTable, EntryConditions
from risk_service.domain.permits.model import LineBalance, PermitGoodsLine, PermitState, PermitStatus, PermitType
from tests.builders import LODGED, declaration, item
from tests.permit_builders import permit

CONFIG = new_checks.PermitCheckConfig()
TABLE = ControlledGoodsTable(
    "t",
    [
        ControlledGoodsEntry("8471", PermitType.IMPORT_LICENCE, "MOTIE", "computers", EntryConditions()),
        ControlledGoodsEntry(
            "02",
            PermitType.QUARANTINE_CERTIFICATE,
            "NFQS",
            "meat",
            EntryConditions(min_quantity=10.0, quantity_unit="KGM"),
        ),
    ],
)

hs_codes = st.sampled_from(["8471300000", "847130", "0201100000", "020110", "8504400000", "84"])
prefixes = st.sampled_from(["84", "8471", "847130", "8471300000", "02", "0201", "020110", "85", "9", "84713000001"])
units = st.sampled_from(["", "KGM", "TNE", "NAR", "PCE", "LTR", "XYZ", "DZN"])
limits = st.one_of(st.none(), st.sampled_from([0.0, 1.0, 50.0, 1000.0, 1e308]))
offsets = st.one_of(st.none(), st.sampled_from([-400, -1, 0, 1, 400]).map(lambda d: LODGED + timedelta(days=d)))


@st.composite
def lines(draw: st.DrawFn) -> tuple[PermitGoodsLine, ...]:
    n = draw(st.integers(0, 3))
    return tuple(PermitGoodsLine(i + 1, draw(prefixes), "", draw(units), draw(limits), draw(limits)) for i in range(n))


@st.composite
def states(draw: st.DrawFn, permit_id: str) -> PermitState | None:
    if draw(st.integers(0, 6)) == 0:
        return None
    p = permit(
        permit_id=permit_id,
        type=draw(st.sampled_from([PermitType.IMPORT_LICENCE, PermitType.QUARANTINE_CERTIFICATE])),
        issuing_agency=draw(st.sampled_from(["MOTIE", "NFQS"])),
        holder_id=draw(st.sampled_from(["IMP-0001", "EXP-0001", "X"])),
        goods_lines=draw(lines()),
        valid_from=draw(offsets),
        valid_to=draw(offsets),
        allowed_origin_countries=draw(st.sampled_from([(), ("CN",), ("US", "DE")])),
        allowed_customs_offices=draw(st.sampled_from([(), ("020",), ("030",)])),
        single_use=draw(st.booleans()),
        status=draw(st.sampled_from(list(PermitStatus))),
    )
    balances = {
        ln.line_number: LineBalance(draw(st.sampled_from([0.0, 5.0, 999.0])), draw(st.sampled_from([0.0, 10.0])))
        for ln in p.goods_lines
        if draw(st.booleans())
    }
    return PermitState(p, balances)


@st.composite
def cases(draw: st.DrawFn):  # type: ignore[no-untyped-def]
    ids = ["P-1", "P-2", "P-3"]
    permits = {pid: draw(states(pid)) for pid in ids}
    items = tuple(
        item(
            item_number=n + 1,
            hs_code=draw(hs_codes),
            quantity=draw(st.sampled_from([0.0, 1.0, 12.0, 100.0, 1e308])),
            quantity_unit=draw(units),
            net_mass_kg=draw(st.sampled_from([0.0, 5.0, 180.0])),
            customs_value=draw(st.sampled_from([0.0, 1.0, 3_400_000.0])),
            origin_country=draw(st.sampled_from(["CN", "US", "KR"])),
            permit_references=tuple(draw(st.lists(st.sampled_from([*ids, "P-9"]), max_size=4))),
        )
        for n in range(draw(st.integers(1, 3)))
    )
    d = declaration(
        items=items,
        type=draw(st.sampled_from([DeclarationType.IMPORT, DeclarationType.EXPORT, DeclarationType.TRANSIT])),
        customs_office=draw(st.sampled_from(["020", "030"])),
        importer=Party(draw(st.sampled_from(["IMP-0001", "X"])), "i"),
        exporter=Party(draw(st.sampled_from(["EXP-0001", "X"])), "e"),
        lodgement_time=draw(st.sampled_from([LODGED, None, LODGED.replace(tzinfo=None)])),
    )
    return d, permits


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(cases())
def test_the_quick_path_decides_as_the_full_checks_do(case) -> None:  # type: ignore[no-untyped-def]
    d, permits = case
    on = LODGED + timedelta(hours=3)
    quick = new_checks.check_declaration(d, permits, TABLE, CONFIG, on=on)
    with patch.object(new_checks, "_usable_line", lambda *args: None):
        full = new_checks.check_declaration(d, permits, TABLE, CONFIG, on=on)
    assert repr(quick.hits) == repr(full.hits)
    assert repr(quick.claim) == repr(full.claim)
    assert repr(quick.item_facts) == repr(full.item_facts)


def test_replace_of_permit_state_matches() -> None:
    state = PermitState(permit(), {1: LineBalance(1.0, 2.0)})
    assert replace(state, balances={2: LineBalance()}) == PermitState(state.permit, {2: LineBalance()})
