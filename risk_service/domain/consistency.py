"""Cross-document consistency: a goods declaration against the cargo report for the same consignment.

A declaration and a cargo report are linked when the declaration's transport document is the
report's master or house bill, or when they share a container. Whichever arrives second is compared
with the first, and each disagreement becomes a reason on both sides with both values shown:
consignee, HS headings, gross mass (beyond a tolerance), package count, and containers declared but
not reported or the other way round.

Linked by the bill (the declaration's bill is the report's own document: its house bill, or its
master bill when it has no house bill), the whole report is the consignment. Linked by a container
alone (a consolidation, or a master report over house bills), the shared containers may also carry
other bills' goods: only declaring what they do not carry counts (a heading, or more mass or
packages than reported), and neither the consignee nor the container lists are compared. A
declaration linked to a report by its bill is not also compared with reports that share only a
container. Containers and bills are reused for years, so two filings link
only when they move within `link_window_days` of each other (lodgement against planned arrival).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Final

from risk_service.domain.assessment import Assessment, Channel, RuleHit
from risk_service.domain.cargo.assessment import CargoAssessment
from risk_service.domain.cargo.model import CargoItem, CargoReport
from risk_service.domain.declaration import Declaration, DeclarationType
from risk_service.domain.reasons import ReasonConfig, ReasonSetting

REASON_PREFIX: Final = "CONSISTENCY_"
CONSIGNEE: Final = "CONSISTENCY_CONSIGNEE"
HS_HEADING: Final = "CONSISTENCY_HS_HEADING"
GROSS_MASS: Final = "CONSISTENCY_GROSS_MASS"
PACKAGES: Final = "CONSISTENCY_PACKAGES"
CONTAINER_NOT_REPORTED: Final = "CONSISTENCY_CONTAINER_NOT_REPORTED"
CONTAINER_NOT_DECLARED: Final = "CONSISTENCY_CONTAINER_NOT_DECLARED"

DEFAULTS: Final = MappingProxyType(
    {
        CONSIGNEE: (Channel.YELLOW, 0.3),
        HS_HEADING: (Channel.YELLOW, 0.3),
        GROSS_MASS: (Channel.YELLOW, 0.3),
        PACKAGES: (None, 0.15),
        CONTAINER_NOT_REPORTED: (Channel.YELLOW, 0.25),
        CONTAINER_NOT_DECLARED: (Channel.YELLOW, 0.25),
    }
)
_SHOWN: Final = 6  # codes or containers listed in one message before "and N more"


class ConsistencyConfig(ReasonConfig):
    """Channel and weight of each consistency reason, and how far gross masses may differ."""

    what = "consistency check"

    def __init__(
        self,
        reasons: dict[str, ReasonSetting] | None = None,
        *,
        mass_tolerance: float = 0.05,
        link_window_days: float = 60.0,
    ) -> None:
        super().__init__(DEFAULTS, reasons)
        if not 0.0 <= mass_tolerance < 1.0:
            raise ValueError(f"mass_tolerance must be in [0, 1), got {mass_tolerance}")
        if not link_window_days > 0:
            raise ValueError(f"link_window_days must be positive, got {link_window_days}")
        self.mass_tolerance = mass_tolerance
        self.link_window = timedelta(days=link_window_days)


@dataclass(frozen=True, slots=True)
class Mismatch:
    reason: str
    message: str  # both values, naming both documents
    declaration_fields: tuple[str, ...]
    report_fields: tuple[str, ...]
    item_numbers: tuple[int, ...] = ()  # the declaration's goods items concerned


LinkKey = tuple[str, str]  # ("document" | "container", key): what filings are found by


def declaration_link_keys(d: Declaration) -> set[LinkKey]:
    keys = {("container", c) for c in d.container_numbers}
    if d.transport_document_number:
        keys.add(("document", d.transport_document_number))
    return keys


def report_link_keys(r: CargoReport) -> set[LinkKey]:
    keys = {("container", c.container_number) for c in r.containers}
    keys |= {("document", n) for n in (r.master_transport_document_number, r.house_transport_document_number) if n}
    return keys


@dataclass(frozen=True, slots=True)
class DeclarationReassessment:
    """A stored declaration version assessed again because a linked cargo report arrived."""

    assessment: Assessment  # a new assessment id; the declaration id and version of the original
    trigger: str  # e.g. "cargo_report CR-1 v2"


@dataclass(frozen=True, slots=True)
class CargoReassessment:
    """A stored cargo report version assessed again because a linked declaration arrived."""

    assessment: CargoAssessment
    trigger: str  # e.g. "declaration D-1 v1"


def declaration_time(d: Declaration, default: datetime) -> datetime:
    """When a declaration's consignment moves, for the link window: its lodgement."""
    return d.lodgement_time or default


