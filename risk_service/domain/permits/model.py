"""Permits as the domain sees them: what an agency authorised, for whom, for which goods, until when."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple


class PermitType(enum.IntEnum):
    """Kinds of permits, licences and certificates agencies issue into the single window."""

    UNSPECIFIED = 0
    IMPORT_LICENCE = 1
    EXPORT_LICENCE = 2
    QUARANTINE_CERTIFICATE = 3
    HEALTH_CERTIFICATE = 4
    STRATEGIC_TRADE_PERMIT = 5
    CERTIFICATE_OF_ORIGIN = 6
    CONFORMITY_CERTIFICATE = 7
    CITES_PERMIT = 8
    OTHER = 9


class PermitStatus(enum.IntEnum):
    UNSPECIFIED = 0
    ACTIVE = 1
    SUSPENDED = 2  # may be reinstated
    REVOKED = 3  # final


class PermitAction(enum.IntEnum):
    """What a change did to a permit; every change is kept in its history."""

    UNSPECIFIED = 0
    SUBMIT = 1
    AMEND = 2
    SUSPEND = 3
    REINSTATE = 4
    REVOKE = 5


@dataclass(frozen=True, slots=True)
class PermitGoodsLine:
    """Goods a permit covers: an HS code or prefix, with an authorised quantity and/or value."""

    line_number: int  # unique within the permit, from 1
    hs_prefix: str  # 2 to 10 digits; covers every HS code starting with it
    description: str = ""
    unit: str = ""  # UN/ECE Rec 20 code of authorised_quantity; "" when only value is authorised
    authorised_quantity: float | None = None  # None: quantity not limited
    authorised_value: float | None = None  # national currency; None: value not limited


@dataclass(frozen=True, slots=True)
class Permit:
    """One version of a permit. Conversion from the wire never fails; validate_permit() judges it."""

    permit_id: str
    issuing_agency: str  # agency code, e.g. "NFQS" (quarantine), "MFDS" (food and drugs)
    type: PermitType
    holder_id: str  # trader id of the importer (import) or exporter (export) it is issued to
    goods_lines: tuple[PermitGoodsLine, ...]
    valid_from: datetime | None  # inclusive
    valid_to: datetime | None  # exclusive
    allowed_origin_countries: tuple[str, ...] = ()  # ISO 3166 alpha-2; empty: any origin
    allowed_customs_offices: tuple[str, ...] = ()  # office or port codes; empty: any office
    end_use: str = ""
    single_use: bool = False  # may be cited by one declaration only
    status: PermitStatus = PermitStatus.ACTIVE
    version: int = 1  # set by the registry: 1 on submission, +1 on every change
    # Derived from goods_lines once per permit version: every goods item citing the permit looks its line up.
    lines_by_prefix: Mapping[str, PermitGoodsLine] = field(init=False, repr=False, compare=False)
    _prefix_lengths: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_prefix = {line.hs_prefix: line for line in self.goods_lines}
        object.__setattr__(self, "lines_by_prefix", by_prefix)
        # Longest first, and only lengths an HS code can have a prefix of.
        lengths = sorted({len(p) for p in by_prefix if 2 <= len(p) <= 10}, reverse=True)
        object.__setattr__(self, "_prefix_lengths", tuple(lengths))

    def line(self, line_number: int) -> PermitGoodsLine | None:
        for line in self.goods_lines:
            if line.line_number == line_number:
                return line
        return None

    def covering_line(self, hs_code: str) -> PermitGoodsLine | None:
        """The goods line with the longest prefix of `hs_code` (codes of up to 10 digits), or None.

        Probes only the prefix lengths the permit has: most permits have one line, so one probe.
        """
        size = min(len(hs_code), 10)
        for length in self._prefix_lengths:
            if length <= size:
                line = self.lines_by_prefix.get(hs_code[:length])
                if line is not None:
                    return line
        return None


@dataclass(frozen=True, slots=True)
class LineBalance:
    """What has been drawn from one goods line, in the line's unit and in national currency."""

    drawn_quantity: float = 0.0
    drawn_value: float = 0.0


_NOTHING_DRAWN = LineBalance()  # immutable, so one serves every line without draws


@dataclass(frozen=True, slots=True)
class PermitState:
    """A permit with the balances drawn from its lines (line_number -> balance; absent means nothing drawn)."""

    permit: Permit
    balances: dict[int, LineBalance]

    def balance(self, line_number: int) -> LineBalance:
        return self.balances.get(line_number, _NOTHING_DRAWN)


@dataclass(frozen=True, slots=True)
class PermitChange:
    """One kept change of a permit: who did what, when, why, and the permit as it was afterwards."""

    request_id: str  # the caller's idempotency key
    action: PermitAction
    actor: str  # who made the change (agency user or system id)
    reason: str
    change_time: datetime
    permit: Permit  # the permit after the change; permit.version is the new version


class ItemPermitFacts(NamedTuple):
    """Permit facts of one goods item that become model features (NaN when no cited permit tells).

    A tuple: one per goods item scored, and a frozen dataclass costs three times more to make.
    """

    balance_used: float = math.nan  # largest share of a cited line's authorised quantity drawn before this filing
    days_to_expiry: float = math.nan  # days from lodgement to the earliest end of validity among cited permits
