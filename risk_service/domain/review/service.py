"""Officers' review as an application service: validate, apply a case transition, assemble what officers see."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from risk_service.domain.assessment import Assessment, RuleHit
from risk_service.domain.cargo.assessment import CargoAssessment
from risk_service.domain.cargo.model import CargoReport
from risk_service.domain.consistency import is_consistency_hit
from risk_service.domain.declaration import Declaration
from risk_service.domain.errors import Aborted, DomainError, FieldViolation, InvalidArgument, NotFound
from risk_service.domain.permits.checks import REASON_CODES as PERMIT_REASON_CODES
from risk_service.domain.permits.ledger import DrawRecord
from risk_service.domain.review import cases as transitions
from risk_service.domain.review.cases import (
    Case,
    CaseEvent,
    ChannelOverride,
    InspectionResult,
    ReviewPolicy,
    text_violations,
)
from risk_service.domain.review.explain import Explanation, explain
from risk_service.domain.review.ports import CaseFilter, CasePosition, CaseStore, ImporterRecord
from risk_service.domain.review.stats import RuleStats, rule_stats

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_MAX_ID = 64

#: The cargo reports a declaration is compared with (CrossCheck.reports_of); blocks.
LinkedReports = Callable[[Declaration], list[tuple[CargoReport, CargoAssessment]]]


@dataclass(frozen=True)
class CaseDetail:
    case: Case
    versions: tuple[Declaration, ...]  # oldest first
    assessments: tuple[Assessment, ...]  # versions and re-assessments, oldest first
    permit_checks: tuple[RuleHit, ...]
    permit_draws: tuple[DrawRecord, ...]
    consistency_findings: tuple[RuleHit, ...]
    cargo_reports: tuple[tuple[CargoReport, CargoAssessment], ...]
    explanations: tuple[Explanation, ...]
    importer: ImporterRecord
    events: tuple[CaseEvent, ...]


def encode_page_token(p: CasePosition) -> str:
    text = json.dumps([p.risk_score, p.revenue_at_stake, p.case_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode()


def decode_page_token(token: str) -> CasePosition:
    try:
        score, revenue, case_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return CasePosition(float(score), float(revenue), str(case_id))
    except Exception:
        raise InvalidArgument([FieldViolation("page_token", "is not a token ListCases returned")]) from None


def _required_id(value: str, path: str) -> list[FieldViolation]:
    if not value.strip():
        return [FieldViolation(path, "is required")]
    return text_violations(path, value, _MAX_ID)


class ReviewObserver(Protocol):
    def acted(self, action: str, outcome: str) -> None:
        """An officer's action on a case: DONE, or the reason it was refused (ABORTED, FAILED_PRECONDITION...)."""


class _NullObserver:
    def acted(self, action: str, outcome: str) -> None:
        pass


