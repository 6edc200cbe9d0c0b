"""What the domain needs from storage, as plain types and a protocol the store implements."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from risk_service.domain.assessment import Assessment
from risk_service.domain.declaration import Declaration


@dataclass(frozen=True, slots=True)
class AssessmentRecord:
    assessment: Assessment
    declaration: Declaration
    content_hash: str  # of the declaration content; tells a retry from a conflicting re-use of a version


@dataclass(frozen=True, slots=True)
class SaveResult:
    assessment: Assessment  # the stored one: new, or the earlier one for a retry
    created: bool  # False when (declaration_id, version) was already stored
    conflict: bool  # already stored with different content; `assessment` is the stored one


class AssessmentStore(Protocol):
    def save_many(self, records: Sequence[AssessmentRecord], *, atomic: bool = False) -> Future[list[SaveResult]]:
        """Stores durably (group commit); results in record order.

        With atomic, a submission holding any conflict is written not at all: every result then
        has created=False, and the conflicting ones conflict=True.
        """
        ...

    def ping(self) -> bool: ...
