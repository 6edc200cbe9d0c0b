"""Conversions between risk.v1 messages and domain objects. From the wire they never fail."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from protos.risk.v1 import assessment_pb2, declaration_pb2
from risk_service.domain.assessment import Assessment, Channel, FeatureContribution, RuleHit
from risk_service.domain.declaration import (
    AeoStatus,
    Declaration,
    DeclarationType,
    DutyTax,
    GoodsItem,
    Party,
    TransportMode,
)

E = TypeVar("E", bound=enum.IntEnum)
_MIN_TIME = datetime.min.replace(tzinfo=UTC)
_MAX_TIME = datetime.max.replace(tzinfo=UTC)


def enum_from_pb(cls: type[E], value: int) -> E:
    """Unknown numbers (open proto3 enums) become UNSPECIFIED, which validation refuses."""
    try:
        return cls(value)
    except ValueError:
        return cls(0)


def time_from_pb(message: Timestamp, present: bool) -> datetime | None:
    """None when absent; a time a datetime cannot hold is clamped to the nearest end, for validation to name."""
    if not present:
        return None
    try:
        return message.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        # Outside 0001..9999: clamp so validation reports the field instead of the decoder failing.
        return _MIN_TIME if message.seconds < 0 else _MAX_TIME


def time_to_pb(value: datetime) -> Timestamp:
    message = Timestamp()
    message.FromDatetime(value)
    return message


def party_from_pb(message: declaration_pb2.Party) -> Party:
    return Party(id=message.id, name=message.name)


def party_to_pb(party: Party) -> declaration_pb2.Party:
    return declaration_pb2.Party(id=party.id, name=party.name)


def _item(message: declaration_pb2.GoodsItem) -> GoodsItem:
    return GoodsItem(
        item_number=message.item_number,
        hs_code=message.hs_code,
        description=message.description,
        quantity=message.quantity,
        quantity_unit=message.quantity_unit,
        net_mass_kg=message.net_mass_kg,
        gross_mass_kg=message.gross_mass_kg,
        customs_value=message.customs_value,
        origin_country=message.origin_country,
        preference_claimed=message.preference_claimed,
        permit_references=tuple(message.permit_references),
        duties_and_taxes=tuple(DutyTax(d.type_code, d.amount) for d in message.duties_and_taxes),
        packages=message.packages,
    )


def declaration_from_pb(message: declaration_pb2.Declaration) -> Declaration:
    return Declaration(
        declaration_id=message.declaration_id,
        version=message.version,
        type=enum_from_pb(DeclarationType, message.type),
        lodgement_time=time_from_pb(message.lodgement_time, message.HasField("lodgement_time")),
        customs_office=message.customs_office,
        declarant=party_from_pb(message.declarant),
        importer=party_from_pb(message.importer),
        exporter=party_from_pb(message.exporter),
        aeo_status=enum_from_pb(AeoStatus, message.aeo_status),
        export_country=message.export_country,
        origin_country=message.origin_country,
        destination_country=message.destination_country,
        transport_mode=enum_from_pb(TransportMode, message.transport_mode),
        transport_document_number=message.transport_document_number,
        container_numbers=tuple(message.container_numbers),
        incoterm=message.incoterm,
        invoice_currency=message.invoice_currency,
        invoice_amount=message.invoice_amount,
        items=tuple(_item(i) for i in message.items),
    )


def _item_to_pb(item: GoodsItem) -> declaration_pb2.GoodsItem:
    return declaration_pb2.GoodsItem(
        item_number=item.item_number,
        hs_code=item.hs_code,
        description=item.description,
        quantity=item.quantity,
        quantity_unit=item.quantity_unit,
        net_mass_kg=item.net_mass_kg,
        gross_mass_kg=item.gross_mass_kg,
        customs_value=item.customs_value,
        origin_country=item.origin_country,
        preference_claimed=item.preference_claimed,
        permit_references=list(item.permit_references),
        duties_and_taxes=[
            declaration_pb2.DutyTax(type_code=d.type_code, amount=d.amount) for d in item.duties_and_taxes
        ],
        packages=item.packages,
    )


def declaration_to_pb(d: Declaration) -> declaration_pb2.Declaration:
    """The inverse of declaration_from_pb: what was filed, as an officer reads it back."""
    message = declaration_pb2.Declaration(
        declaration_id=d.declaration_id,
        version=d.version,
        type=int(d.type),  # type: ignore[arg-type]
        customs_office=d.customs_office,
        declarant=party_to_pb(d.declarant),
        importer=party_to_pb(d.importer),
        exporter=party_to_pb(d.exporter),
        aeo_status=int(d.aeo_status),  # type: ignore[arg-type]
        export_country=d.export_country,
        origin_country=d.origin_country,
        destination_country=d.destination_country,
        transport_mode=int(d.transport_mode),  # type: ignore[arg-type]
        transport_document_number=d.transport_document_number,
        container_numbers=list(d.container_numbers),
        incoterm=d.incoterm,
        invoice_currency=d.invoice_currency,
        invoice_amount=d.invoice_amount,
        items=[_item_to_pb(i) for i in d.items],
    )
    if d.lodgement_time is not None:
        message.lodgement_time.CopyFrom(time_to_pb(d.lodgement_time))
    return message


def rule_hit_to_pb(hit: RuleHit) -> assessment_pb2.RuleHit:
    return assessment_pb2.RuleHit(
        rule_id=hit.rule_id,
        message=hit.message,
        fields=hit.fields,
        weight=hit.weight,
        min_channel=int(hit.min_channel or Channel.UNSPECIFIED),  # type: ignore[arg-type]
        item_numbers=hit.item_numbers,
    )


def contribution_to_pb(c: FeatureContribution) -> assessment_pb2.FeatureContribution:
    return assessment_pb2.FeatureContribution(
        feature=c.feature, value=c.value, contribution=c.contribution, item_number=c.item_number
    )


def assessment_to_pb(assessment: Assessment) -> assessment_pb2.Assessment:
    message = assessment_pb2.Assessment(
        assessment_id=assessment.assessment_id,
        declaration_id=assessment.declaration_id,
        declaration_version=assessment.declaration_version,
        channel=int(assessment.channel),  # type: ignore[arg-type]
        risk_score=assessment.risk_score,
        rule_hits=[rule_hit_to_pb(h) for h in assessment.rule_hits],
        contributions=[contribution_to_pb(c) for c in assessment.contributions],
        random_control=assessment.random_control,
        model_status=int(assessment.model_status),  # type: ignore[arg-type]
        model_name=assessment.model_name,
        model_version=assessment.model_version,
        rule_set_version=assessment.rule_set_version,
        assessment_time=time_to_pb(assessment.assessment_time),
        controlled_goods_version=assessment.controlled_goods_version,
    )
    if assessment.model_score is not None:
        message.model_score = assessment.model_score
    return message
