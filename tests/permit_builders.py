"""Builders of valid permits and permit states that tests tweak one field at a time."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from risk_service.domain.permits.model import LineBalance, Permit, PermitGoodsLine, PermitState, PermitType

VALID_FROM = datetime(2026, 1, 1, tzinfo=UTC)
VALID_TO = datetime(2027, 1, 1, tzinfo=UTC)


def goods_line(**overrides: Any) -> PermitGoodsLine:
    """Line 1: laptops (HS 8471), 1000 units, no value limit; matches builders.item()."""
    base = PermitGoodsLine(
        line_number=1,
        hs_prefix="8471",
        description="Portable computers",
        unit="NAR",
        authorised_quantity=1000.0,
        authorised_value=None,
    )
    return replace(base, **overrides)


def permit(**overrides: Any) -> Permit:
    """An active import licence held by builders.declaration()'s importer, valid through 2026."""
    base = Permit(
        permit_id="P-1",
        issuing_agency="MOTIE",
        type=PermitType.IMPORT_LICENCE,
        holder_id="IMP-0001",
        goods_lines=(goods_line(),),
        valid_from=VALID_FROM,
        valid_to=VALID_TO,
    )
    return replace(base, **overrides)


def permit_state(p: Permit | None = None, **drawn: LineBalance) -> PermitState:
    """The permit with balances; pass line_1=LineBalance(...) to set what line 1 has drawn."""
    balances = {int(key.removeprefix("line_")): balance for key, balance in drawn.items()}
    return PermitState(p if p is not None else permit(), balances)
