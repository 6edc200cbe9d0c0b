"""What the domain needs from storage, as plain types and a protocol the store implements."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from risk_service.domain.assessment import Assessment
from risk_service.domain.consistency import CargoReassessment
from risk_service.domain.declaration import Declaration
from risk_service.domain.errors import DomainError
from risk_service.domain.permits.ledger import CancellationResult, DrawRefusal, LedgerClaim, PermitUsage
from risk_service.domain.permits.model import LineBalance, Permit, PermitAction, PermitChange, PermitState, PermitStatus


@dataclass(frozen=True, slots=True)
class AssessmentRecord:
    assessment: Assessment
    declaration: Declaration
    content_hash: str  # of the declaration content; tells a retry from a conflicting re-use of a version
    claim: LedgerClaim | None = None  # what it draws from permits; settled in the same transaction
    # Linked cargo reports assessed again because this declaration arrived; stored with it, once.
    reassessments: tuple[CargoReassessment, ...] = ()


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


#: Called by the store inside the ledger transaction when it refused part of a record's claim:
#: returns the assessment to store instead (flagged, channel raised). Pure; must not raise.
SettleRefusals = Callable[[AssessmentRecord, Sequence[DrawRefusal]], Assessment]

#: Called by the store after a commit with the new totals of every goods line it drew from.
BalancesChanged = Callable[[Mapping[tuple[str, int], LineBalance]], None]


# -- permits ------------------------------------------------------------------------------------

#: Computes a permit's next version from its current state (None: not yet submitted).
#: Runs inside the store's transaction with the permit locked; raises DomainError to refuse.
PermitTransition = Callable[[PermitState | None], Permit]


@dataclass(frozen=True, slots=True)
class PermitChangeRequest:
    request_id: str  # idempotency key: a retry with the same id and content returns the stored change
    permit_id: str
    action: PermitAction
    actor: str
    reason: str
    content_hash: str  # of what was asked; the same request id with another hash is refused
    transition: PermitTransition


@dataclass(frozen=True, slots=True)
class ChangeOutcome:
    """One request's outcome. Both None: not applied because an atomic batch failed elsewhere."""

    change: PermitChange | None
    error: DomainError | None
    created: bool = False  # False for a retry that returned the stored change


@dataclass(frozen=True, slots=True)
class PermitFilter:
    """Conditions a listed permit meets; empty fields do not filter."""

    holder_id: str = ""
    issuing_agency: str = ""
    hs_code: str = ""  # permits with a goods line whose prefix covers this code
    status: PermitStatus = PermitStatus.UNSPECIFIED


class PermitStore(Protocol):
    def apply(self, requests: Sequence[PermitChangeRequest], *, atomic: bool = False) -> list[ChangeOutcome]:
        """Applies changes in order, each seeing the ones before; outcomes in request order.

        With atomic, one error means nothing is written. Never raises DomainError (it is in the outcome).
        """
        ...

    def get_many(self, permit_ids: Sequence[str]) -> dict[str, PermitState]: ...

    def history(self, permit_id: str) -> list[PermitChange]: ...

    def find(self, where: PermitFilter, *, after: str, limit: int) -> list[PermitState]:
        """Permits matching `where` with permit_id > after, in permit_id order, at most `limit`."""
        ...

    def usage(self, issuing_agency: str, *, after: str, limit: int) -> list[PermitUsage]: ...

    def changes_since(self, seq: int) -> list[tuple[int, str]]:
        """(change sequence number, permit id) of every change numbered above `seq`, in number order."""
        ...

    def last_change_seq(self) -> int:
        """The highest change sequence number so far; 0 when there is none."""
        ...

    def active_permit_ids(self, at: datetime, limit: int) -> list[str]:
        """Ids of ACTIVE permits still valid at `at`, most recently changed first, at most `limit`."""
        ...

    def cancel_declaration(
        self, declaration_id: str, *, request_id: str, actor: str, reason: str, at: datetime
    ) -> CancellationResult:
        """Returns every draw and use of the declaration to the permits; NotFound if never assessed."""
        ...
