"""What review needs from storage: filters, pages and records as plain types, and the store protocol."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from risk_service.domain.assessment import Assessment, Channel
from risk_service.domain.declaration import Declaration
from risk_service.domain.permits.ledger import DrawRecord
from risk_service.domain.review.cases import Case, CaseEvent, CaseStatus, InspectionOutcome, InspectionResult

#: Computes a case's next state and the event to keep from its current state, under the case's lock.
#: Raises DomainError to refuse.
CaseTransition = Callable[[Case], tuple[Case, CaseEvent]]


@dataclass(frozen=True, slots=True)
class CaseFilter:
    """Conditions a listed case meets; empty fields do not filter."""

    channels: frozenset[Channel] = frozenset()
    statuses: frozenset[CaseStatus] = frozenset()
    customs_office: str = ""
    opened_after: datetime | None = None
    opened_before: datetime | None = None
    min_risk_score: float | None = None
    assigned_officer: str = ""


@dataclass(frozen=True, slots=True)
class CasePosition:
    """Where a page ends in the queue's order (risk score and revenue descending, then case id)."""

    risk_score: float
    revenue_at_stake: float
    case_id: str


@dataclass(frozen=True, slots=True)
class PastFilingRecord:
    declaration_id: str
    declaration_version: int
    lodged_at: datetime | None
    channel: Channel
    outcome: InspectionOutcome  # UNSPECIFIED: no result


@dataclass(frozen=True, slots=True)
class ImporterRecord:
    importer_id: str
    filings: int
    inspections: int
    findings: int
    first_filing: datetime | None
    recent: tuple[PastFilingRecord, ...]


@dataclass(frozen=True, slots=True)
class LabelledFiling:
    """A declaration version with its newest assessment and, when inspected, the officer's result.

    The version is the one inspected when there is a result, else the newest.
    """

    declaration: Declaration
    assessment: Assessment
    result: InspectionResult | None


class CaseStore(Protocol):
    def get(self, case_id: str) -> Case | None: ...

    def find(self, where: CaseFilter, *, after: CasePosition | None, limit: int) -> list[Case]:
        """Cases matching `where` after `after` in the queue's order, at most `limit`."""
        ...

    def act(self, case_id: str, expected_version: int, transition: CaseTransition) -> Case:
        """Applies the transition atomically with its event and audit entry.

        NotFound for an unknown case; Aborted when expected_version is not the case's version.
        """
        ...

    def events(self, case_id: str) -> list[CaseEvent]: ...

    def declaration_versions(self, declaration_id: str) -> list[Declaration]:
        """Every stored version, oldest first."""
        ...

    def assessments(self, declaration_id: str) -> list[Assessment]:
        """Every assessment of the declaration, versions and re-assessments, oldest first."""
        ...

    def draws(self, declaration_id: str) -> list[DrawRecord]: ...

    def importer_record(self, importer_id: str, *, exclude: str, recent: int = 10) -> ImporterRecord: ...

    def labelled_filings(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[LabelledFiling]:
        """Declarations lodged in [since, until), in lodgement order, streamed in bounded memory."""
        ...
