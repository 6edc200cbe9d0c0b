"""What cargo screening needs from storage."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from risk_service.domain.cargo.assessment import CargoAssessment
from risk_service.domain.cargo.model import CargoReport
from risk_service.domain.consistency import DeclarationReassessment


@dataclass(frozen=True, slots=True)
class CargoRecord:
    assessment: CargoAssessment
    report: CargoReport
    content_hash: str  # of the report content; tells a retry from a conflicting re-use of a version
    # Linked declarations assessed again because this report arrived; stored with it, once.
    reassessments: tuple[DeclarationReassessment, ...] = ()


@dataclass(frozen=True, slots=True)
class CargoSaveResult:
    assessment: CargoAssessment  # the stored one: new, or the earlier one for a retry
    created: bool  # False when (report_id, version) was already stored
    conflict: bool  # already stored with different content; `assessment` is the stored one


class CargoStore(Protocol):
    def save_many(self, records: Sequence[CargoRecord], *, atomic: bool = False) -> Future[list[CargoSaveResult]]:
        """Stores durably (group commit); results in record order, with the same semantics as declarations."""
        ...

    def latest_before(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], CargoAssessment]:
        """For each (report id, version), the assessment of the highest earlier version stored, if any."""
        ...

    def history(self, report_id: str) -> list[CargoAssessment]:
        """Every stored assessment of the report, oldest version first."""
        ...

    def ping(self) -> bool: ...
