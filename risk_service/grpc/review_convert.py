"""Conversions between the review messages and domain cases, results and overrides."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from google.type import money_pb2

from protos.risk.v1 import review_pb2, review_service_pb2
from risk_service.domain.assessment import Channel
from risk_service.domain.errors import FieldViolation, InvalidArgument
from risk_service.domain.review.cases import (
    Case,
    CaseEvent,
    CaseStatus,
    ChannelOverride,
    InspectionOutcome,
    InspectionResult,
)
from risk_service.domain.review.ports import CaseFilter, ImporterRecord
from risk_service.domain.review.service import CaseDetail
from risk_service.domain.review.stats import RuleStats
from risk_service.grpc.cargo_convert import cargo_assessment_to_pb, cargo_report_to_pb
from risk_service.grpc.convert import (
    E,
    assessment_to_pb,
    declaration_to_pb,
    enum_from_pb,
    rule_hit_to_pb,
    time_from_pb,
    time_to_pb,
)
from risk_service.grpc.permit_convert import draw_record_to_pb

_NANOS = 1_000_000_000


def money_from_pb(message: money_pb2.Money, path: str) -> tuple[Decimal, str]:
    """(amount, currency) of a google.type.Money, exactly; INVALID_ARGUMENT naming the field when malformed."""
    violations = []
    if not -_NANOS < message.nanos < _NANOS:
        violations.append(FieldViolation(f"{path}.nanos", "must be between -999,999,999 and 999,999,999"))
    if (message.units > 0 and message.nanos < 0) or (message.units < 0 and message.nanos > 0):
        violations.append(FieldViolation(f"{path}.nanos", "must have the sign of units"))
    if violations:
        raise InvalidArgument(violations)
    return Decimal(message.units) + Decimal(message.nanos).scaleb(-9), message.currency_code


def money_to_pb(amount: Decimal, currency: str) -> money_pb2.Money:
    """The inverse of money_from_pb for amounts it accepted (nanos carry the sign of units)."""
    units = int(amount)  # toward zero
    return money_pb2.Money(currency_code=currency, units=units, nanos=int((amount - units).scaleb(9)))


def result_from_pb(message: review_pb2.InspectionResult, currency: str) -> InspectionResult:
    """The result as asked; an absent revenue is zero in the configured currency."""
    if message.HasField("revenue_recovered"):
        amount, code = money_from_pb(message.revenue_recovered, "result.revenue_recovered")
    else:
        amount, code = Decimal(0), currency
    return InspectionResult(
        outcome=enum_from_pb(InspectionOutcome, message.outcome),
        finding_codes=tuple(message.finding_codes),
        revenue_recovered=amount,
        currency=code,
        notes=message.notes,
        item_numbers=tuple(message.item_numbers),
    )


def result_to_pb(r: InspectionResult) -> review_pb2.InspectionResult:
    message = review_pb2.InspectionResult(
        outcome=int(r.outcome),  # type: ignore[arg-type]
        finding_codes=list(r.finding_codes),
        revenue_recovered=money_to_pb(r.revenue_recovered, r.currency),
        notes=r.notes,
        item_numbers=list(r.item_numbers),
        officer=r.officer,
        declaration_version=r.declaration_version,
    )
    if r.recorded_at is not None:
        message.record_time.CopyFrom(time_to_pb(r.recorded_at))
    return message


def override_from_pb(message: review_pb2.ChannelOverride) -> ChannelOverride:
    return ChannelOverride(
        channel=enum_from_pb(Channel, message.channel),
        reason_code=message.reason_code,
        reason_text=message.reason_text,
    )


def override_to_pb(o: ChannelOverride) -> review_pb2.ChannelOverride:
    message = review_pb2.ChannelOverride(
        channel=int(o.channel),  # type: ignore[arg-type]
        reason_code=o.reason_code,
        reason_text=o.reason_text,
        officer=o.officer,
    )
    if o.overridden_at is not None:
        message.override_time.CopyFrom(time_to_pb(o.overridden_at))
    return message


def case_to_pb(c: Case) -> review_pb2.Case:
    message = review_pb2.Case(
        case_id=c.case_id,
        declaration_id=c.declaration_id,
        declaration_version=c.declaration_version,
        assessment_id=c.assessment_id,
        status=int(c.status),  # type: ignore[arg-type]
        version=c.version,
        channel=int(c.channel),  # type: ignore[arg-type]
        risk_score=c.risk_score,
        revenue_at_stake=c.revenue_at_stake,
        random_control=c.random_control,
        customs_office=c.customs_office,
        importer_id=c.importer_id,
        assigned_officer=c.assigned_officer,
        open_time=time_to_pb(c.opened_at),
        update_time=time_to_pb(c.updated_at),
    )
    if c.closed_at is not None:
        message.close_time.CopyFrom(time_to_pb(c.closed_at))
    if c.result is not None:
        message.result.CopyFrom(result_to_pb(c.result))
    if c.override is not None:
        message.override.CopyFrom(override_to_pb(c.override))
    return message


def _enum_values(cls: type[E], values: Sequence[int], path: str) -> frozenset[E]:
    """The values of a repeated enum filter; INVALID_ARGUMENT naming any unknown or UNSPECIFIED one."""
    found = [enum_from_pb(cls, v) for v in values]
    bad = [
        FieldViolation(f"{path}[{n}]", f"{v} is not a value to filter by") for n, v in enumerate(values) if not found[n]
    ]
    if bad:
        raise InvalidArgument(bad)
    return frozenset(found)


def filter_from_pb(m: review_service_pb2.ListCasesRequest) -> CaseFilter:
    return CaseFilter(
        channels=_enum_values(Channel, m.channels, "channels"),
        statuses=_enum_values(CaseStatus, m.statuses, "statuses"),
        customs_office=m.customs_office,
        opened_after=time_from_pb(m.opened_after, m.HasField("opened_after")),
        opened_before=time_from_pb(m.opened_before, m.HasField("opened_before")),
        min_risk_score=m.min_risk_score if m.HasField("min_risk_score") else None,
        assigned_officer=m.assigned_officer,
    )


def _event_to_pb(e: CaseEvent) -> review_pb2.CaseEvent:
    return review_pb2.CaseEvent(
        case_version=e.case_version,
        action=int(e.action),  # type: ignore[arg-type]
        actor=e.actor,
        event_time=time_to_pb(e.at),
        detail=e.detail,
    )


def _importer_to_pb(r: ImporterRecord) -> review_pb2.ImporterHistory:
    message = review_pb2.ImporterHistory(
        importer_id=r.importer_id, filings=r.filings, inspections=r.inspections, findings=r.findings
    )
    if r.first_filing is not None:
        message.first_filing_time.CopyFrom(time_to_pb(r.first_filing))
    for f in r.recent:
        past = message.recent.add(
            declaration_id=f.declaration_id,
            declaration_version=f.declaration_version,
            channel=int(f.channel),  # type: ignore[arg-type]
            outcome=int(f.outcome),  # type: ignore[arg-type]
        )
        if f.lodged_at is not None:
            past.lodgement_time.CopyFrom(time_to_pb(f.lodged_at))
    return message


def detail_to_pb(d: CaseDetail) -> review_pb2.CaseDetail:
    return review_pb2.CaseDetail(
        case=case_to_pb(d.case),
        declaration_versions=[declaration_to_pb(v) for v in d.versions],
        assessments=[assessment_to_pb(a) for a in d.assessments],
        permit_checks=[rule_hit_to_pb(h) for h in d.permit_checks],
        permit_draws=[draw_record_to_pb(x) for x in d.permit_draws],
        consistency_findings=[rule_hit_to_pb(h) for h in d.consistency_findings],
        cargo_reports=[
            review_pb2.LinkedCargoReport(report=cargo_report_to_pb(r), assessment=cargo_assessment_to_pb(a))
            for r, a in d.cargo_reports
        ],
        explanations=[
            review_pb2.Explanation(
                item_number=e.item_number, feature=e.feature, contribution=e.contribution, text=e.text
            )
            for e in d.explanations
        ],
        importer_history=_importer_to_pb(d.importer),
        events=[_event_to_pb(e) for e in d.events],
    )


def rule_stats_to_pb(s: RuleStats) -> review_service_pb2.GetRuleStatsResponse:
    return review_service_pb2.GetRuleStatsResponse(
        stats=[
            review_pb2.RuleStat(
                rule_id=r.rule_id,
                hits=r.hits,
                inspected_hits=r.inspected_hits,
                findings=r.findings,
                finding_rate=r.finding_rate,
                revenue_per_inspection=r.revenue_per_inspection,
            )
            for r in s.stats
        ],
        declarations=s.declarations,
        inspected=s.inspected,
        currency=s.currency,
    )
