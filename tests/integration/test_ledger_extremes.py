"""The ledger at its edges on both databases: totals past 1e308, hundreds of permits at once, numeric-looking ids."""

from __future__ import annotations

import pytest

from risk_service.domain.permits.model import LineBalance
from tests.integration.test_ledger import Ledger, claim, draw, ledger, record  # noqa: F401
from tests.integration.test_permit_store import change, goods_line, make_permit, put, submit


def test_huge_finite_values_on_a_line_without_a_value_limit_are_stored(ledger: Ledger) -> None:  # noqa: F811
    """Validation accepts any finite customs value; two items of 1e308 make the line's drawn value inf.

    The old Core statements stored inf (SQLite REAL, PostgreSQL 'Infinity'); json.dumps(allow_nan=False)
    refuses it, so on PostgreSQL the writer transaction raises ValueError.
    """
    submit(ledger.permits, make_permit("P-1", goods_line(1, quantity=100.0, value=None)))

    (result,) = ledger.save(
        record("D-1", 1, claim(draw("P-1", 1.0, value=1e308, item=1), draw("P-1", 1.0, value=1e308, item=2)))
    )

    assert result.created
    assert ledger.state("P-1").balances[1].drawn_quantity == 2.0


def test_many_permits_and_declarations_in_one_transaction(ledger: Ledger) -> None:  # noqa: F811
    """Over the old IN-list chunk (500): 700 declarations and permits in one batch, then all amended."""
    n = 700
    ids = [f"P-{i:04d}" for i in range(n)]
    outcomes = ledger.permits.apply([change(pid, put(make_permit(pid))) for pid in ids])
    assert all(o.error is None for o in outcomes)

    first = ledger.save(*(record(f"D-{i:04d}", 1, claim(draw(ids[i], 1.0))) for i in range(n)))
    assert all(r.created for r in first)
    amended = ledger.save(
        *(
            record(f"D-{i:04d}", 2, claim(draw(ids[i], 2.0, item=1), draw(ids[(i + 1) % n], 1.0, item=2)))
            for i in range(n)
        )
    )
    assert all(r.created for r in amended)
    states = ledger.permits.get_many(ids)
    assert {pid: s.balances for pid, s in states.items()} == {pid: {1: LineBalance(3.0, 0.0)} for pid in ids}
    assert len(ledger.draws()) == 2 * n


@pytest.mark.parametrize(
    ("drawn_from", "look_alike"), [("00123", "123"), ("1e5", "100000"), ("1.0", "1"), ("0x10", "16")]
)
def test_numeric_looking_permit_ids_stay_text(ledger: Ledger, drawn_from: str, look_alike: str) -> None:  # noqa: F811
    submit(ledger.permits, make_permit(look_alike))
    submit(ledger.permits, make_permit(drawn_from))

    (result,) = ledger.save(record("D-1", 1, claim(draw(drawn_from, 7.0))))

    assert result.created and not any(h.rule_id.startswith("PERMIT_") for h in result.assessment.rule_hits)
    assert ledger.state(drawn_from).balances == {1: LineBalance(7.0, 0.0)}
    assert ledger.state(look_alike).balances == {}
    (result,) = ledger.save(record("D-1", 2, claim(draw(look_alike, 3.0))))
    assert ledger.state(drawn_from).balances == {1: LineBalance(0.0, 0.0)} or ledger.state(drawn_from).balances == {}
    assert ledger.state(look_alike).balances == {1: LineBalance(3.0, 0.0)}
