"""Application service: validate, screen, store durably, then answer. Transport-free and async."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Sequence
from typing import Protocol

from risk_service.domain.assessment import Assessment
from risk_service.domain.declaration import Declaration
from risk_service.domain.errors import AlreadyExists, DomainError, FieldViolation, InvalidArgument, Unavailable
from risk_service.domain.importer_history import ImporterHistory
from risk_service.domain.ports import AssessmentRecord, AssessmentStore, SaveResult
from risk_service.domain.screening import Screener
from risk_service.domain.validation import ValidationLimits, validate_batch, validate_declaration

log = logging.getLogger(__name__)


class ScoringObserver(Protocol):
    def scored(self, assessments: Sequence[Assessment], seconds: float) -> None: ...

    def refused(self, reason: str, count: int = 1) -> None: ...


class _NullObserver:
    def scored(self, assessments: Sequence[Assessment], seconds: float) -> None:
        pass

    def refused(self, reason: str, count: int = 1) -> None:
        pass


def content_hash(declaration: Declaration) -> str:
    """Stable digest of everything filed; the dataclass repr is exact for floats and ordered tuples."""
    return hashlib.sha256(repr(declaration).encode()).hexdigest()


class ScoringService:
    def __init__(
        self,
        screener: Screener,
        store: AssessmentStore,
        history: ImporterHistory,
        limits: ValidationLimits,
        *,
        max_batch_size: int,
        observer: ScoringObserver | None = None,
    ) -> None:
        self._screener = screener
        self._store = store
        self._history = history
        self._limits = limits
        self._max_batch_size = max_batch_size
        self._observer: ScoringObserver = observer or _NullObserver()

    async def score_one(self, declaration: Declaration) -> Assessment:
        violations = validate_declaration(declaration, self._limits, path="declaration")
        self._refuse_if_invalid(violations)
        (outcome,) = await self._score_valid([declaration])
        if isinstance(outcome, DomainError):
            raise outcome
        return outcome

    async def score_batch(self, declarations: Sequence[Declaration]) -> list[Assessment]:
        """All or nothing for validity: one invalid declaration refuses the whole batch."""
        if not declarations:
            self._refuse_if_invalid([FieldViolation("declarations", "at least one declaration is required")])
        if len(declarations) > self._max_batch_size:
            self._refuse_if_invalid(
                [FieldViolation("declarations", f"has {len(declarations)} entries; at most {self._max_batch_size}")]
            )
        self._refuse_if_invalid(validate_batch(declarations, self._limits))
        outcomes = await self._score_valid(declarations)
        errors = [o for o in outcomes if isinstance(o, DomainError)]
        if errors:
            # The other declarations are stored; a retry of the batch returns them unchanged.
            raise AlreadyExists("; ".join(e.message for e in errors[:10]))
        return [o for o in outcomes if isinstance(o, Assessment)]

    async def score_each(self, declarations: Sequence[Declaration]) -> list[Assessment | DomainError]:
        """For streams: each declaration succeeds or fails on its own, results in input order."""
        outcomes: list[Assessment | DomainError | None] = [None] * len(declarations)
        valid: list[int] = []
        for i, declaration in enumerate(declarations):
            violations = validate_declaration(declaration, self._limits, path="declaration")
            if violations:
                self._observer.refused("INVALID_ARGUMENT")
                outcomes[i] = InvalidArgument(violations)
            else:
                valid.append(i)
        if valid:
            scored = await self._score_valid([declarations[i] for i in valid])
            for i, outcome in zip(valid, scored, strict=True):
                outcomes[i] = outcome
        return [o for o in outcomes if o is not None]

    def _refuse_if_invalid(self, violations: list[FieldViolation]) -> None:
        if violations:
            self._observer.refused("INVALID_ARGUMENT")
            raise InvalidArgument(violations)

    async def _score_valid(self, declarations: Sequence[Declaration]) -> list[Assessment | DomainError]:
        started = time.perf_counter()
        assessments = self._screener.assess(declarations)
        records = [AssessmentRecord(a, d, content_hash(d)) for a, d in zip(assessments, declarations, strict=True)]
        try:
            results: list[SaveResult] = await asyncio.wrap_future(self._store.save_many(records))
        except Exception as err:
            log.exception("storing %d assessments failed", len(records))
            self._observer.refused("STORE_UNAVAILABLE", len(records))
            raise Unavailable("the assessment store is unavailable; retry later") from err
        outcomes: list[Assessment | DomainError] = []
        for declaration, result in zip(declarations, results, strict=True):
            if result.conflict:
                self._observer.refused("DECLARATION_VERSION_CONFLICT")
                outcomes.append(
                    AlreadyExists(
                        f"declaration {declaration.declaration_id} version {declaration.version} was already "
                        "assessed with different content; file the amendment as a new version"
                    )
                )
                continue
            if result.created and declaration.lodgement_time is not None and declaration.version == 1:
                self._history.record(declaration.importer.id, declaration.lodgement_time)
            outcomes.append(result.assessment)
        self._observer.scored([o for o in outcomes if isinstance(o, Assessment)], time.perf_counter() - started)
        return outcomes
