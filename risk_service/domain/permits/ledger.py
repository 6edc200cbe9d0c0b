"""The permit ledger's vocabulary: what a declaration draws from permits, and what the ledger refused."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, Protocol

from risk_service.domain.permits.model import PermitState

# Running totals are sums of floats: a draw that exactly fills a line must not fail on the last bit.
BALANCE_TOLERANCE = 1e-9


def over_limit(total: float, limit: float | None) -> bool:
    """Whether a drawn total passes what was authorised (None: no limit), beyond float rounding."""
    return limit is not None and total > limit + BALANCE_TOLERANCE * max(1.0, abs(limit))


class PermitDraw(NamedTuple):
    """What one goods item draws from one goods line of a permit, in the line's unit.

    A tuple: every goods item citing a permit makes one, and a frozen dataclass costs three times more.
    """

    permit_id: str
    line_number: int
    item_number: int
    quantity: float  # converted to the permit line's unit; 0 when the line limits only value
    value: float  # customs value in national currency


class LineDraw(Protocol):
    """What summing by goods line reads of a draw: a claimed one (PermitDraw) or a stored one."""

    @property
    def permit_id(self) -> str: ...
    @property
    def line_number(self) -> int: ...
    @property
    def quantity(self) -> float: ...
    @property
    def value(self) -> float: ...


def sum_by_line(draws: Iterable[LineDraw]) -> dict[tuple[str, int], tuple[float, float]]:
    """(permit id, line number) -> (quantity, value) of the draws, added in their order.

    The ledger adds a claim's sums to a line's totals and later subtracts the same sums of the
    stored draws (in the same item order), so a declaration alone on a line gives back exactly
    what it took.
    """
    by_line: dict[tuple[str, int], tuple[float, float]] = {}
    for d in draws:
        key = (d.permit_id, d.line_number)
        quantity, value = by_line.get(key, (0.0, 0.0))
        by_line[key] = (quantity + d.quantity, value + d.value)
    return by_line


@dataclass(frozen=True, slots=True)
class LedgerClaim:
    """What one declaration version asks of the ledger; settled atomically with its assessment.

    An amendment's claim replaces every draw and use of the declaration's earlier versions.
    """

    draws: tuple[PermitDraw, ...] = ()
    single_use_permits: tuple[str, ...] = ()  # single-use permits the declaration validly cites
    # Derived once, in the screening thread: the ledger's writer reads them under its locks.
    permit_ids: frozenset[str] = field(init=False, repr=False, compare=False)
    #: (permit id, line number) -> (quantity, value) the claim draws from the line, summed over its items.
    by_line: Mapping[tuple[str, int], tuple[float, float]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ids = {d.permit_id for d in self.draws}
        ids.update(self.single_use_permits)
        object.__setattr__(self, "permit_ids", frozenset(ids))
        object.__setattr__(self, "by_line", sum_by_line(self.draws))


class RefusalKind(enum.Enum):
    BALANCE = "BALANCE"  # quantity or value above what remains on the line
    ALREADY_USED = "ALREADY_USED"  # a single-use permit another declaration used first
    NOT_USABLE = "NOT_USABLE"  # suspended, revoked or gone by the time the draw was settled
    DECLARATION_CANCELLED = "DECLARATION_CANCELLED"  # the declaration was cancelled; later versions draw nothing


@dataclass(frozen=True, slots=True)
class DrawRefusal:
    """Why the ledger refused a claim; the declaration then draws nothing and its assessment is flagged."""

    kind: RefusalKind
    permit_id: str
    line_number: int = 0  # 0 for permit-level refusals
    item_numbers: tuple[int, ...] = ()
    unit: str = ""
    requested_quantity: float = 0.0
    remaining_quantity: float | None = None  # None: quantity not limited
    authorised_quantity: float | None = None
    requested_value: float = 0.0
    remaining_value: float | None = None  # None: value not limited
    authorised_value: float | None = None
    used_by: str = ""  # ALREADY_USED: the declaration that used the permit


@dataclass(frozen=True, slots=True)
class DrawRecord:
    """A stored draw, as the reconciliation report and a cancellation list it."""

    permit_id: str
    declaration_id: str
    declaration_version: int
    line_number: int
    item_number: int
    quantity: float
    value: float
    drawn_at: datetime


@dataclass(frozen=True, slots=True)
class CancellationResult:
    """What cancelling a declaration returned to permit balances."""

    declaration_id: str
    released: tuple[DrawRecord, ...]
    cancelled_at: datetime
    created: bool  # False for a retry of an earlier cancellation


@dataclass(frozen=True, slots=True)
class PermitUsage:
    """One permit in the reconciliation report: its balances and every draw made from it."""

    state: PermitState
    draws: tuple[DrawRecord, ...]
