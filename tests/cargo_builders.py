"""Builders of valid cargo reports, containers and cargo items that tests tweak one field at a time."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from risk_service.domain.cargo.model import CargoItem, CargoReport, Container, FilingType
from risk_service.domain.declaration import Party, TransportMode

# A pre-loading filing two days before loading at Shanghai, arriving at Rotterdam two weeks later.
PLANNED_LOADING = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
PLANNED_ARRIVAL = PLANNED_LOADING + timedelta(days=14)
FILED = PLANNED_LOADING - timedelta(days=2)
#: The clock to validate against: an hour after FILED.
NOW = FILED + timedelta(hours=1)

#: Valid ISO 6346 container numbers (CSQU3054383 is the usual worked example of the check digit) and a
#: valid IMO ship number (IMO 9074729, the usual worked example of its check digit).
CONTAINER_NUMBERS = ("CSQU3054383", "MSCU1234566", "MAEU7654320", "TGHU9876542")
VESSEL_IMO_NUMBER = "9074729"


def cargo_item(**overrides: Any) -> CargoItem:
    """Item 1: 40 cartons of laptops from China, 500 kg."""
    base = CargoItem(
        item_number=1,
        hs_code="847130",
        description="Portable computers, 14 inch",
        packages=40,
        gross_mass_kg=500.0,
        origin_country="CN",
    )
    return replace(base, **overrides)


def container(**overrides: Any) -> Container:
    """A sealed 20-foot dry container, CSQU3054383, holding one cargo_item()."""
    base = Container(
        container_number=CONTAINER_NUMBERS[0],
        size_type_code="22G1",
        seal_numbers=("SL0012345",),
        gross_mass_kg=500.0,  # its goods and packing, without the container tare: what its items weigh
        packages=40,
        items=(cargo_item(),),
    )
    return replace(base, **overrides)


def cargo_report(**overrides: Any) -> CargoReport:
    """A valid pre-loading sea report, CNSHA via SGSIN to NLRTM, with one container(); validate with now=NOW."""
    base = CargoReport(
        report_id="CR-2026-000001",
        version=1,
        filing_type=FilingType.PRE_LOADING,
        filer=Party("CN1234567890123", "Ocean Lines Shanghai"),
        carrier=Party("DK5566778899", "Ocean Lines A/S"),
        transport_mode=TransportMode.SEA,
        vessel_imo_number=VESSEL_IMO_NUMBER,
        voyage_number="046W",
        master_transport_document_number="OCLU2026SHA0001",
        house_transport_document_number="",
        port_of_loading="CNSHA",
        transshipment_ports=("SGSIN",),
        port_of_discharge="NLRTM",
        planned_loading_time=PLANNED_LOADING,
        planned_arrival_time=PLANNED_ARRIVAL,
        filing_time=FILED,
        consignor=Party("CN9876543210987", "Shenzhen Electronics"),
        consignee=Party("NL123456789", "Rotterdam Trading BV"),
        notify_party=Party("", ""),
        containers=(container(),),
    )
    return replace(base, **overrides)
