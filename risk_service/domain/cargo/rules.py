"""Cargo rule sets: the rule engine's context names for cargo reports, and which containers a hit concerns.

Cargo rule sets use the declaration rule-set file format and condition language (see
`risk_service/domain/rules/README.md`) with their own names. There is one context per goods
item *row* across the whole report: containers in report order, items in container order.
`report.*` names are the same on every row, `container.*` and `features.*` describe the row's
container, `item.*` its goods item. A condition that uses only `report.*` (and `hits.*`) names is
evaluated once per report and its hit names no rows (it concerns every container).

For a row-level hit, `RuleHit.item_numbers` holds **1-based row numbers across the report** (row 1
is the first item of the first container; a container of three items makes rows 1-3, the next
container starts at row 4), not `CargoItem.item_number`, which is only unique within its
container. `containers_of` and `items_of` turn them back into containers and items.

A container without goods items has no row, so no rule sees it; validation refuses such a
report (and one without containers) before screening.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Final

import numpy as np

from risk_service.domain.assessment import RuleHit
from risk_service.domain.cargo.model import CargoReport
from risk_service.domain.rules import RuleSet, RuleSubject, load_rule_set

#: The shipped default cargo rule set.
DEFAULT_CARGO_RULES_PATH: Final = Path(__file__).with_name("default_cargo_rules.yaml")

# Report-level names: the same value on every row.
_REPORT_SCHEMA: dict[str, type] = {
    "report.report_id": str,
    "report.version": int,
    "report.filing_type": str,  # FilingType name: PRE_LOADING, PRE_ARRIVAL
    "report.filer_id": str,
    "report.carrier_id": str,
    "report.transport_mode": str,  # TransportMode name, e.g. SEA
    "report.vessel_imo_number": str,
    "report.voyage_number": str,
    "report.master_transport_document_number": str,
    "report.house_transport_document_number": str,
    "report.port_of_loading": str,
    "report.port_of_discharge": str,
    "report.transshipment_ports": str,  # joined by ">" in route order; for contains_any(..., lists.x)
    "report.transshipment_count": int,
    "report.route": str,  # loading > transshipments > discharge, e.g. "CNSHA>MYPKG>GBFXT"
    "report.consignor_id": str,
    "report.consignor_name": str,
    "report.consignee_id": str,
    "report.consignee_name": str,
    "report.notify_party_id": str,
    "report.container_count": int,
    "report.hours_before_loading": float,  # NaN when a time is missing; negative when filed after loading
    "report.hours_before_arrival": float,
    "report.filing_deadline_hours": float,  # a setting for the report's transport mode
    "report.amended_after_loading": bool,  # version > 1 and filed at or after the planned loading
    # CargoFacts: what the caller knows from the store.
    "report.amended_after_risk_result": bool,
    "report.master_house_mismatches": int,
    "report.consistency_mismatches": int,
}

_CONTAINER_SCHEMA: dict[str, type] = {
    "container.container_number": str,
    "container.size_type_code": str,
    "container.seal_count": int,
    "container.gross_mass_kg": float,
    "container.packages": int,
    "container.item_count": int,
    "container.items_gross_mass_kg": float,
    "container.mass_gap_ratio": float,  # |gross - items| / gross; NaN when the gross mass is not positive
}

_ITEM_SCHEMA: dict[str, type] = {
    "item.item_number": int,
    "item.hs_code": str,
    "item.hs_chapter": str,
    "item.description": str,
    "item.packages": int,
    "item.gross_mass_kg": float,
    "item.origin_country": str,
    # 1.0 when the origin is the country of the port of loading or of a transshipment port, else
    # 0.0; NaN (missing) when the origin or every such port is empty. A float so it can be missing.
    "item.origin_on_route": float,
}

#: Every fixed name a cargo condition may use, with its type; `features.<name>` (float, the
#: row's container's model features) is added per feature name at load time.
CARGO_CONTEXT_SCHEMA: Mapping[str, type] = MappingProxyType(
    {**_REPORT_SCHEMA, **_CONTAINER_SCHEMA, **_ITEM_SCHEMA, "hits.weak_count": int}
)

# Context keys the conditions cannot name (no name part may start with "_"): the row's 1-based
# number across the report (RuleHit.item_numbers) and its (container, item) positions (field paths).
_ROW: Final = "_row"
_LOCATION: Final = "_location"

_REPORT: Final = "cargo_report"
_CONTAINER: Final = "cargo_report.containers[{c}]"
_ITEM: Final = "cargo_report.containers[{c}].items[{i}]"

# Where a name came from in the report, when it is not `<prefix>.<same name>`. Names that are
# not report fields (facts from the store, settings, features, hits) keep their own name.
_FIELD_PATHS: dict[str, tuple[str, ...]] = {
    "report.filer_id": (f"{_REPORT}.filer.id",),
    "report.carrier_id": (f"{_REPORT}.carrier.id",),
    "report.consignor_id": (f"{_REPORT}.consignor.id",),
    "report.consignor_name": (f"{_REPORT}.consignor.name",),
    "report.consignee_id": (f"{_REPORT}.consignee.id",),
    "report.consignee_name": (f"{_REPORT}.consignee.name",),
    "report.notify_party_id": (f"{_REPORT}.notify_party.id",),
    "report.transshipment_count": (f"{_REPORT}.transshipment_ports",),
    "report.route": (
        f"{_REPORT}.port_of_loading",
        f"{_REPORT}.transshipment_ports",
        f"{_REPORT}.port_of_discharge",
    ),
    "report.container_count": (f"{_REPORT}.containers",),
    "report.hours_before_loading": (f"{_REPORT}.planned_loading_time", f"{_REPORT}.filing_time"),
    "report.hours_before_arrival": (f"{_REPORT}.planned_arrival_time", f"{_REPORT}.filing_time"),
    "report.amended_after_loading": (
        f"{_REPORT}.version",
        f"{_REPORT}.planned_loading_time",
        f"{_REPORT}.filing_time",
    ),
    "report.filing_deadline_hours": ("report.filing_deadline_hours",),
    "report.amended_after_risk_result": ("report.amended_after_risk_result",),
    "report.master_house_mismatches": ("report.master_house_mismatches",),
    "report.consistency_mismatches": ("report.consistency_mismatches",),
    "container.seal_count": (f"{_CONTAINER}.seal_numbers",),
    "container.item_count": (f"{_CONTAINER}.items",),
    "container.items_gross_mass_kg": (f"{_CONTAINER}.items",),
    "container.mass_gap_ratio": (f"{_CONTAINER}.gross_mass_kg", f"{_CONTAINER}.items"),
    "item.hs_chapter": (f"{_ITEM}.hs_code",),
    "item.origin_on_route": (
        f"{_ITEM}.origin_country",
        f"{_REPORT}.port_of_loading",
        f"{_REPORT}.transshipment_ports",
    ),
}
_PREFIX_PATHS: dict[str, str] = {"report.": _REPORT, "container.": _CONTAINER, "item.": _ITEM}


def cargo_field_path(name: str, location: tuple[int, int]) -> tuple[str, ...]:
    """The report field paths a cargo context name came from, for the row at (container, item) positions."""
    templates = _FIELD_PATHS.get(name)
    if templates is None:
        prefix, _, rest = name.partition(".")
        base = _PREFIX_PATHS.get(prefix + ".")
        templates = (f"{base}.{rest}",) if base is not None else (name,)  # features.*, hits.*
    container, item = location
    return tuple(t.replace("{c}", str(container)).replace("{i}", str(item)) for t in templates)


#: Cargo reports: one context per goods item row (`cargo_contexts`); hits number rows 1-based
#: across the report.
CARGO_SUBJECT: Final = RuleSubject(
    name="cargo report",
    schema=CARGO_CONTEXT_SCHEMA,
    row_prefixes=("container.", "item.", "features."),
    row_number=_ROW,
    field_path=cargo_field_path,
    row_location=_LOCATION,
)


@dataclass(frozen=True, slots=True)
class CargoFacts:
    """What the caller knows about a report from the store, beyond the report itself."""

    #: An earlier version of this report got a result other than the mildest (ASSESSMENT_COMPLETE
    #: or NO_ACTION for every container).
    amended_after_risk_result: bool = False
    #: Disagreements between this house filing and its master filing; 0 when none or not linked.
    master_house_mismatches: int = 0
    #: Disagreements with a linked goods declaration; 0 when none or not linked.
    consistency_mismatches: int = 0
    #: An earlier version of this report is stored, so the report is already counted in its parties'
    #: history: the model's entity features leave it out, as training counts a report once.
    earlier_version_stored: bool = False


def cargo_context_schema(feature_names: Sequence[str]) -> dict[str, type]:
    """CARGO_CONTEXT_SCHEMA plus `features.<name>` (float) for each feature name."""
    return CARGO_SUBJECT.context_schema(feature_names)


def load_cargo_rule_set(path: Path, feature_names: Sequence[str] = ()) -> RuleSet:
    """Loads and checks a cargo rule set; raises RuleSetError listing every problem found.

    For hot reload, use `RuleSetHolder(path, feature_names, subject=CARGO_SUBJECT)`.
    """
    return load_rule_set(path, feature_names, CARGO_SUBJECT)


def cargo_contexts(
    report: CargoReport,
    facts: CargoFacts,
    *,
    filing_deadline_hours: float,
    feature_names: Sequence[str] = (),
    feature_rows: np.ndarray | None = None,
) -> list[dict[str, object]]:
    """One context per goods item row, containers in report order and items in container order.

    `filing_deadline_hours` is the deadline for the report's transport mode (a setting). Feature
    rows, when given, hold one row per container (shape: containers x feature names); without
    them every feature is NaN.
    """
    n_containers = len(report.containers)
    if feature_rows is not None and feature_rows.shape != (n_containers, len(feature_names)):
        raise ValueError(
            f"feature rows have shape {feature_rows.shape}, expected ({n_containers}, {len(feature_names)})"
        )
    transshipments = [p.strip() for p in report.transshipment_ports if p.strip()]
    route = [p for p in (report.port_of_loading.strip(), *transshipments, report.port_of_discharge.strip()) if p]
    # UN/LOCODEs start with the ISO 3166 country code.
    route_countries = frozenset(p[:2].upper() for p in (report.port_of_loading.strip(), *transshipments) if p)
    hours_before_loading = _hours_between(report.filing_time, report.planned_loading_time)
    base: dict[str, object] = {
        "report.report_id": report.report_id,
        "report.version": int(report.version),
        "report.filing_type": report.filing_type.name,
        "report.filer_id": report.filer.id,
        "report.carrier_id": report.carrier.id,
        "report.transport_mode": report.transport_mode.name,
        "report.vessel_imo_number": report.vessel_imo_number,
        "report.voyage_number": report.voyage_number,
        "report.master_transport_document_number": report.master_transport_document_number,
        "report.house_transport_document_number": report.house_transport_document_number,
        "report.port_of_loading": report.port_of_loading,
        "report.port_of_discharge": report.port_of_discharge,
        "report.transshipment_ports": ">".join(transshipments),
        "report.transshipment_count": len(transshipments),
        "report.route": ">".join(route),
        "report.consignor_id": report.consignor.id,
        "report.consignor_name": report.consignor.name,
        "report.consignee_id": report.consignee.id,
        "report.consignee_name": report.consignee.name,
        "report.notify_party_id": report.notify_party.id,
        "report.container_count": n_containers,
        "report.hours_before_loading": hours_before_loading,
        "report.hours_before_arrival": _hours_between(report.filing_time, report.planned_arrival_time),
        "report.filing_deadline_hours": float(filing_deadline_hours),
        # NaN <= 0 is False: without both times an amendment is not known to follow loading.
        "report.amended_after_loading": report.version > 1 and hours_before_loading <= 0.0,
        "report.amended_after_risk_result": bool(facts.amended_after_risk_result),
        "report.master_house_mismatches": int(facts.master_house_mismatches),
        "report.consistency_mismatches": int(facts.consistency_mismatches),
    }
    feature_keys = [f"features.{name}" for name in feature_names]
    features: list[list[float]] = (
        feature_rows.astype(float).tolist()
        if feature_rows is not None
        else [[math.nan] * len(feature_keys)] * n_containers
    )
    contexts: list[dict[str, object]] = []
    for c, (container, container_features) in enumerate(zip(report.containers, features, strict=True)):
        gross_mass = float(container.gross_mass_kg)
        items_mass = sum(float(item.gross_mass_kg) for item in container.items)  # not fsum: it raises on inf - inf
        container_values: dict[str, object] = {
            "container.container_number": container.container_number,
            "container.size_type_code": container.size_type_code,
            "container.seal_count": sum(1 for seal in container.seal_numbers if seal.strip()),
            "container.gross_mass_kg": gross_mass,
            "container.packages": int(container.packages),
            "container.item_count": len(container.items),
            "container.items_gross_mass_kg": items_mass,
            "container.mass_gap_ratio": abs(gross_mass - items_mass) / gross_mass if gross_mass > 0 else math.nan,
        }
        container_values.update(zip(feature_keys, container_features, strict=True))
        for i, item in enumerate(container.items):
            context = dict(base)
            context.update(container_values)
            origin = item.origin_country.strip().upper()
            context["item.item_number"] = int(item.item_number)
            context["item.hs_code"] = item.hs_code
            context["item.hs_chapter"] = item.hs_code[:2]
            context["item.description"] = item.description
            context["item.packages"] = int(item.packages)
            context["item.gross_mass_kg"] = float(item.gross_mass_kg)
            context["item.origin_country"] = item.origin_country
            context["item.origin_on_route"] = (
                float(origin in route_countries) if origin and route_countries else math.nan
            )
            context[_ROW] = len(contexts) + 1
            context[_LOCATION] = (c, i)
            contexts.append(context)
    return contexts


def containers_of(hit: RuleHit, report: CargoReport) -> tuple[str, ...]:
    """Container numbers a cargo hit concerns, in report order; () for a report-level hit (every container).

    Raises ValueError for a row number the report does not have (a hit on another report).
    """
    return tuple(dict.fromkeys(report.containers[c].container_number for c, _ in _rows(hit, report)))


def items_of(hit: RuleHit, report: CargoReport) -> tuple[tuple[str, int], ...]:
    """(container number, item number) of each row a cargo hit names; () for a report-level hit."""
    return tuple(
        (report.containers[c].container_number, report.containers[c].items[i].item_number)
        for c, i in _rows(hit, report)
    )


def _rows(hit: RuleHit, report: CargoReport) -> list[tuple[int, int]]:
    if not hit.item_numbers:
        return []
    locations = [(c, i) for c, container in enumerate(report.containers) for i in range(len(container.items))]
    out: list[tuple[int, int]] = []
    for number in hit.item_numbers:
        if not 1 <= number <= len(locations):
            raise ValueError(
                f"rule hit {hit.rule_id} names row {number}; report {report.report_id} has {len(locations)} rows"
            )
        out.append(locations[number - 1])
    return out


def _hours_between(start: datetime | None, end: datetime | None) -> float:
    """Hours from start to end (negative when end is earlier); NaN when either is missing."""
    if start is None or end is None:
        return math.nan
    try:
        return (end - start).total_seconds() / 3600.0
    except TypeError:  # one naive, one aware: a naive time is taken as UTC, as proto Timestamps are
        return (_as_utc(end) - _as_utc(start)).total_seconds() / 3600.0


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=UTC)
