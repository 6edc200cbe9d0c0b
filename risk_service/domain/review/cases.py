"""Cases and what officers do to them, as pure transitions: the store applies one under the case's lock.

A case opens when a declaration gets a non-GREEN assessment (one case per declaration, over its
versions). An officer claims it, records what the inspection found, may override the channel with a
reason, and closes it. Each transition checks that the caller holds the case and returns the new
case with the event to keep; a transition that may not happen raises FailedPrecondition, a bad
result or override InvalidArgument naming the field.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from risk_service.domain.assessment import Channel
from risk_service.domain.errors import FailedPrecondition, FieldViolation, InvalidArgument
from risk_service.domain.validation import has_control_characters


class CaseStatus(enum.IntEnum):
    UNSPECIFIED = 0
    OPEN = 1
    CLAIMED = 2
    CLOSED = 3


class InspectionOutcome(enum.IntEnum):
    UNSPECIFIED = 0
    NO_DISCREPANCY = 1
    DISCREPANCY = 2
    SEIZURE = 3

    @property
    def is_finding(self) -> bool:
        return self in (InspectionOutcome.DISCREPANCY, InspectionOutcome.SEIZURE)


class CaseAction(enum.IntEnum):
    UNSPECIFIED = 0
    CLAIMED = 1
    RELEASED = 2
    RESULT_RECORDED = 3
    CHANNEL_OVERRIDDEN = 4
    CLOSED = 5
    REOPENED = 6  # by the service: a new version or a linked document put a closed case back in the queue


@dataclass(frozen=True, slots=True)
class InspectionResult:
    outcome: InspectionOutcome
    finding_codes: tuple[str, ...]
    revenue_recovered: Decimal  # in ReviewPolicy.currency, exactly as the officer gave it
    currency: str
    notes: str
    item_numbers: tuple[int, ...]  # empty: the whole declaration
    officer: str = ""
    recorded_at: datetime | None = None
    declaration_version: int = 0  # the version inspected

    def covers(self, item_number: int) -> bool:
        return not self.item_numbers or item_number in self.item_numbers


@dataclass(frozen=True, slots=True)
class ChannelOverride:
    channel: Channel
    reason_code: str
    reason_text: str
    officer: str = ""
    overridden_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Case:
    case_id: str
    declaration_id: str
    declaration_version: int
    assessment_id: str
    status: CaseStatus
    version: int
    channel: Channel
    risk_score: float
    revenue_at_stake: float
    random_control: bool
    customs_office: str
    importer_id: str
    assigned_officer: str
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    result: InspectionResult | None = None
    override: ChannelOverride | None = None


@dataclass(frozen=True, slots=True)
class CaseEvent:
    case_id: str
    case_version: int  # the version the action produced
    action: CaseAction
    actor: str
    at: datetime
    detail: str


#: Most revenue one result may record: beyond any consignment, and well inside what every store and
#: wire format holds exactly.
MAX_REVENUE = Decimal(10) ** 15


def text_violations(path: str, value: str, max_length: int) -> list[FieldViolation]:
    """Free text and ids officers type: bounded, and without control characters (PostgreSQL refuses NUL)."""
    if len(value) > max_length:
        return [FieldViolation(path, f"has {len(value)} characters; at most {max_length}")]
    if has_control_characters(value):
        return [FieldViolation(path, "contains control characters")]
    return []


@dataclass(frozen=True, slots=True)
class ReviewPolicy:
    """The configured lists officers choose from (settings.review)."""

    finding_codes: frozenset[str]
    override_reasons: frozenset[str]
    currency: str  # ISO 4217; revenue is recorded in it only
    max_text: int = 4000


# -- validation ------------------------------------------------------------------------------------


def result_violations(
    result: InspectionResult, policy: ReviewPolicy, item_numbers: Sequence[int]
) -> list[FieldViolation]:
    """What is wrong with a result for a declaration with these goods items (field paths under `result`)."""
    out: list[FieldViolation] = []
    if result.outcome not in (
        InspectionOutcome.NO_DISCREPANCY,
        InspectionOutcome.DISCREPANCY,
        InspectionOutcome.SEIZURE,
    ):
        out.append(FieldViolation("result.outcome", "is required: NO_DISCREPANCY, DISCREPANCY or SEIZURE"))
    for n, code in enumerate(result.finding_codes):
        if code not in policy.finding_codes:
            out.append(
                FieldViolation(
                    f"result.finding_codes[{n}]",
                    f"{code[:64]!r} is not a configured finding code; use one of {sorted(policy.finding_codes)}",
                )
            )
    if len(set(result.finding_codes)) != len(result.finding_codes):
        out.append(FieldViolation("result.finding_codes", "names a code twice"))
    if result.outcome == InspectionOutcome.NO_DISCREPANCY and result.finding_codes:
        out.append(FieldViolation("result.finding_codes", "must be empty when the outcome is NO_DISCREPANCY"))
    if result.outcome.is_finding and not result.finding_codes:
        out.append(FieldViolation("result.finding_codes", "name at least one finding for a discrepancy or seizure"))
    revenue = result.revenue_recovered
    if not revenue.is_finite() or revenue < 0 or revenue > MAX_REVENUE:
        out.append(FieldViolation("result.revenue_recovered", f"must be a finite amount from 0 to {MAX_REVENUE:,}"))
    if result.currency != policy.currency:
        out.append(
            FieldViolation(
                "result.revenue_recovered.currency_code",
                f"{result.currency[:8]!r}: revenue is recorded in {policy.currency}",
            )
        )
    known = set(item_numbers)
    for n, item in enumerate(result.item_numbers):
        if item not in known:
            out.append(FieldViolation(f"result.item_numbers[{n}]", f"the declaration has no goods item {item}"))
    if len(set(result.item_numbers)) != len(result.item_numbers):
        out.append(FieldViolation("result.item_numbers", "names an item twice"))
    out += text_violations("result.notes", result.notes, policy.max_text)
    return out


def override_violations(override: ChannelOverride, policy: ReviewPolicy) -> list[FieldViolation]:
    out: list[FieldViolation] = []
    if override.channel not in (Channel.GREEN, Channel.BLUE, Channel.YELLOW, Channel.RED):
        out.append(FieldViolation("override.channel", "is required: GREEN, BLUE, YELLOW or RED"))
    if override.reason_code not in policy.override_reasons:
        out.append(
            FieldViolation(
                "override.reason_code",
                f"{override.reason_code[:64]!r} is not a configured override reason; "
                f"use one of {sorted(policy.override_reasons)}",
            )
        )
    if not override.reason_text.strip():
        out.append(FieldViolation("override.reason_text", "is required: say why"))
    out += text_violations("override.reason_text", override.reason_text, policy.max_text)
    return out


# -- transitions -----------------------------------------------------------------------------------


def _holds(case: Case, officer: str, doing: str) -> None:
    if case.status == CaseStatus.CLOSED:
        raise FailedPrecondition(f"case {case.case_id} is closed; nothing more can be {doing}")
    if case.status != CaseStatus.CLAIMED:
        raise FailedPrecondition(f"case {case.case_id} is not claimed; claim it before it can be {doing}")
    if case.assigned_officer != officer:
        raise FailedPrecondition(f"case {case.case_id} is held by {case.assigned_officer}, not by {officer}")


def _event(case: Case, action: CaseAction, officer: str, at: datetime, detail: str) -> CaseEvent:
    return CaseEvent(case.case_id, case.version, action, officer, at, detail)


def _next(case: Case, at: datetime, **changes: object) -> Case:
    return replace(case, version=case.version + 1, updated_at=at, **changes)  # type: ignore[arg-type]


def claim(case: Case, officer: str, at: datetime) -> tuple[Case, CaseEvent]:
    if case.status == CaseStatus.CLOSED:
        raise FailedPrecondition(f"case {case.case_id} is closed")
    if case.status == CaseStatus.CLAIMED:
        who = "you" if case.assigned_officer == officer else case.assigned_officer
        raise FailedPrecondition(f"case {case.case_id} is already held by {who}")
    new = _next(case, at, status=CaseStatus.CLAIMED, assigned_officer=officer)
    return new, _event(new, CaseAction.CLAIMED, officer, at, "claimed")


def release(case: Case, officer: str, at: datetime) -> tuple[Case, CaseEvent]:
    _holds(case, officer, "released")
    new = _next(case, at, status=CaseStatus.OPEN, assigned_officer="")
    return new, _event(new, CaseAction.RELEASED, officer, at, "released to the queue")


def record_result(case: Case, officer: str, at: datetime, result: InspectionResult) -> tuple[Case, CaseEvent]:
    """The result must have passed result_violations; it replaces any earlier one (kept in the events)."""
    _holds(case, officer, "given a result")
    stored = replace(result, officer=officer, recorded_at=at, declaration_version=case.declaration_version)
    new = _next(case, at, result=stored)
    return new, _event(new, CaseAction.RESULT_RECORDED, officer, at, describe_result(stored))


def override_channel(case: Case, officer: str, at: datetime, override: ChannelOverride) -> tuple[Case, CaseEvent]:
    """The override must have passed override_violations."""
    _holds(case, officer, "overridden")
    if override.channel == case.channel:
        raise InvalidArgument(
            [FieldViolation("override.channel", f"is the assessed channel ({case.channel.name}); set another")]
        )
    stored = replace(override, officer=officer, overridden_at=at)
    new = _next(case, at, override=stored)
    detail = f"channel {case.channel.name} -> {override.channel.name} ({override.reason_code}): {override.reason_text}"
    return new, _event(new, CaseAction.CHANNEL_OVERRIDDEN, officer, at, detail)


def close(case: Case, officer: str, at: datetime) -> tuple[Case, CaseEvent]:
    _holds(case, officer, "closed")
    released = case.override is not None and case.override.channel == Channel.GREEN
    if case.result is None and not released:
        raise FailedPrecondition(
            f"case {case.case_id} has no inspection result; record one, or override the channel to GREEN first"
        )
    if case.result is not None and case.result.declaration_version != case.declaration_version and not released:
        raise FailedPrecondition(
            f"case {case.case_id}: the result is for version {case.result.declaration_version} but version "
            f"{case.declaration_version} has been filed since; record a result for it"
        )
    new = _next(case, at, status=CaseStatus.CLOSED, closed_at=at)
    return new, _event(new, CaseAction.CLOSED, officer, at, "closed")


def describe_result(result: InspectionResult) -> str:
    findings = f" ({', '.join(result.finding_codes)})" if result.finding_codes else ""
    items = f" on items {', '.join(map(str, result.item_numbers))}" if result.item_numbers else ""
    amount = result.revenue_recovered
    # Cents as money is written, more places only when the officer gave them.
    shown = f"{amount:,.2f}" if amount == amount.quantize(Decimal("0.01")) else f"{amount:,f}"
    revenue = f", revenue recovered {shown} {result.currency}" if amount else ""
    return f"result {result.outcome.name}{findings}{items}{revenue}"
