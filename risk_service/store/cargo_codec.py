"""Cargo reports and their assessments to JSON dicts and back, exactly, as store.codec does for declarations."""

from __future__ import annotations

from risk_service.domain.assessment import Channel, ModelStatus
from risk_service.domain.cargo.assessment import CargoAssessment, CargoSummary, ContainerAssessment
from risk_service.domain.cargo.model import (
    CargoItem,
    CargoReport,
    Container,
    ContainerOutcome,
    FilingType,
    PreLoadingOutcome,
)
from risk_service.domain.declaration import TransportMode
from risk_service.store.codec import (
    FORMAT_VERSION,
    JsonDict,
    contribution_from_dict,
    contribution_to_dict,
    float_from_json,
    num_to_json,
    optional_float_from_json,
    optional_num_to_json,
    optional_time_from_json,
    optional_time_to_json,
    party_from_dict,
    party_to_dict,
    rule_hit_from_dict,
    rule_hit_to_dict,
    time_from_json,
    time_to_json,
)


def cargo_report_to_dict(r: CargoReport) -> JsonDict:
    return {
        "format": FORMAT_VERSION,
        "report_id": r.report_id,
        "version": r.version,
        "filing_type": int(r.filing_type),
        "filer": party_to_dict(r.filer),
        "carrier": party_to_dict(r.carrier),
        "transport_mode": int(r.transport_mode),
        "vessel_imo_number": r.vessel_imo_number,
        "voyage_number": r.voyage_number,
        "master_transport_document_number": r.master_transport_document_number,
        "house_transport_document_number": r.house_transport_document_number,
        "port_of_loading": r.port_of_loading,
        "transshipment_ports": list(r.transshipment_ports),
        "port_of_discharge": r.port_of_discharge,
        "planned_loading_time": optional_time_to_json(r.planned_loading_time),
        "planned_arrival_time": optional_time_to_json(r.planned_arrival_time),
        "filing_time": optional_time_to_json(r.filing_time),
        "consignor": party_to_dict(r.consignor),
        "consignee": party_to_dict(r.consignee),
        "notify_party": party_to_dict(r.notify_party),
        "containers": [
            {
                "container_number": c.container_number,
                "size_type_code": c.size_type_code,
                "seal_numbers": list(c.seal_numbers),
                "gross_mass_kg": num_to_json(c.gross_mass_kg),
                "packages": c.packages,
                "items": [
                    {
                        "item_number": i.item_number,
                        "hs_code": i.hs_code,
                        "description": i.description,
                        "packages": i.packages,
                        "gross_mass_kg": num_to_json(i.gross_mass_kg),
                        "origin_country": i.origin_country,
                    }
                    for i in c.items
                ],
            }
            for c in r.containers
        ],
    }


def cargo_report_from_dict(d: JsonDict) -> CargoReport:
    return CargoReport(
        report_id=d["report_id"],
        version=d["version"],
        filing_type=FilingType(d["filing_type"]),
        filer=party_from_dict(d["filer"]),
        carrier=party_from_dict(d["carrier"]),
        transport_mode=TransportMode(d["transport_mode"]),
        vessel_imo_number=d["vessel_imo_number"],
        voyage_number=d["voyage_number"],
        master_transport_document_number=d["master_transport_document_number"],
        house_transport_document_number=d["house_transport_document_number"],
        port_of_loading=d["port_of_loading"],
        transshipment_ports=tuple(d["transshipment_ports"]),
        port_of_discharge=d["port_of_discharge"],
        planned_loading_time=optional_time_from_json(d["planned_loading_time"]),
        planned_arrival_time=optional_time_from_json(d["planned_arrival_time"]),
        filing_time=optional_time_from_json(d["filing_time"]),
        consignor=party_from_dict(d["consignor"]),
        consignee=party_from_dict(d["consignee"]),
        notify_party=party_from_dict(d["notify_party"]),
        containers=tuple(
            Container(
                container_number=c["container_number"],
                size_type_code=c["size_type_code"],
                seal_numbers=tuple(c["seal_numbers"]),
                gross_mass_kg=float_from_json(c["gross_mass_kg"]),
                packages=c["packages"],
                items=tuple(
                    CargoItem(
                        item_number=i["item_number"],
                        hs_code=i["hs_code"],
                        description=i["description"],
                        packages=i["packages"],
                        gross_mass_kg=float_from_json(i["gross_mass_kg"]),
                        origin_country=i["origin_country"],
                    )
                    for i in c["items"]
                ),
            )
            for c in d["containers"]
        ),
    )


def cargo_assessment_to_dict(a: CargoAssessment) -> JsonDict:
    return {
        "format": FORMAT_VERSION,
        "assessment_id": a.assessment_id,
        "report_id": a.report_id,
        "report_version": a.report_version,
        "filing_type": int(a.filing_type),
        "pre_loading_outcome": int(a.pre_loading_outcome),
        "containers": [
            {
                "container_number": c.container_number,
                "outcome": int(c.outcome),
                "channel": int(c.channel),
                "risk_score": num_to_json(c.risk_score),
                "model_score": optional_num_to_json(c.model_score),
                "rule_hits": [rule_hit_to_dict(h) for h in c.rule_hits],
                "contributions": [contribution_to_dict(x) for x in c.contributions],
                "random_control": c.random_control,
            }
            for c in a.containers
        ],
        "rule_hits": [rule_hit_to_dict(h) for h in a.rule_hits],
        "risk_score": num_to_json(a.risk_score),
        "summary": {
            "no_action": a.summary.no_action,
            "scan": a.summary.scan,
            "physical_examination": a.summary.physical_examination,
            "highest_risk_container": a.summary.highest_risk_container,
        },
        "model_status": int(a.model_status),
        "model_name": a.model_name,
        "model_version": a.model_version,
        "rule_set_version": a.rule_set_version,
        "assessment_time": time_to_json(a.assessment_time),
    }


def cargo_assessment_from_dict(d: JsonDict) -> CargoAssessment:
    s = d["summary"]
    return CargoAssessment(
        assessment_id=d["assessment_id"],
        report_id=d["report_id"],
        report_version=d["report_version"],
        filing_type=FilingType(d["filing_type"]),
        pre_loading_outcome=PreLoadingOutcome(d["pre_loading_outcome"]),
        containers=tuple(
            ContainerAssessment(
                container_number=c["container_number"],
                outcome=ContainerOutcome(c["outcome"]),
                channel=Channel(c["channel"]),
                risk_score=float_from_json(c["risk_score"]),
                model_score=optional_float_from_json(c["model_score"]),
                rule_hits=tuple(rule_hit_from_dict(h) for h in c["rule_hits"]),
                contributions=tuple(contribution_from_dict(x) for x in c["contributions"]),
                random_control=c.get("random_control", False),
            )
            for c in d["containers"]
        ),
        rule_hits=tuple(rule_hit_from_dict(h) for h in d["rule_hits"]),
        risk_score=float_from_json(d["risk_score"]),
        summary=CargoSummary(s["no_action"], s["scan"], s["physical_examination"], s["highest_risk_container"]),
        model_status=ModelStatus(d["model_status"]),
        model_name=d["model_name"],
        model_version=d["model_version"],
        rule_set_version=d["rule_set_version"],
        assessment_time=time_from_json(d["assessment_time"]),
    )
