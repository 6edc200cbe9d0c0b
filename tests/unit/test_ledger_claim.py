"""A ledger claim derives its permit ids and per-line sums once; they stay out of equality and follow replace()."""

from __future__ import annotations

import dataclasses

from risk_service.domain.permits.ledger import LedgerClaim, PermitDraw


def test_per_line_sums_add_every_item_drawing_from_the_line() -> None:
    claim = LedgerClaim(
        draws=(
            PermitDraw("P-1", 1, 1, 10.0, 100.0),
            PermitDraw("P-1", 1, 2, 2.5, 40.0),
            PermitDraw("P-1", 2, 3, 0.0, 7.0),
            PermitDraw("P-2", 1, 3, 1.0, 0.0),
        ),
        single_use_permits=("P-3",),
    )
    assert claim.by_line == {("P-1", 1): (12.5, 140.0), ("P-1", 2): (0.0, 7.0), ("P-2", 1): (1.0, 0.0)}
    assert claim.permit_ids == frozenset({"P-1", "P-2", "P-3"})


def test_an_empty_claim_claims_nothing() -> None:
    assert LedgerClaim().by_line == {}
    assert LedgerClaim().permit_ids == frozenset()


def test_derived_fields_are_not_compared_and_are_rebuilt_by_replace() -> None:
    one = LedgerClaim(draws=(PermitDraw("P-1", 1, 1, 1.0, 1.0),))
    assert one == LedgerClaim(draws=(PermitDraw("P-1", 1, 1, 1.0, 1.0),))
    assert "by_line" not in repr(one)
    other = dataclasses.replace(one, draws=(PermitDraw("P-2", 1, 1, 3.0, 0.0),))
    assert other.permit_ids == frozenset({"P-2"})
    assert other.by_line == {("P-2", 1): (3.0, 0.0)}