def report_time(r: CargoReport, default: datetime) -> datetime:
    """When a report's consignment moves, for the link window: its planned arrival."""
    return r.planned_arrival_time or r.filing_time or default


def by_bill(declaration: Declaration, report: CargoReport) -> bool:
    """The declaration's bill is the report's own: the report describes the whole consignment."""
    return _by_document(declaration, report)


def links(declaration: Declaration, report: CargoReport) -> bool:
    """They name the same bill or a common container (see the module docstring for the window)."""
    return _by_document(declaration, report) or bool(_shared_containers(declaration, report))


def linked(declaration: Declaration, report: CargoReport, config: ConsistencyConfig, now: datetime) -> bool:
    """Linked and within the link window of each other."""
    gap = abs(declaration_time(declaration, now) - report_time(report, now))
    return gap <= config.link_window and links(declaration, report)


def is_consistency_hit(hit: RuleHit) -> bool:
    return hit.rule_id.startswith(REASON_PREFIX)


def compare(declaration: Declaration, report: CargoReport, config: ConsistencyConfig) -> list[Mismatch]:
    """Every disagreement between the two documents; [] when they are not linked."""
    by_document = _by_document(declaration, report)
    shared = _shared_containers(declaration, report)
    if not by_document and not shared:
        return []
    d, r = declaration, report
    docs = f"declaration {d.declaration_id} v{d.version} and cargo report {r.report_id} v{r.version}"
    scope = [c for c in r.containers if by_document or c.container_number in shared]
    reported_items: list[CargoItem] = [i for c in scope for i in c.items]
    out: list[Mismatch] = []

    importer, consignee = d.importer.id, r.consignee.id
    if by_document and d.type == DeclarationType.IMPORT and importer and consignee and importer != consignee:
        out.append(
            Mismatch(
                CONSIGNEE,
                f"The importer is {d.importer.id} on the declaration but the consignee is {r.consignee.id} "
                f"on the cargo report ({docs}).",
                ("declaration.importer.id",),
                ("cargo_report.consignee.id",),
            )
        )

    declared_headings = {i.hs_code[:4]: i.item_number for i in d.items if len(i.hs_code) >= 4}
    reported_headings = {i.hs_code[:4] for i in reported_items if len(i.hs_code) >= 4}
    only_declared = sorted(set(declared_headings) - reported_headings)
    only_reported = sorted(reported_headings - set(declared_headings))
    if only_declared or (by_document and only_reported):
        parts = []
        if only_declared:
            parts.append(f"declared but not on the cargo report: {_listed(only_declared)}")
        if by_document and only_reported:
            parts.append(f"on the cargo report but not declared: {_listed(only_reported)}")
        out.append(
            Mismatch(
                HS_HEADING,
                f"HS headings {'; '.join(parts)} ({docs}).",
                ("declaration.items.hs_code",),
                ("cargo_report.containers.items.hs_code",),
                tuple(declared_headings[h] for h in only_declared),
            )
        )

    declared_mass = sum(i.gross_mass_kg for i in d.items)
    reported_mass = sum(i.gross_mass_kg for i in reported_items)
    larger = max(declared_mass, reported_mass)
    # A shared container may also carry other bills' goods: then only declaring more than it carries is off.
    apart = larger > 0 and abs(declared_mass - reported_mass) / larger > config.mass_tolerance
    if apart and (by_document or declared_mass > reported_mass):
        out.append(
            Mismatch(
                GROSS_MASS,
                f"Gross mass {declared_mass:,.0f} kg declared, {reported_mass:,.0f} kg on the cargo report: "
                f"{abs(declared_mass - reported_mass) / larger:.0%} apart, more than the "
                f"{config.mass_tolerance:.0%} allowed ({docs}).",
                ("declaration.items.gross_mass_kg",),
                ("cargo_report.containers.items.gross_mass_kg",),
            )
        )

    declared_packages = sum(i.packages for i in d.items)
    reported_packages = sum(i.packages for i in reported_items)
    differ = declared_packages > reported_packages if not by_document else declared_packages != reported_packages
    if all(i.packages > 0 for i in d.items) and reported_items and differ:
        out.append(
            Mismatch(
                PACKAGES,
                f"{declared_packages:,} packages declared, {reported_packages:,} on the cargo report ({docs}).",
                ("declaration.items.packages",),
                ("cargo_report.containers.items.packages",),
            )
        )

    if by_document and d.container_numbers:
        reported_containers = {c.container_number for c in r.containers}
        missing = sorted(set(d.container_numbers) - reported_containers)
        extra = sorted(reported_containers - set(d.container_numbers))
        if missing:
            out.append(
                Mismatch(
                    CONTAINER_NOT_REPORTED,
                    f"Containers declared but not on the cargo report: {_listed(missing)} ({docs}).",
                    ("declaration.container_numbers",),
                    ("cargo_report.containers",),
                )
            )
        if extra:
            out.append(
                Mismatch(
                    CONTAINER_NOT_DECLARED,
                    f"Containers on the cargo report but not declared: {_listed(extra)} ({docs}).",
                    ("declaration.container_numbers",),
                    ("cargo_report.containers",),
                )
            )
    return out


