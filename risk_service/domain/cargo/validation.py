"""Cargo report validation: every violation is reported with its proto field path, nothing is fixed up.

Only input errors are violations here. Disagreements between values that are each valid on their
own (item masses against the container's, a pre-loading filing after loading, a container without
seals) are risk signals, left for the rules to weigh.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from stdnum import imo, iso6346
from stdnum.exceptions import InvalidChecksum, ValidationError

from risk_service.domain.cargo.model import CargoItem, CargoReport, Container, FilingType
from risk_service.domain.declaration import TransportMode
from risk_service.domain.errors import FieldViolation
from risk_service.domain.validation import (
    COUNTRY_CODES,
    FUTURE_SKEW,
    HS_CODE,
    ValidationLimits,
    ViolationCollector,
    check_amount,
    check_count,
    check_country,
    check_enum,
    check_identifier,
    check_party,
    check_text,
)

# Only the compact form: the number stored is the number the rules and the scanners match later.
# The ASCII gate also keeps stdnum's iso6346 away from non-ASCII letters, which its \w lets through
# and its check digit code then fails on with a ValueError.
_CONTAINER_NUMBER: Final = re.compile(r"[A-Z]{4}[0-9]{7}")
_SIZE_TYPE_CODE: Final = re.compile(r"[A-Z0-9]{4}")  # ISO 6346 size and type, e.g. 22G1, 45G1, 42R1
# Seven digits, no "IMO" prefix: one stored form, so a vessel matches itself across filings.
_IMO_NUMBER: Final = re.compile(r"[0-9]{7}")
# UN/LOCODE: a country, then three letters or digits; 0 and 1 are left out so as not to be read as O and I.
_LOCODE: Final = re.compile(r"[A-Z]{2}[A-Z2-9]{3}")


@dataclass(frozen=True, slots=True)
class CargoLimits:
    max_containers: int = 500
    max_items_per_container: int = 999
    max_seals: int = 10
    max_transshipment_ports: int = 10
    max_string_length: int = 512
    max_id_length: int = 64
    max_filing_age_days: int = 3650
    # Goods rows (items over all containers) bound the screening work of one report and of one call.
    max_rows_per_report: int = 10_000
    max_rows_per_call: int = 50_000


def validate_cargo_report(
    report: CargoReport,
    limits: CargoLimits,
    *,
    path: str = "cargo_report",
    now: datetime | None = None,
) -> list[FieldViolation]:
    """Returns every violation in `report`; an empty list means it may be screened.

    `now` (timezone-aware; the current time when None) is the clock filing_time is judged by.
    """
    now = _clock(now)
    out = ViolationCollector()
    # The shared identifier and text checks read their bounds from a ValidationLimits.
    text_limits = ValidationLimits(max_string_length=limits.max_string_length, max_id_length=limits.max_id_length)
    r = report
    check_identifier(out, f"{path}.report_id", r.report_id, text_limits)
    if r.version < 1:
        out.add(f"{path}.version", "must be 1 or more")
    _check_known_enum(out, f"{path}.filing_type", r.filing_type, FilingType)
    _check_known_enum(out, f"{path}.transport_mode", r.transport_mode, TransportMode)
    check_party(out, f"{path}.filer", r.filer, text_limits, required=True)
    check_party(out, f"{path}.carrier", r.carrier, text_limits, required=True)
    check_party(out, f"{path}.consignor", r.consignor, text_limits, required=True)
    check_party(out, f"{path}.consignee", r.consignee, text_limits, required=True)
    check_party(out, f"{path}.notify_party", r.notify_party, text_limits, required=False)
    _vessel_and_voyage(out, path, r, text_limits)
    check_identifier(out, f"{path}.master_transport_document_number", r.master_transport_document_number, text_limits)
    if r.house_transport_document_number:
        check_identifier(out, f"{path}.house_transport_document_number", r.house_transport_document_number, text_limits)
    _route(out, path, r, limits)
    _times(out, path, r, limits, now)
    rows = sum(len(c.items) for c in r.containers)
    if rows > limits.max_rows_per_report:
        # Per-item checks on an oversized report would only flood the caller (and take seconds).
        out.add(f"{path}.containers", f"carry {rows} goods items in all; at most {limits.max_rows_per_report}")
    else:
        _containers(out, path, r.containers, limits, text_limits)
    return out.violations


def validate_cargo_batch(
    reports: Sequence[CargoReport],
    limits: CargoLimits,
    *,
    max_batch_size: int,
    now: datetime | None = None,
    path: str = "cargo_reports",
) -> list[FieldViolation]:
    """Validates a batch; paths name each report by its position (`cargo_reports[3].containers[0]...`)."""
    now = _clock(now)  # one clock for the whole batch
    if not reports:
        return [FieldViolation(path, "at least one cargo report is required")]
    if len(reports) > max_batch_size:
        # Per-report checks on an oversized batch would only flood the caller.
        return [FieldViolation(path, f"has {len(reports)} cargo reports; at most {max_batch_size} are allowed")]
    rows = sum(len(c.items) for r in reports for c in r.containers)
    if rows > limits.max_rows_per_call:
        return [FieldViolation(path, f"carry {rows} goods items in all; at most {limits.max_rows_per_call} per call")]
    violations: list[FieldViolation] = []
    seen: dict[tuple[str, int], int] = {}
    for i, report in enumerate(reports):
        violations.extend(validate_cargo_report(report, limits, path=f"{path}[{i}]", now=now))
        first = seen.setdefault(report.key, i)
        if first != i:
            violations.append(
                FieldViolation(f"{path}[{i}].report_id", f"repeats {path}[{first}] (same report_id and version)")
            )
    return violations


def _clock(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if not _is_aware(now):
        raise ValueError("now must be timezone-aware")  # a caller's bug, not bad input
    return now


def _check_known_enum(out: ViolationCollector, path: str, value: int, kind: type[enum.IntEnum]) -> None:
    check_enum(out, path, value, 0)
    # A domain object may carry a number a newer client sent; only known values can be screened.
    if value != 0 and value not in {member.value for member in kind}:
        out.add(path, f"{value} is not a known {kind.__name__} value")


def _vessel_and_voyage(out: ViolationCollector, path: str, r: CargoReport, limits: ValidationLimits) -> None:
    sea = r.transport_mode == TransportMode.SEA
    p = f"{path}.vessel_imo_number"
    if not r.vessel_imo_number:
        if sea:
            out.add(p, "is required when transport_mode is SEA")
    elif not _IMO_NUMBER.fullmatch(r.vessel_imo_number):
        out.add(p, "must be an IMO ship number: its 7 digits without the IMO prefix, e.g. 9074729")
    elif not imo.is_valid(r.vessel_imo_number):
        out.add(p, "has a wrong IMO check digit")
    if not r.voyage_number:
        if sea:
            out.add(f"{path}.voyage_number", "is required when transport_mode is SEA")
    else:
        check_identifier(out, f"{path}.voyage_number", r.voyage_number, limits)


def _route(out: ViolationCollector, path: str, r: CargoReport, limits: CargoLimits) -> None:
    loading_ok = _check_port(out, f"{path}.port_of_loading", r.port_of_loading)
    discharge_ok = _check_port(out, f"{path}.port_of_discharge", r.port_of_discharge)
    if loading_ok and discharge_ok and r.port_of_loading == r.port_of_discharge:
        out.add(f"{path}.port_of_discharge", "must differ from port_of_loading")
    ports = r.transshipment_ports
    if len(ports) > limits.max_transshipment_ports:
        out.add(
            f"{path}.transshipment_ports",
            f"has {len(ports)} ports; at most {limits.max_transshipment_ports} are allowed",
        )
        return
    seen: dict[str, int] = {}
    for i, port in enumerate(ports):
        p = f"{path}.transshipment_ports[{i}]"
        if not _check_port(out, p, port):
            continue
        if port == r.port_of_loading:
            out.add(p, "must differ from port_of_loading")
        elif port == r.port_of_discharge:
            out.add(p, "must differ from port_of_discharge")
        first = seen.setdefault(port, i)
        if first != i:
            out.add(p, f"repeats transshipment_ports[{first}]")


def _check_port(out: ViolationCollector, path: str, value: str) -> bool:
    """Reports what is wrong with a UN/LOCODE; True when it is well formed."""
    if not value:
        out.add(path, "is required")
        return False
    if not _LOCODE.fullmatch(value):
        out.add(
            path,
            "must be a UN/LOCODE: 5 uppercase characters, a country code then 3 letters or digits 2-9, e.g. CNSHA",
        )
        return False
    if value[:2] not in COUNTRY_CODES:
        out.add(path, f"must start with an ISO 3166-1 alpha-2 country code; {value[:2]} is not one")
        return False
    return True


def _times(out: ViolationCollector, path: str, r: CargoReport, limits: CargoLimits, now: datetime) -> None:
    loading = _aware_time(out, f"{path}.planned_loading_time", r.planned_loading_time)
    arrival = _aware_time(out, f"{path}.planned_arrival_time", r.planned_arrival_time)
    filing = _aware_time(out, f"{path}.filing_time", r.filing_time)
    if loading is not None and arrival is not None and loading >= arrival:
        out.add(f"{path}.planned_arrival_time", "must be after planned_loading_time")
    if filing is None:
        return
    # A filing a little in the future is clock skew; far in the future is a wrong date.
    if filing > now + FUTURE_SKEW:
        out.add(f"{path}.filing_time", "is more than a day in the future")
    elif filing < now - timedelta(days=limits.max_filing_age_days):
        out.add(f"{path}.filing_time", f"is more than {limits.max_filing_age_days} days in the past")
    # A pre-arrival filing after arrival cannot be screened in time. A pre-loading filing after
    # loading is not an input error: late filing is a risk signal for the rules.
    if r.filing_type == FilingType.PRE_ARRIVAL and arrival is not None and filing >= arrival:
        out.add(f"{path}.filing_time", "a pre-arrival filing must be made before planned_arrival_time")


def _aware_time(out: ViolationCollector, path: str, value: datetime | None) -> datetime | None:
    """The time when it is given with a time zone; otherwise reports it and returns None."""
    if value is None:
        out.add(path, "is required")
        return None
    if not _is_aware(value):
        out.add(path, "must carry a time zone")
        return None
    return value


def _is_aware(value: datetime) -> bool:
    return value.tzinfo is not None and value.utcoffset() is not None


def _containers(
    out: ViolationCollector,
    path: str,
    containers: tuple[Container, ...],
    limits: CargoLimits,
    text_limits: ValidationLimits,
) -> None:
    if not check_count(out, f"{path}.containers", len(containers), limits.max_containers, "container", "containers"):
        return
    seen: dict[str, int] = {}
    for i, container in enumerate(containers):
        p = f"{path}.containers[{i}]"
        if _check_container_number(out, f"{p}.container_number", container.container_number):
            first = seen.setdefault(container.container_number, i)
            if first != i:
                out.add(f"{p}.container_number", f"repeats containers[{first}].container_number")
        if not _SIZE_TYPE_CODE.fullmatch(container.size_type_code):
            out.add(
                f"{p}.size_type_code",
                "must be an ISO 6346 size and type code: 4 uppercase letters or digits, e.g. 22G1 or 45G1",
            )
        _seals(out, p, container.seal_numbers, limits, text_limits)
        _check_mass(out, f"{p}.gross_mass_kg", container.gross_mass_kg)
        if container.packages < 1:
            out.add(f"{p}.packages", "must be 1 or more")
        _items(out, p, container.items, limits, text_limits)


def _check_container_number(out: ViolationCollector, path: str, value: str) -> bool:
    """Reports what is wrong with an ISO 6346 container number; True when it is valid."""
    if not value:
        out.add(path, "is required")
        return False
    if not _CONTAINER_NUMBER.fullmatch(value):
        out.add(
            path,
            "must be an ISO 6346 container number: 4 uppercase letters and 7 digits without spaces, e.g. CSQU3054383",
        )
        return False
    try:
        iso6346.validate(value)
    except InvalidChecksum:
        out.add(path, "has a wrong ISO 6346 check digit")
        return False
    except ValidationError:  # past the shape check, only the equipment category can be wrong
        out.add(path, "must have U, J, Z or R as its fourth letter (the ISO 6346 equipment category)")
        return False
    return True


def _seals(
    out: ViolationCollector, path: str, seals: tuple[str, ...], limits: CargoLimits, text_limits: ValidationLimits
) -> None:
    # No seals at all is allowed: an unsealed container is a risk signal, not an input error.
    if len(seals) > limits.max_seals:
        out.add(f"{path}.seal_numbers", f"has {len(seals)} seals; at most {limits.max_seals} are allowed")
        return
    seen: dict[str, int] = {}
    for j, seal in enumerate(seals):
        p = f"{path}.seal_numbers[{j}]"
        before = len(out.violations)
        check_identifier(out, p, seal, text_limits)
        if len(out.violations) > before:
            continue
        first = seen.setdefault(seal, j)
        if first != j:
            out.add(p, f"repeats seal_numbers[{first}]")


def _items(
    out: ViolationCollector,
    path: str,
    items: tuple[CargoItem, ...],
    limits: CargoLimits,
    text_limits: ValidationLimits,
) -> None:
    if not check_count(out, f"{path}.items", len(items), limits.max_items_per_container, "cargo item", "items"):
        return
    seen: dict[int, int] = {}
    for k, item in enumerate(items):
        p = f"{path}.items[{k}]"
        if item.item_number < 1:
            out.add(f"{p}.item_number", "must be 1 or more")
        else:
            first = seen.setdefault(item.item_number, k)
            if first != k:
                out.add(f"{p}.item_number", f"repeats items[{first}].item_number ({item.item_number})")
        if not HS_CODE.fullmatch(item.hs_code):
            out.add(f"{p}.hs_code", "must be 6 to 10 digits")
        check_text(out, f"{p}.description", item.description, text_limits, required=True)
        if item.packages < 1:
            out.add(f"{p}.packages", "must be 1 or more")
        _check_mass(out, f"{p}.gross_mass_kg", item.gross_mass_kg)
        if item.origin_country:
            check_country(out, f"{p}.origin_country", item.origin_country)


def _check_mass(out: ViolationCollector, path: str, value: float) -> None:
    check_amount(out, path, value)  # finite, not negative
    if value == 0:
        out.add(path, "must be more than 0")
