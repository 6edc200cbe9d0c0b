"""Declaration validation: every violation is reported with its field path, nothing is fixed up."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pycountry

from risk_service.domain.declaration import (
    AeoStatus,
    Declaration,
    DeclarationType,
    GoodsItem,
    Party,
    TransportMode,
)
from risk_service.domain.errors import FieldViolation

# ISO code lists come from pycountry (a maintained copy of the ISO tables), loaded once.
COUNTRY_CODES = frozenset(c.alpha_2 for c in pycountry.countries)
CURRENCY_CODES = frozenset(c.alpha_3 for c in pycountry.currencies)
INCOTERMS_2020 = frozenset({"EXW", "FCA", "CPT", "CIP", "DAP", "DPU", "DDP", "FAS", "FOB", "CFR", "CIF"})

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/\-]*")
HS_CODE = re.compile(r"[0-9]{6,10}")
_UNIT = re.compile(r"[A-Z0-9]{1,3}")  # UN/ECE Recommendation 20 common codes
_CONTAINER = re.compile(r"[A-Z]{4}[0-9]{7}")  # ISO 6346 shape; the check digit is the cargo issue's
_CODE = re.compile(r"[A-Za-z0-9]{1,16}")
# Lodgement a little in the future is clock skew; far in the future is a wrong date.
FUTURE_SKEW = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class ValidationLimits:
    max_items: int = 999
    max_string_length: int = 512
    max_id_length: int = 64
    max_permit_references: int = 20
    max_containers: int = 500
    max_lodgement_age_days: int = 3650


class ViolationCollector:
    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def add(self, path: str, description: str) -> None:
        self.violations.append(FieldViolation(path, description))


def validate_declaration(
    declaration: Declaration,
    limits: ValidationLimits,
    *,
    path: str = "declaration",
    now: datetime | None = None,
) -> list[FieldViolation]:
    """Returns every violation in `declaration`; an empty list means it may be scored."""
    out = ViolationCollector()
    d = declaration
    check_identifier(out, f"{path}.declaration_id", d.declaration_id, limits)
    if d.version < 1:
        out.add(f"{path}.version", "must be 1 or more")
    check_enum(out, f"{path}.type", d.type, DeclarationType.UNSPECIFIED)
    if d.lodgement_time is None:
        out.add(f"{path}.lodgement_time", "is required")
    else:
        now = now or datetime.now(UTC)
        if d.lodgement_time > now + FUTURE_SKEW:
            out.add(f"{path}.lodgement_time", "is more than a day in the future")
        elif d.lodgement_time < now - timedelta(days=limits.max_lodgement_age_days):
            out.add(f"{path}.lodgement_time", f"is more than {limits.max_lodgement_age_days} days in the past")
    check_identifier(out, f"{path}.customs_office", d.customs_office, limits)
    check_party(out, f"{path}.declarant", d.declarant, limits, required=True)
    check_party(out, f"{path}.importer", d.importer, limits, required=d.type != DeclarationType.EXPORT)
    check_party(out, f"{path}.exporter", d.exporter, limits, required=d.type == DeclarationType.EXPORT)
    check_enum(out, f"{path}.aeo_status", d.aeo_status, AeoStatus.UNSPECIFIED)
    for name in ("export_country", "origin_country", "destination_country"):
        check_country(out, f"{path}.{name}", getattr(d, name))
    check_enum(out, f"{path}.transport_mode", d.transport_mode, TransportMode.UNSPECIFIED)
    if d.transport_document_number:
        check_identifier(out, f"{path}.transport_document_number", d.transport_document_number, limits)
    if len(d.container_numbers) > limits.max_containers:
        out.add(f"{path}.container_numbers", f"has more than {limits.max_containers} entries")
    else:
        for i, number in enumerate(d.container_numbers):
            if not _CONTAINER.fullmatch(number):
                out.add(f"{path}.container_numbers[{i}]", "must be an ISO 6346 number: 4 letters and 7 digits")
    if d.incoterm and d.incoterm not in INCOTERMS_2020:
        out.add(f"{path}.incoterm", "must be an Incoterms 2020 rule such as FOB or CIF")
    if d.invoice_currency not in CURRENCY_CODES:
        out.add(f"{path}.invoice_currency", "must be an ISO 4217 currency code")
    check_amount(out, f"{path}.invoice_amount", d.invoice_amount)
    _items(out, path, d.items, limits)
    return out.violations


def check_count(out: ViolationCollector, path: str, count: int, most: int, what: str, plural: str) -> bool:
    """At least one and at most `most` entries; False (with the violation) when not, and then the
    caller checks no entry: per-entry checks on an oversized list would only flood the caller."""
    if count == 0:
        out.add(path, f"at least one {what} is required")
        return False
    if count > most:
        out.add(path, f"has {count} {plural}; at most {most} are allowed")
        return False
    return True


def _items(out: ViolationCollector, path: str, items: tuple[GoodsItem, ...], limits: ValidationLimits) -> None:
    if not check_count(out, f"{path}.items", len(items), limits.max_items, "goods item", "items"):
        return
    seen: set[int] = set()
    for i, item in enumerate(items):
        p = f"{path}.items[{i}]"
        if item.item_number < 1:
            out.add(f"{p}.item_number", "must be 1 or more")
        elif item.item_number in seen:
            out.add(f"{p}.item_number", f"duplicates item number {item.item_number}")
        seen.add(item.item_number)
        if not HS_CODE.fullmatch(item.hs_code):
            out.add(f"{p}.hs_code", "must be 6 to 10 digits")
        check_text(out, f"{p}.description", item.description, limits, required=True)
        for name in ("quantity", "net_mass_kg", "gross_mass_kg", "customs_value"):
            check_amount(out, f"{p}.{name}", getattr(item, name))
        if item.quantity_unit and not _UNIT.fullmatch(item.quantity_unit):
            out.add(f"{p}.quantity_unit", "must be a UN/ECE Recommendation 20 unit code such as KGM or NAR")
        if item.quantity > 0 and not item.quantity_unit:
            out.add(f"{p}.quantity_unit", "is required when a quantity is given")
        masses_valid = _finite_nonneg(item.net_mass_kg) and _finite_nonneg(item.gross_mass_kg)
        if masses_valid and item.gross_mass_kg < item.net_mass_kg:
            out.add(f"{p}.gross_mass_kg", "must not be below the net mass")
        check_country(out, f"{p}.origin_country", item.origin_country)
        if item.preference_claimed and not _CODE.fullmatch(item.preference_claimed):
            out.add(f"{p}.preference_claimed", "must be a code of 1 to 16 letters or digits")
        if len(item.permit_references) > limits.max_permit_references:
            out.add(f"{p}.permit_references", f"has more than {limits.max_permit_references} entries")
        else:
            for j, ref in enumerate(item.permit_references):
                check_identifier(out, f"{p}.permit_references[{j}]", ref, limits)
        if item.packages < 0:
            out.add(f"{p}.packages", "must not be negative (0 when not stated)")
        for j, duty in enumerate(item.duties_and_taxes):
            if not _CODE.fullmatch(duty.type_code):
                out.add(f"{p}.duties_and_taxes[{j}].type_code", "must be a code of 1 to 16 letters or digits")
            check_amount(out, f"{p}.duties_and_taxes[{j}].amount", duty.amount)


def check_identifier(out: ViolationCollector, path: str, value: str, limits: ValidationLimits) -> None:
    if not value:
        out.add(path, "is required")
    elif len(value) > limits.max_id_length:
        out.add(path, f"is longer than {limits.max_id_length} characters")
    elif not _ID.fullmatch(value):
        out.add(path, "may hold only letters, digits and . _ : / -, starting with a letter or digit")


def check_party(out: ViolationCollector, path: str, party: Party, limits: ValidationLimits, *, required: bool) -> None:
    if required or party.id:
        check_identifier(out, f"{path}.id", party.id, limits)
    check_text(out, f"{path}.name", party.name, limits, required=False)


def check_text(out: ViolationCollector, path: str, value: str, limits: ValidationLimits, *, required: bool) -> None:
    if required and not value.strip():
        out.add(path, "is required")
    elif len(value) > limits.max_string_length:
        out.add(path, f"is longer than {limits.max_string_length} characters")
    elif has_control_characters(value):
        out.add(path, "contains control characters")


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def has_control_characters(value: str) -> bool:
    return _CONTROL_CHARACTERS.search(value) is not None


def check_country(out: ViolationCollector, path: str, value: str) -> None:
    if value not in COUNTRY_CODES:
        out.add(path, "must be an ISO 3166-1 alpha-2 country code")


def check_enum(out: ViolationCollector, path: str, value: int, unspecified: int) -> None:
    if value == unspecified:
        out.add(path, "must be set; the UNSPECIFIED value is not accepted")


def _finite_nonneg(value: float) -> bool:
    return math.isfinite(value) and value >= 0


def check_amount(out: ViolationCollector, path: str, value: float) -> None:
    if not math.isfinite(value):
        out.add(path, "must be a finite number")
    elif value < 0:
        out.add(path, "must not be negative")


def validate_batch(
    declarations: Iterable[Declaration], limits: ValidationLimits, *, path: str = "declarations"
) -> list[FieldViolation]:
    """Validates a batch; paths name each declaration by its position (`declarations[3].items[0].hs_code`)."""
    now = datetime.now(UTC)
    violations: list[FieldViolation] = []
    seen: dict[tuple[str, int], int] = {}
    for i, declaration in enumerate(declarations):
        violations.extend(validate_declaration(declaration, limits, path=f"{path}[{i}]", now=now))
        first = seen.setdefault(declaration.key, i)
        if first != i:
            violations.append(
                FieldViolation(f"{path}[{i}].declaration_id", f"repeats declarations[{first}] (same id and version)")
            )
    return violations
