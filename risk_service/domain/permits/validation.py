"""Permit validation: every violation is reported with its proto field path, nothing is fixed up."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

from risk_service.domain.errors import FieldViolation
from risk_service.domain.permits.model import Permit, PermitGoodsLine, PermitStatus, PermitType
from risk_service.domain.permits.units import is_known_unit
from risk_service.domain.validation import (
    ValidationLimits,
    ViolationCollector,
    check_amount,
    check_count,
    check_country,
    check_enum,
    check_identifier,
    check_text,
)

_HS_PREFIX: Final = re.compile(r"[0-9]{2,10}")
#: Most entries in allowed_origin_countries or allowed_customs_offices: more countries than ISO
#: 3166 lists is a mistake, and a bound keeps one permit from carrying a runaway list.
MAX_ALLOWED_ENTRIES: Final = 300


def validate_permit(
    permit: Permit,
    limits: ValidationLimits,
    path: str = "permit",
    *,
    allow_unspecified_status: bool = False,
) -> list[FieldViolation]:
    """Returns every violation in `permit`; an empty list means the registry may keep it.

    The registry sets status itself on submission, so callers validating what an agency sent
    pass allow_unspecified_status=True. Goods lines are bounded by limits.max_items: a permit
    never needs more lines than a declaration may have items.
    """
    out = ViolationCollector()
    p = permit
    check_identifier(out, f"{path}.permit_id", p.permit_id, limits)
    check_identifier(out, f"{path}.issuing_agency", p.issuing_agency, limits)
    check_identifier(out, f"{path}.holder_id", p.holder_id, limits)
    _known_enum(out, f"{path}.type", p.type, PermitType)
    if not (allow_unspecified_status and p.status == PermitStatus.UNSPECIFIED):
        _known_enum(out, f"{path}.status", p.status, PermitStatus)
    _goods_lines(out, path, p.goods_lines, limits)
    _validity(out, path, p.valid_from, p.valid_to)
    _bounded(out, f"{path}.allowed_origin_countries", len(p.allowed_origin_countries))
    if len(p.allowed_origin_countries) <= MAX_ALLOWED_ENTRIES:
        for i, country in enumerate(p.allowed_origin_countries):
            check_country(out, f"{path}.allowed_origin_countries[{i}]", country)
    _bounded(out, f"{path}.allowed_customs_offices", len(p.allowed_customs_offices))
    if len(p.allowed_customs_offices) <= MAX_ALLOWED_ENTRIES:
        for i, office in enumerate(p.allowed_customs_offices):
            check_identifier(out, f"{path}.allowed_customs_offices[{i}]", office, limits)
    check_text(out, f"{path}.end_use", p.end_use, limits, required=False)
    if p.version < 0:
        out.add(f"{path}.version", "must not be negative")
    return out.violations


def _known_enum(out: ViolationCollector, path: str, value: int, kind: type[PermitType] | type[PermitStatus]) -> None:
    check_enum(out, path, value, 0)
    # Conversion from the wire keeps numbers a newer client may send; only known values are stored.
    if value != 0 and value not in {member.value for member in kind}:
        out.add(path, f"{value} is not a known {kind.__name__} value")


def _bounded(out: ViolationCollector, path: str, count: int) -> None:
    if count > MAX_ALLOWED_ENTRIES:
        out.add(path, f"has {count} entries; at most {MAX_ALLOWED_ENTRIES} are allowed")


def _goods_lines(
    out: ViolationCollector, path: str, lines: tuple[PermitGoodsLine, ...], limits: ValidationLimits
) -> None:
    if not check_count(out, f"{path}.goods_lines", len(lines), limits.max_items, "goods line", "lines"):
        return
    numbers: dict[int, int] = {}
    prefixes: dict[str, int] = {}
    for i, line in enumerate(lines):
        p = f"{path}.goods_lines[{i}]"
        if line.line_number < 1:
            out.add(f"{p}.line_number", "must be 1 or more")
        elif line.line_number in numbers:
            out.add(
                f"{p}.line_number",
                f"duplicates line number {line.line_number} of goods_lines[{numbers[line.line_number]}]",
            )
        else:
            numbers[line.line_number] = i
        if not _HS_PREFIX.fullmatch(line.hs_prefix):
            out.add(f"{p}.hs_prefix", "must be 2 to 10 digits")
        elif line.hs_prefix in prefixes:
            # Two lines for one prefix would leave it open which balance an item draws from.
            out.add(f"{p}.hs_prefix", f"duplicates the prefix of goods_lines[{prefixes[line.hs_prefix]}]")
        else:
            prefixes[line.hs_prefix] = i
        check_text(out, f"{p}.description", line.description, limits, required=False)
        if line.unit and not is_known_unit(line.unit):
            out.add(f"{p}.unit", f"'{line.unit[:8]}' is not a unit quantities can be converted to (e.g. KGM, LTR, NAR)")
        elif not line.unit and line.authorised_quantity is not None:
            out.add(f"{p}.unit", "is required when an authorised quantity is given")
        if line.authorised_quantity is not None:
            check_amount(out, f"{p}.authorised_quantity", line.authorised_quantity)
        if line.authorised_value is not None:
            check_amount(out, f"{p}.authorised_value", line.authorised_value)


def _validity(out: ViolationCollector, path: str, valid_from: datetime | None, valid_to: datetime | None) -> None:
    if valid_from is None:
        out.add(f"{path}.valid_from_time", "is required")
    if valid_to is None:
        out.add(f"{path}.valid_to_time", "is required")
    if valid_from is not None and valid_to is not None and _utc(valid_to) <= _utc(valid_from):
        out.add(f"{path}.valid_to_time", "must be after valid_from_time")


def _utc(moment: datetime) -> datetime:
    # A naive time from a careless caller is read as UTC rather than raise on comparison.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
