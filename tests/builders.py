"""Builders of valid declarations (proto and domain) that tests tweak one field at a time."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format

from protos.risk.v1 import declaration_pb2
from risk_service.domain.assessment import Assessment, Channel, ModelStatus
from risk_service.domain.declaration import (
    AeoStatus,
    Declaration,
    DeclarationType,
    DutyTax,
    GoodsItem,
    Party,
    TransportMode,
)
from risk_service.grpc.convert import declaration_to_pb

_ids = itertools.count(1)
LODGED = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def next_id(prefix: str = "DEC") -> str:
    return f"{prefix}-{next(_ids):08d}"


def item(**overrides: Any) -> GoodsItem:
    base = GoodsItem(
        item_number=1,
        hs_code="8471300000",
        description="Laptop computers, 14 inch",
        quantity=100,
        quantity_unit="NAR",
        net_mass_kg=180.0,
        gross_mass_kg=200.0,
        customs_value=3_400_000.0,
        origin_country="CN",
        preference_claimed="",
        permit_references=(),
        duties_and_taxes=(DutyTax("A00", 0.0), DutyTax("B00", 340_000.0)),
    )
    return replace(base, **overrides)


def declaration(**overrides: Any) -> Declaration:
    base = Declaration(
        declaration_id=next_id(),
        version=1,
        type=DeclarationType.IMPORT,
        lodgement_time=LODGED,
        customs_office="020",
        declarant=Party("BRK-0001", "Harbour Brokers"),
        importer=Party("IMP-0001", "Seoul Trading"),
        exporter=Party("EXP-0001", "Shenzhen Electronics"),
        aeo_status=AeoStatus.NONE,
        export_country="CN",
        origin_country="CN",
        destination_country="KR",
        transport_mode=TransportMode.SEA,
        transport_document_number="MAEU123456789",
        container_numbers=("MSCU1234566",),
        incoterm="FOB",
        invoice_currency="USD",
        invoice_amount=70_000.0,
        items=(item(),),
    )
    return replace(base, **overrides)


def declaration_pb(**overrides: Any) -> declaration_pb2.Declaration:
    """The proto twin of declaration(); overrides are domain-style keyword arguments."""
    return declaration_to_pb(declaration(**overrides))


def load_declaration_json(path: str) -> declaration_pb2.Declaration:
    with open(path, encoding="utf-8") as f:
        return json_format.Parse(f.read(), declaration_pb2.Declaration())


def rule_item(number: int = 1, **overrides: Any) -> GoodsItem:
    """A clean smartphone line from Korea: the baseline the rule tests tweak."""
    baseline: dict[str, Any] = {
        "item_number": number,
        "hs_code": "8517130000",
        "description": "Smartphones, 128 GB, model X200",
        "quantity": 100.0,
        "quantity_unit": "NAR",
        "net_mass_kg": 20.0,
        "gross_mass_kg": 25.0,
        "customs_value": 25000.0,
        "origin_country": "KR",
        "duties_and_taxes": (),
    }
    return item(**{**baseline, **overrides})


def rule_declaration(*items: GoodsItem, **overrides: Any) -> Declaration:
    """A clean import into GB that no default rule fires on, with `items` or one rule_item()."""
    baseline: dict[str, Any] = {
        "declaration_id": "26GB000000000001",
        "lodgement_time": None,
        "customs_office": "GB000060",
        "declarant": Party("GB111111111000", "Broker Ltd"),
        "importer": Party("GB222222222000", "Importer Ltd"),
        "exporter": Party("KR333333333000", "Exporter Co"),
        "export_country": "KR",
        "origin_country": "KR",
        "destination_country": "GB",
        "transport_document_number": "MSCU1234567",
        "invoice_amount": 25000.0,
        "items": items or (rule_item(),),
    }
    return declaration(**{**baseline, **overrides})


def declarations_from_history(history: Any) -> list[Declaration]:
    """Turns a synthetic history frame (one row per goods item) into the declarations as filed."""
    out: list[Declaration] = []
    for _, rows in history.groupby("declaration_id", sort=False):
        first = rows.iloc[0]
        out.append(
            Declaration(
                declaration_id=str(first.declaration_id),
                version=1,
                type=DeclarationType(int(first.declaration_type)),
                lodgement_time=first.lodgement_time.to_pydatetime(),
                customs_office=str(first.customs_office),
                declarant=Party(str(first.declarant_id)),
                importer=Party(str(first.importer_id)),
                exporter=Party(str(first.exporter_id)),
                aeo_status=AeoStatus(int(first.aeo_status)),
                export_country=str(first.export_country),
                origin_country=str(first.origin_country),
                destination_country="KR",
                transport_mode=TransportMode(int(first.transport_mode)),
                transport_document_number=f"BL{first.declaration_id}",
                container_numbers=(),
                incoterm="FOB",
                invoice_currency="KRW",
                invoice_amount=float(rows.customs_value.sum()),
                items=tuple(
                    GoodsItem(
                        item_number=int(r.item_number),
                        hs_code=str(r.hs_code),
                        description=str(r.description),
                        quantity=float(r.quantity),
                        quantity_unit=str(r.quantity_unit),
                        net_mass_kg=float(r.net_mass_kg),
                        gross_mass_kg=float(r.gross_mass_kg),
                        customs_value=float(r.customs_value),
                        origin_country=str(r.origin_country),
                        preference_claimed="FTA" if r.preference_claimed else "",
                        permit_references=tuple(f"PRM-{r.declaration_id}-{k}" for k in range(int(r.permit_count))),
                        duties_and_taxes=(DutyTax("B00", float(r.duties_and_taxes)),),
                    )
                    for r in rows.itertuples()
                ),
            )
        )
    return out


def assessment(**overrides: Any) -> Assessment:
    """A GREEN rules-only assessment of declaration DEC-1 v1; tests set what they look at."""
    base = Assessment(
        assessment_id="A-1",
        declaration_id="DEC-1",
        declaration_version=1,
        channel=Channel.GREEN,
        risk_score=0.1,
        model_score=None,
        rule_hits=(),
        contributions=(),
        random_control=False,
        model_status=ModelStatus.UNAVAILABLE,
        model_name="",
        model_version="",
        rule_set_version="rules-1",
        assessment_time=LODGED,
        controlled_goods_version="cg-1",
    )
    return replace(base, **overrides)
