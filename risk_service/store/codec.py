"""Assessments, declarations and permits to JSON dicts and back, exactly: the stored JSON is the record of truth."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from risk_service.domain.assessment import Assessment, Channel, FeatureContribution, ModelStatus, RuleHit
from risk_service.domain.declaration import (
    AeoStatus,
    Declaration,
    DeclarationType,
    DutyTax,
    GoodsItem,
    Party,
    TransportMode,
)
from risk_service.domain.permits.ledger import DrawRecord
from risk_service.domain.permits.model import (
    Permit,
    PermitAction,
    PermitChange,
    PermitGoodsLine,
    PermitStatus,
    PermitType,
)

# Written into every document so a later change of shape can be read alongside the old one.
FORMAT_VERSION = 1

JsonDict = dict[str, Any]

# Stores make the JSON of a document here, once per record, rather than through the column type:
# one reused encoder is cheaper on the writer's hot path, and these documents hold no NaN or cycles.
to_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False, check_circular=False).encode


def num_to_json(value: float) -> float | str:
    """JSON has no NaN or infinities (PostgreSQL rejects them), so those travel as strings float() reads back."""
    return value if math.isfinite(value) else str(value)


def float_from_json(value: float | str) -> float:
    return float(value)


def time_to_json(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime; the store keeps tz-aware instants only")
    return value.astimezone(UTC).isoformat()


def time_from_json(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def optional_time_to_json(value: datetime | None) -> str | None:
    return None if value is None else time_to_json(value)


def optional_time_from_json(value: str | None) -> datetime | None:
    return None if value is None else time_from_json(value)


def optional_num_to_json(value: float | None) -> float | str | None:
    return None if value is None else num_to_json(value)


def optional_float_from_json(value: float | str | None) -> float | None:
    return None if value is None else float_from_json(value)


def rule_hit_to_dict(h: RuleHit) -> JsonDict:
    return {
        "rule_id": h.rule_id,
        "message": h.message,
        "fields": list(h.fields),
        "weight": num_to_json(h.weight),
        "min_channel": None if h.min_channel is None else int(h.min_channel),
        "item_numbers": list(h.item_numbers),
    }


def rule_hit_from_dict(h: JsonDict) -> RuleHit:
    return RuleHit(
        rule_id=h["rule_id"],
        message=h["message"],
        fields=tuple(h["fields"]),
        weight=float_from_json(h["weight"]),
        min_channel=None if h["min_channel"] is None else Channel(h["min_channel"]),
        item_numbers=tuple(h["item_numbers"]),
    )


def contribution_to_dict(c: FeatureContribution) -> JsonDict:
    return {
        "feature": c.feature,
        "value": num_to_json(c.value),
        "contribution": num_to_json(c.contribution),
        "item_number": c.item_number,
    }


def contribution_from_dict(c: JsonDict) -> FeatureContribution:
    return FeatureContribution(
        feature=c["feature"],
        value=float_from_json(c["value"]),
        contribution=float_from_json(c["contribution"]),
        item_number=c["item_number"],
    )


def assessment_to_dict(a: Assessment) -> JsonDict:
    return {
        "format": FORMAT_VERSION,
        "assessment_id": a.assessment_id,
        "declaration_id": a.declaration_id,
        "declaration_version": a.declaration_version,
        "channel": int(a.channel),
        "risk_score": num_to_json(a.risk_score),
        "model_score": None if a.model_score is None else num_to_json(a.model_score),
        "rule_hits": [rule_hit_to_dict(h) for h in a.rule_hits],
        "contributions": [contribution_to_dict(c) for c in a.contributions],
        "random_control": a.random_control,
        "model_status": int(a.model_status),
        "model_name": a.model_name,
        "model_version": a.model_version,
        "rule_set_version": a.rule_set_version,
        "assessment_time": time_to_json(a.assessment_time),
        "controlled_goods_version": a.controlled_goods_version,
    }


def assessment_from_dict(d: JsonDict) -> Assessment:
    model_score = d["model_score"]
    return Assessment(
        assessment_id=d["assessment_id"],
        declaration_id=d["declaration_id"],
        declaration_version=d["declaration_version"],
        channel=Channel(d["channel"]),
        risk_score=float_from_json(d["risk_score"]),
        model_score=None if model_score is None else float_from_json(model_score),
        rule_hits=tuple(rule_hit_from_dict(h) for h in d["rule_hits"]),
        contributions=tuple(contribution_from_dict(c) for c in d["contributions"]),
        random_control=d["random_control"],
        model_status=ModelStatus(d["model_status"]),
        model_name=d["model_name"],
        model_version=d["model_version"],
        rule_set_version=d["rule_set_version"],
        assessment_time=time_from_json(d["assessment_time"]),
        # Documents stored before permits were checked have no such field.
        controlled_goods_version=d.get("controlled_goods_version", ""),
    )


def party_to_dict(p: Party) -> JsonDict:
    return {"id": p.id, "name": p.name}


def _item(i: GoodsItem) -> JsonDict:
    return {
        "item_number": i.item_number,
        "hs_code": i.hs_code,
        "description": i.description,
        "quantity": num_to_json(i.quantity),
        "quantity_unit": i.quantity_unit,
        "net_mass_kg": num_to_json(i.net_mass_kg),
        "gross_mass_kg": num_to_json(i.gross_mass_kg),
        "customs_value": num_to_json(i.customs_value),
        "origin_country": i.origin_country,
        "preference_claimed": i.preference_claimed,
        "permit_references": list(i.permit_references),
        "duties_and_taxes": [{"type_code": t.type_code, "amount": num_to_json(t.amount)} for t in i.duties_and_taxes],
        "packages": i.packages,
    }


def declaration_to_dict(d: Declaration) -> JsonDict:
    """The declaration as filed, kept beside its assessment for audit and for retraining."""
    return {
        "format": FORMAT_VERSION,
        "declaration_id": d.declaration_id,
        "version": d.version,
        "type": int(d.type),
        "lodgement_time": None if d.lodgement_time is None else time_to_json(d.lodgement_time),
        "customs_office": d.customs_office,
        "declarant": party_to_dict(d.declarant),
        "importer": party_to_dict(d.importer),
        "exporter": party_to_dict(d.exporter),
        "aeo_status": int(d.aeo_status),
        "export_country": d.export_country,
        "origin_country": d.origin_country,
        "destination_country": d.destination_country,
        "transport_mode": int(d.transport_mode),
        "transport_document_number": d.transport_document_number,
        "container_numbers": list(d.container_numbers),
        "incoterm": d.incoterm,
        "invoice_currency": d.invoice_currency,
        "invoice_amount": num_to_json(d.invoice_amount),
        "items": [_item(i) for i in d.items],
    }


def party_from_dict(d: JsonDict) -> Party:
    return Party(id=d["id"], name=d["name"])


def _item_from(d: JsonDict) -> GoodsItem:
    return GoodsItem(
        item_number=d["item_number"],
        hs_code=d["hs_code"],
        description=d["description"],
        quantity=float_from_json(d["quantity"]),
        quantity_unit=d["quantity_unit"],
        net_mass_kg=float_from_json(d["net_mass_kg"]),
        gross_mass_kg=float_from_json(d["gross_mass_kg"]),
        customs_value=float_from_json(d["customs_value"]),
        origin_country=d["origin_country"],
        preference_claimed=d["preference_claimed"],
        permit_references=tuple(d["permit_references"]),
        duties_and_taxes=tuple(
            DutyTax(type_code=t["type_code"], amount=float_from_json(t["amount"])) for t in d["duties_and_taxes"]
        ),
        packages=d.get("packages", 0),  # not in documents stored before packages were filed
    )


def declaration_from_dict(d: JsonDict) -> Declaration:
    """Reads a stored declaration back (audit, retraining); the hot path never needs it."""
    lodged = d["lodgement_time"]
    return Declaration(
        declaration_id=d["declaration_id"],
        version=d["version"],
        type=DeclarationType(d["type"]),
        lodgement_time=None if lodged is None else time_from_json(lodged),
        customs_office=d["customs_office"],
        declarant=party_from_dict(d["declarant"]),
        importer=party_from_dict(d["importer"]),
        exporter=party_from_dict(d["exporter"]),
        aeo_status=AeoStatus(d["aeo_status"]),
        export_country=d["export_country"],
        origin_country=d["origin_country"],
        destination_country=d["destination_country"],
        transport_mode=TransportMode(d["transport_mode"]),
        transport_document_number=d["transport_document_number"],
        container_numbers=tuple(d["container_numbers"]),
        incoterm=d["incoterm"],
        invoice_currency=d["invoice_currency"],
        invoice_amount=float_from_json(d["invoice_amount"]),
        items=tuple(_item_from(i) for i in d["items"]),
    )


# -- permits ------------------------------------------------------------------------------------


def _goods_line(line: PermitGoodsLine) -> JsonDict:
    return {
        "line_number": line.line_number,
        "hs_prefix": line.hs_prefix,
        "description": line.description,
        "unit": line.unit,
        "authorised_quantity": optional_num_to_json(line.authorised_quantity),
        "authorised_value": optional_num_to_json(line.authorised_value),
    }


def _goods_line_from(d: JsonDict) -> PermitGoodsLine:
    return PermitGoodsLine(
        line_number=d["line_number"],
        hs_prefix=d["hs_prefix"],
        description=d["description"],
        unit=d["unit"],
        authorised_quantity=optional_float_from_json(d["authorised_quantity"]),
        authorised_value=optional_float_from_json(d["authorised_value"]),
    )


def permit_to_dict(p: Permit) -> JsonDict:
    return {
        "format": FORMAT_VERSION,
        "permit_id": p.permit_id,
        "issuing_agency": p.issuing_agency,
        "type": int(p.type),
        "holder_id": p.holder_id,
        "goods_lines": [_goods_line(line) for line in p.goods_lines],
        "valid_from": optional_time_to_json(p.valid_from),
        "valid_to": optional_time_to_json(p.valid_to),
        "allowed_origin_countries": list(p.allowed_origin_countries),
        "allowed_customs_offices": list(p.allowed_customs_offices),
        "end_use": p.end_use,
        "single_use": p.single_use,
        "status": int(p.status),
        "version": p.version,
    }


def permit_from_dict(d: JsonDict) -> Permit:
    return Permit(
        permit_id=d["permit_id"],
        issuing_agency=d["issuing_agency"],
        type=PermitType(d["type"]),
        holder_id=d["holder_id"],
        goods_lines=tuple(_goods_line_from(line) for line in d["goods_lines"]),
        valid_from=optional_time_from_json(d["valid_from"]),
        valid_to=optional_time_from_json(d["valid_to"]),
        allowed_origin_countries=tuple(d["allowed_origin_countries"]),
        allowed_customs_offices=tuple(d["allowed_customs_offices"]),
        end_use=d["end_use"],
        single_use=d["single_use"],
        status=PermitStatus(d["status"]),
        version=d["version"],
    )


def permit_change_to_dict(c: PermitChange) -> JsonDict:
    return {
        "format": FORMAT_VERSION,
        "request_id": c.request_id,
        "action": int(c.action),
        "actor": c.actor,
        "reason": c.reason,
        "change_time": time_to_json(c.change_time),
        "permit": permit_to_dict(c.permit),
    }


def permit_change_from_dict(d: JsonDict) -> PermitChange:
    return PermitChange(
        request_id=d["request_id"],
        action=PermitAction(d["action"]),
        actor=d["actor"],
        reason=d["reason"],
        change_time=time_from_json(d["change_time"]),
        permit=permit_from_dict(d["permit"]),
    )


def draw_record_to_dict(r: DrawRecord) -> JsonDict:
    return {
        "permit_id": r.permit_id,
        "declaration_id": r.declaration_id,
        "declaration_version": r.declaration_version,
        "line_number": r.line_number,
        "item_number": r.item_number,
        "quantity": num_to_json(r.quantity),
        "value": num_to_json(r.value),
        "drawn_at": time_to_json(r.drawn_at),
    }


def draw_record_from_dict(d: JsonDict) -> DrawRecord:
    return DrawRecord(
        permit_id=d["permit_id"],
        declaration_id=d["declaration_id"],
        declaration_version=d["declaration_version"],
        line_number=d["line_number"],
        item_number=d["item_number"],
        quantity=float_from_json(d["quantity"]),
        value=float_from_json(d["value"]),
        drawn_at=time_from_json(d["drawn_at"]),
    )
