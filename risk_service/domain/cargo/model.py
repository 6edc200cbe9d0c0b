"""Cargo reports as the domain sees them; attribute names match the risk.v1 proto fields.

A carrier (or a forwarder, for house bills) files a report before the ship is loaded
(PRE_LOADING: the WCO SAFE 24-hour rule, ICS2's pre-loading dataset) and again before it arrives
(PRE_ARRIVAL). Conversion from the wire never fails; `validation.validate_cargo_report` judges it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from risk_service.domain.declaration import Party, TransportMode


class FilingType(enum.IntEnum):
    UNSPECIFIED = 0
    PRE_LOADING = 1  # filed before loading at the port of loading: may end in "do not load"
    PRE_ARRIVAL = 2  # filed before arrival: picks the containers to scan or open on discharge


class PreLoadingOutcome(enum.IntEnum):
    """ICS2's pre-loading answers, mildest first."""

    UNSPECIFIED = 0
    ASSESSMENT_COMPLETE = 1  # the goods may be loaded
    REQUEST_FOR_INFORMATION = 2  # the filer must clarify before loading
    REQUEST_FOR_SCREENING = 3  # screen (scan) at the port of loading before loading
    DO_NOT_LOAD = 4  # an imminent threat: the consignment must not be loaded


class ContainerOutcome(enum.IntEnum):
    """What happens to a container on arrival, mildest first."""

    UNSPECIFIED = 0
    NO_ACTION = 1
    SCAN = 2  # non-intrusive inspection (X-ray, gamma)
    PHYSICAL_EXAMINATION = 3  # opened and examined


@dataclass(frozen=True, slots=True)
class CargoItem:
    """One goods item in a container, as the manifest describes it."""

    item_number: int
    hs_code: str  # at least 6 digits
    description: str
    packages: int
    gross_mass_kg: float
    origin_country: str = ""  # ISO 3166 alpha-2 when the filer knows it


@dataclass(frozen=True, slots=True)
class Container:
    container_number: str  # ISO 6346, e.g. MSCU1234566
    size_type_code: str  # ISO 6346 size and type, e.g. 22G1, 45G1
    seal_numbers: tuple[str, ...]
    gross_mass_kg: float
    packages: int
    items: tuple[CargoItem, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class CargoReport:
    """One version of a cargo report for one transport document (a master or a house bill)."""

    report_id: str
    version: int
    filing_type: FilingType
    filer: Party
    carrier: Party
    transport_mode: TransportMode
    vessel_imo_number: str  # seven digits with check digit; empty for other modes than sea
    voyage_number: str
    master_transport_document_number: str
    house_transport_document_number: str  # empty for a master-level report
    port_of_loading: str  # UN/LOCODE, e.g. CNSHA
    transshipment_ports: tuple[str, ...]  # UN/LOCODE, in route order
    port_of_discharge: str  # UN/LOCODE
    planned_loading_time: datetime | None
    planned_arrival_time: datetime | None
    filing_time: datetime | None
    consignor: Party
    consignee: Party
    notify_party: Party
    containers: tuple[Container, ...] = field(default_factory=tuple)

    @property
    def key(self) -> tuple[str, int]:
        """The idempotency key: a retry of the same id and version is the same filing."""
        return (self.report_id, self.version)

    @property
    def transport_document_number(self) -> str:
        """The document this report is about: its house bill when it has one, else the master."""
        return self.house_transport_document_number or self.master_transport_document_number
