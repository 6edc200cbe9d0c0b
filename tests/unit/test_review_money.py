"""A recorded revenue comes back as the officer sent it: Money is exact, and so is the Decimal it becomes."""

from __future__ import annotations

import pytest
from google.type import money_pb2

from risk_service.grpc.review_convert import money_from_pb, money_to_pb


@pytest.mark.parametrize(
    ("units", "nanos"),
    [
        (12_345_678_901, 990_000_000),  # a float would give back ...901.989999771
        (123_456_789, 123_456_789),
        (10**16 + 1, 0),  # a float loses the last digit
        (2**63 - 1, 0),  # a float rounds up past int64
        (-5, -250_000_000),  # refused later as negative, but read exactly
    ],
)
def test_money_round_trips_exactly(units: int, nanos: int) -> None:
    amount, currency = money_from_pb(money_pb2.Money(currency_code="USD", units=units, nanos=nanos), "revenue")
    back = money_to_pb(amount, currency)
    assert (back.units, back.nanos) == (units, nanos)
