"""Cases, results and overrides to JSON dicts and back; case rows to domain cases."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from risk_service.domain.assessment import Channel
from risk_service.domain.review.cases import Case, CaseStatus, ChannelOverride, InspectionOutcome, InspectionResult
from risk_service.store.codec import JsonDict, optional_time_to_json, time_from_json


def result_to_dict(r: InspectionResult) -> JsonDict:
    return {
        "outcome": int(r.outcome),
        "finding_codes": list(r.finding_codes),
        "revenue_recovered": str(r.revenue_recovered),  # text: exact, as JSON numbers are not
        "currency": r.currency,
        "notes": r.notes,
        "item_numbers": list(r.item_numbers),
        "officer": r.officer,
        "recorded_at": optional_time_to_json(r.recorded_at),
        "declaration_version": r.declaration_version,
    }


def result_from_dict(d: Mapping[str, Any]) -> InspectionResult:
    return InspectionResult(
        outcome=InspectionOutcome(d["outcome"]),
        finding_codes=tuple(d["finding_codes"]),
        revenue_recovered=Decimal(str(d["revenue_recovered"])),
        currency=d["currency"],
        notes=d["notes"],
        item_numbers=tuple(int(n) for n in d["item_numbers"]),
        officer=d["officer"],
        recorded_at=time_from_json(d["recorded_at"]) if d["recorded_at"] else None,
        declaration_version=int(d["declaration_version"]),
    )


def override_to_dict(o: ChannelOverride) -> JsonDict:
    return {
        "channel": int(o.channel),
        "reason_code": o.reason_code,
        "reason_text": o.reason_text,
        "officer": o.officer,
        "overridden_at": optional_time_to_json(o.overridden_at),
    }


def override_from_dict(d: Mapping[str, Any]) -> ChannelOverride:
    return ChannelOverride(
        channel=Channel(d["channel"]),
        reason_code=d["reason_code"],
        reason_text=d["reason_text"],
        officer=d["officer"],
        overridden_at=time_from_json(d["overridden_at"]) if d["overridden_at"] else None,
    )


def case_to_row(c: Case) -> JsonDict:
    """The cases row of a case (JSON columns as dicts)."""
    return {
        "case_id": c.case_id,
        "declaration_version": c.declaration_version,
        "assessment_id": c.assessment_id,
        "status": int(c.status),
        "version": c.version,
        "channel": int(c.channel),
        "risk_score": c.risk_score,
        "revenue_at_stake": c.revenue_at_stake,
        "random_control": c.random_control,
        "customs_office": c.customs_office,
        "importer_id": c.importer_id,
        "assigned_officer": c.assigned_officer,
        "opened_at": c.opened_at,
        "updated_at": c.updated_at,
        "closed_at": c.closed_at,
        "result": None if c.result is None else result_to_dict(c.result),
        "override": None if c.override is None else override_to_dict(c.override),
    }


def case_to_dict(c: Case) -> JsonDict:
    """A case as JSON (times as ISO text): what a case event keeps and the audit trail hashes."""
    row = case_to_row(c)
    for key in ("opened_at", "updated_at", "closed_at"):
        row[key] = optional_time_to_json(row[key])
    return row


def case_from_row(row: Mapping[Any, Any]) -> Case:
    return Case(
        case_id=row["case_id"],
        declaration_id=row["case_id"],
        declaration_version=int(row["declaration_version"]),
        assessment_id=row["assessment_id"],
        status=CaseStatus(row["status"]),
        version=int(row["version"]),
        channel=Channel(row["channel"]),
        risk_score=float(row["risk_score"]),
        revenue_at_stake=float(row["revenue_at_stake"]),
        random_control=bool(row["random_control"]),
        customs_office=row["customs_office"],
        importer_id=row["importer_id"],
        assigned_officer=row["assigned_officer"],
        opened_at=row["opened_at"],
        updated_at=row["updated_at"],
        closed_at=row["closed_at"],
        result=None if row["result"] is None else result_from_dict(row["result"]),
        override=None if row["override"] is None else override_from_dict(row["override"]),
    )