def master_house_mismatches(house: CargoReport, master: CargoReport, config: ConsistencyConfig) -> int:
    """Data elements on which a house filing disagrees with its master filing (0 when they are not master
    and house of one bill): containers the master does not carry, HS headings its containers do not
    hold, and more gross mass than the master gives those containers."""
    if (
        not house.house_transport_document_number
        or master.house_transport_document_number
        or house.master_transport_document_number != master.master_transport_document_number
    ):
        return 0
    on_master = {c.container_number: c for c in master.containers}
    count = 0
    if any(c.container_number not in on_master for c in house.containers):
        count += 1
    shared = [c for c in house.containers if c.container_number in on_master]
    master_headings = {i.hs_code[:4] for c in shared for i in on_master[c.container_number].items}
    if any(i.hs_code[:4] not in master_headings for c in shared for i in c.items):
        count += 1
    house_mass = sum(i.gross_mass_kg for c in shared for i in c.items)
    master_mass = sum(i.gross_mass_kg for c in shared for i in on_master[c.container_number].items)
    if master_mass > 0 and (house_mass - master_mass) / master_mass > config.mass_tolerance:
        count += 1
    return count


def declaration_hits(mismatches: Iterable[Mismatch], config: ConsistencyConfig) -> tuple[RuleHit, ...]:
    return tuple(
        RuleHit(
            m.reason,
            m.message,
            m.declaration_fields,
            config.weight(m.reason),
            config.min_channel(m.reason),
            m.item_numbers,
        )
        for m in mismatches
    )


def report_hits(mismatches: Iterable[Mismatch], config: ConsistencyConfig) -> tuple[RuleHit, ...]:
    """Report-level hits: they count for every container of the report."""
    return tuple(
        RuleHit(m.reason, m.message, m.report_fields, config.weight(m.reason), config.min_channel(m.reason))
        for m in mismatches
    )


def _by_document(d: Declaration, r: CargoReport) -> bool:
    return bool(d.transport_document_number) and d.transport_document_number == r.transport_document_number


def _shared_containers(d: Declaration, r: CargoReport) -> set[str]:
    return set(d.container_numbers) & {c.container_number for c in r.containers}


def _listed(values: Sequence[str]) -> str:
    shown = ", ".join(values[:_SHOWN])
    return shown if len(values) <= _SHOWN else f"{shown} and {len(values) - _SHOWN} more"