class ReviewService:
    def __init__(
        self,
        cases: CaseStore,
        policy: ReviewPolicy,
        *,
        linked_reports: LinkedReports | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        observer: ReviewObserver | None = None,
    ) -> None:
        self._cases = cases
        self._policy = policy
        self._linked_reports = linked_reports  # None: declarations are not compared with cargo reports
        self._clock = clock
        self._observer: ReviewObserver = observer or _NullObserver()

    @property
    def policy(self) -> ReviewPolicy:
        return self._policy

    # -- reads -----------------------------------------------------------------------------------

    async def list(self, where: CaseFilter, *, page_size: int, page_token: str) -> tuple[list[Case], str]:
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise InvalidArgument([FieldViolation("page_size", f"must be 0 (default) to {MAX_PAGE_SIZE}")])
        if where.min_risk_score is not None and not 0 <= where.min_risk_score <= 1:
            raise InvalidArgument([FieldViolation("min_risk_score", "must be between 0 and 1")])
        if where.opened_after and where.opened_before and where.opened_after >= where.opened_before:
            raise InvalidArgument([FieldViolation("opened_before", "must be after opened_after")])
        self._refuse(
            [
                *text_violations("customs_office", where.customs_office, _MAX_ID),
                *text_violations("assigned_officer", where.assigned_officer, _MAX_ID),
                *text_violations("page_token", page_token, 1024),
            ]
        )
        after = decode_page_token(page_token) if page_token else None
        limit = page_size or DEFAULT_PAGE_SIZE
        found = await asyncio.to_thread(self._cases.find, where, after=after, limit=limit + 1)
        page = found[:limit]
        if len(found) <= limit:
            return page, ""
        last = page[-1]
        return page, encode_page_token(CasePosition(last.risk_score, last.revenue_at_stake, last.case_id))

    async def get(self, case_id: str) -> Case:
        self._refuse(_required_id(case_id, "case_id"))
        case = await asyncio.to_thread(self._cases.get, case_id)
        if case is None:
            raise NotFound(f"no case {case_id}")
        return case

    async def detail(self, case_id: str) -> CaseDetail:
        case = await self.get(case_id)
        return await asyncio.to_thread(self._detail, case)

    def _detail(self, case: Case) -> CaseDetail:
        store = self._cases
        versions = store.declaration_versions(case.declaration_id)
        history = store.assessments(case.declaration_id)
        newest = history[-1] if history else None
        hits = newest.rule_hits if newest else ()
        declaration = versions[-1] if versions else None
        reports = self._linked_reports(declaration) if self._linked_reports and declaration else []
        return CaseDetail(
            case=case,
            versions=tuple(versions),
            assessments=tuple(history),
            permit_checks=tuple(h for h in hits if h.rule_id in PERMIT_REASON_CODES),
            permit_draws=tuple(store.draws(case.declaration_id)),
            consistency_findings=tuple(h for h in hits if is_consistency_hit(h)),
            cargo_reports=tuple(reports),
            explanations=tuple(explain(declaration, newest.contributions)) if declaration and newest else (),
            importer=store.importer_record(case.importer_id, exclude=case.declaration_id),
            events=tuple(store.events(case.case_id)),
        )

    async def rule_stats(self, since: datetime | None, until: datetime | None) -> RuleStats:
        violations = []
        if since is None:
            violations.append(FieldViolation("since", "is required"))
        if until is None:
            violations.append(FieldViolation("until", "is required"))
        if since and until and since >= until:
            violations.append(FieldViolation("until", "must be after since"))
        self._refuse(violations)
        currency = self._policy.currency
        return await asyncio.to_thread(
            lambda: rule_stats(self._cases.labelled_filings(since=since, until=until), currency)
        )

    # -- officers' actions -----------------------------------------------------------------------

    async def claim(self, case_id: str, expected_version: int, officer: str) -> Case:
        self._check_action(case_id, expected_version, officer)
        return await self._act(
            "claim", case_id, expected_version, lambda c: transitions.claim(c, officer, self._clock())
        )

    async def release(self, case_id: str, expected_version: int, officer: str) -> Case:
        self._check_action(case_id, expected_version, officer)
        return await self._act(
            "release", case_id, expected_version, lambda c: transitions.release(c, officer, self._clock())
        )

    async def close(self, case_id: str, expected_version: int, officer: str) -> Case:
        self._check_action(case_id, expected_version, officer)
        return await self._act(
            "close", case_id, expected_version, lambda c: transitions.close(c, officer, self._clock())
        )

    async def override(self, case_id: str, expected_version: int, officer: str, override: ChannelOverride) -> Case:
        self._check_action(case_id, expected_version, officer, transitions.override_violations(override, self._policy))
        return await self._act(
            "override",
            case_id,
            expected_version,
            lambda c: transitions.override_channel(c, officer, self._clock(), override),
        )

    async def record_result(self, case_id: str, expected_version: int, officer: str, result: InspectionResult) -> Case:
        self._check_action(case_id, expected_version, officer)
        case = await self.get(case_id)
        versions = await asyncio.to_thread(self._cases.declaration_versions, case.declaration_id)
        inspected = next((d for d in versions if d.version == case.declaration_version), None)
        items = [i.item_number for i in inspected.items] if inspected else []
        self._refuse(transitions.result_violations(result, self._policy, items))

        def record(current: Case) -> tuple[Case, CaseEvent]:
            if current.declaration_version != case.declaration_version:  # a new version arrived meanwhile
                raise Aborted(f"case {case_id} now holds version {current.declaration_version}; reload it")
            return transitions.record_result(current, officer, self._clock(), result)

        return await self._act("result", case_id, expected_version, record)

    def _check_action(
        self, case_id: str, expected_version: int, officer: str, more: Sequence[FieldViolation] = ()
    ) -> None:
        violations = [*_required_id(case_id, "case_id"), *_required_id(officer, "officer")]
        if expected_version < 1:
            violations.append(FieldViolation("expected_version", "is required: the case version you read"))
        self._refuse([*violations, *more])

    async def _act(
        self, action: str, case_id: str, expected_version: int, transition: Callable[[Case], tuple[Case, CaseEvent]]
    ) -> Case:
        try:
            case = await asyncio.to_thread(self._cases.act, case_id, expected_version, transition)
        except DomainError as err:
            self._observer.acted(action, err.reason)  # races and stale views show here
            raise
        self._observer.acted(action, "DONE")
        return case

    @staticmethod
    def _refuse(violations: Sequence[FieldViolation]) -> None:
        if violations:
            raise InvalidArgument(list(violations))
