"""Conversions between the risk.v1 cargo messages and domain objects. From the wire they never fail."""

from __future__ import annotations

from protos.risk.v1 import cargo_pb2
from risk_service.domain.cargo.assessment import CargoAssessment
from risk_service.domain.cargo.model import CargoItem, CargoReport, Container, FilingType
from risk_service.domain.declaration import TransportMode
from risk_service.grpc.convert import (
    contribution_to_pb,
    enum_from_pb,
    party_from_pb,
    party_to_pb,
    rule_hit_to_pb,
    time_from_pb,
    time_to_pb,
)


def cargo_report_from_pb(m: cargo_pb2.CargoReport) -> CargoReport:
    return CargoReport(
        report_id=m.report_id,
        version=m.version,
        filing_type=enum_from_pb(FilingType, m.filing_type),
        filer=party_from_pb(m.filer),
        carrier=party_from_pb(m.carrier),
        transport_mode=enum_from_pb(TransportMode, m.transport_mode),
        vessel_imo_number=m.vessel_imo_number,
        voyage_number=m.voyage_number,
        master_transport_document_number=m.master_transport_document_number,
        house_transport_document_number=m.house_transport_document_number,
        port_of_loading=m.port_of_loading,
        transshipment_ports=tuple(m.transshipment_ports),
        port_of_discharge=m.port_of_discharge,
        planned_loading_time=time_from_pb(m.planned_loading_time, m.HasField("planned_loading_time")),
        planned_arrival_time=time_from_pb(m.planned_arrival_time, m.HasField("planned_arrival_time")),
        filing_time=time_from_pb(m.filing_time, m.HasField("filing_time")),
        consignor=party_from_pb(m.consignor),
        consignee=party_from_pb(m.consignee),
        notify_party=party_from_pb(m.notify_party),
        containers=tuple(
            Container(
                container_number=c.container_number,
                size_type_code=c.size_type_code,
                seal_numbers=tuple(c.seal_numbers),
                gross_mass_kg=c.gross_mass_kg,
                packages=c.packages,
                items=tuple(
                    CargoItem(
                        item_number=i.item_number,
                        hs_code=i.hs_code,
                        description=i.description,
                        packages=i.packages,
                        gross_mass_kg=i.gross_mass_kg,
                        origin_country=i.origin_country,
                    )
                    for i in c.items
                ),
            )
            for c in m.containers
        ),
    )


def cargo_assessment_to_pb(a: CargoAssessment) -> cargo_pb2.CargoAssessment:
    containers = []
    for c in a.containers:
        container = cargo_pb2.ContainerAssessment(
            container_number=c.container_number,
            outcome=int(c.outcome),  # type: ignore[arg-type]
            risk_score=c.risk_score,
            rule_hits=[rule_hit_to_pb(h) for h in c.rule_hits],
            contributions=[contribution_to_pb(x) for x in c.contributions],
            channel=int(c.channel),  # type: ignore[arg-type]
            random_control=c.random_control,
        )
        if c.model_score is not None:
            container.model_score = c.model_score
        containers.append(container)
    return cargo_pb2.CargoAssessment(
        assessment_id=a.assessment_id,
        report_id=a.report_id,
        report_version=a.report_version,
        filing_type=int(a.filing_type),  # type: ignore[arg-type]
        pre_loading_outcome=int(a.pre_loading_outcome),  # type: ignore[arg-type]
        containers=containers,
        rule_hits=[rule_hit_to_pb(h) for h in a.rule_hits],
        risk_score=a.risk_score,
        summary=cargo_pb2.CargoSummary(
            no_action=a.summary.no_action,
            scan=a.summary.scan,
            physical_examination=a.summary.physical_examination,
            highest_risk_container=a.summary.highest_risk_container,
        ),
        model_status=int(a.model_status),  # type: ignore[arg-type]
        model_name=a.model_name,
        model_version=a.model_version,
        rule_set_version=a.rule_set_version,
        assessment_time=time_to_pb(a.assessment_time),
    )


def cargo_report_to_pb(r: CargoReport) -> cargo_pb2.CargoReport:
    """The wire form of a report, for clients written in Python (the CLI, tests, benchmarks)."""
    message = cargo_pb2.CargoReport(
        report_id=r.report_id,
        version=r.version,
        filing_type=int(r.filing_type),  # type: ignore[arg-type]
        filer=party_to_pb(r.filer),
        carrier=party_to_pb(r.carrier),
        transport_mode=int(r.transport_mode),  # type: ignore[arg-type]
        vessel_imo_number=r.vessel_imo_number,
        voyage_number=r.voyage_number,
        master_transport_document_number=r.master_transport_document_number,
        house_transport_document_number=r.house_transport_document_number,
        port_of_loading=r.port_of_loading,
        transshipment_ports=r.transshipment_ports,
        port_of_discharge=r.port_of_discharge,
        consignor=party_to_pb(r.consignor),
        consignee=party_to_pb(r.consignee),
        notify_party=party_to_pb(r.notify_party),
        containers=[
            cargo_pb2.Container(
                container_number=c.container_number,
                size_type_code=c.size_type_code,
                seal_numbers=c.seal_numbers,
                gross_mass_kg=c.gross_mass_kg,
                packages=c.packages,
                items=[
                    cargo_pb2.CargoItem(
                        item_number=i.item_number,
                        hs_code=i.hs_code,
                        description=i.description,
                        packages=i.packages,
                        gross_mass_kg=i.gross_mass_kg,
                        origin_country=i.origin_country,
                    )
                    for i in c.items
                ],
            )
            for c in r.containers
        ],
    )
    for name in ("planned_loading_time", "planned_arrival_time", "filing_time"):
        value = getattr(r, name)
        if value is not None:
            getattr(message, name).CopyFrom(time_to_pb(value))
    return message
