"""Application service: validate, screen, store durably, then answer. Transport-free and async."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from risk_service.domain.assessment import Assessment, RuleHit
from risk_service.domain.cross_check import CrossCheck, DeclarationFindings
from risk_service.domain.declaration import Declaration
from risk_service.domain.entity_history import EntityHistory
from risk_service.domain.errors import AlreadyExists, DomainError, FieldViolation, InvalidArgument, Unavailable
from risk_service.domain.permits.screen import PermitSnapshot
from risk_service.domain.ports import AssessmentRecord, AssessmentStore, SaveResult
from risk_service.domain.screening import Screened, Screener
from risk_service.domain.validation import ValidationLimits, validate_batch, validate_declaration

log = logging.getLogger(__name__)

# Calls with more items than this are screened on a worker thread, so a bulk batch never stalls
# the event loop (health checks, unary calls); smaller ones run inline, which is cheaper.
INLINE_SCREENING_ITEMS = 32


class ScoringObserver(Protocol):
    def scored(self, assessments: Sequence[Assessment], seconds: float) -> None: ...

    def refused(self, reason: str, count: int = 1) -> None: ...


class _NullObserver:
    def scored(self, assessments: Sequence[Assessment], seconds: float) -> None:
        pass

    def refused(self, reason: str, count: int = 1) -> None:
        pass


def content_hash(filing: object) -> str:
    """Stable digest of everything filed (a declaration, a cargo report); the dataclass repr is exact
    for floats and ordered tuples."""
    return hashlib.sha256(repr(filing).encode()).hexdigest()


def _conflict_message(declaration: Declaration) -> str:
    return (
        f"declaration {declaration.declaration_id} version {declaration.version} was already assessed "
        "with different content; file the amendment as a new version"
    )


class ScoringService:
    def __init__(
        self,
        screener: Screener,
        store: AssessmentStore,
        history: EntityHistory,
        limits: ValidationLimits,
        *,
        max_batch_size: int,
        max_items_per_call: int = 50_000,
        observer: ScoringObserver | None = None,
        cross_checks: CrossCheck | None = None,
    ) -> None:
        self._screener = screener
        self._cross_checks = cross_checks  # None: declarations are not compared with cargo reports
        self._store = store
        self._history = history
        self._limits = limits
        self._max_batch_size = max_batch_size
        self._max_items_per_call = max_items_per_call
        self._observer: ScoringObserver = observer or _NullObserver()
        # One worker: bulk screening is serialised instead of competing with itself for the GIL.
        self._screening_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="screening")

    def close(self) -> None:
        self._screening_pool.shutdown(wait=True)

    async def score_one(self, declaration: Declaration) -> Assessment:
        self._refuse_if_invalid(validate_declaration(declaration, self._limits, path="declaration"))
        (outcome,) = await self._score_valid([declaration])
        if isinstance(outcome, DomainError):
            raise outcome
        return outcome

    async def score_batch(self, declarations: Sequence[Declaration]) -> list[Assessment]:
        """All or nothing: an invalid or conflicting declaration refuses the batch and nothing is stored."""
        self._refuse_if_invalid(self._batch_bounds(declarations))
        self._refuse_if_invalid(validate_batch(declarations, self._limits))
        outcomes = await self._score_valid(declarations, atomic=True)
        conflicts = [i for i, o in enumerate(outcomes) if isinstance(o, DomainError)]
        if conflicts:
            raise AlreadyExists(
                "; ".join(f"declarations[{i}]: {_conflict_message(declarations[i])}" for i in conflicts[:10])
                + "; nothing in this batch was stored",
                metadata={"declarations": ",".join(str(i) for i in conflicts)},
            )
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

    def _batch_bounds(self, declarations: Sequence[Declaration]) -> list[FieldViolation]:
        if not declarations:
            return [FieldViolation("declarations", "at least one declaration is required")]
        if len(declarations) > self._max_batch_size:
            return [FieldViolation("declarations", f"has {len(declarations)} entries; at most {self._max_batch_size}")]
        items = sum(len(d.items) for d in declarations)
        if items > self._max_items_per_call:
            return [FieldViolation("declarations", f"carry {items} goods items; at most {self._max_items_per_call}")]
        return []

    def _is_new_filing(self, declaration: Declaration) -> bool:
        """Counted once per declaration: only a first version (or one of an unknown importer) is new."""
        return declaration.version == 1 or self._history.filings("importer", declaration.importer.id) == 0

    def _refuse_if_invalid(self, violations: list[FieldViolation]) -> None:
        if violations:
            self._observer.refused("INVALID_ARGUMENT")
            raise InvalidArgument(violations)

    async def _screen(
        self, declarations: Sequence[Declaration], extra_hits: Sequence[Sequence[RuleHit]] | None = None
    ) -> list[Screened]:
        permits = self._screener.permits
        snapshot: PermitSnapshot | None = None
        if permits is not None:
            try:
                snapshot = await permits.prepare(declarations)
            except Exception as err:
                log.error("loading permits for %d declarations failed: %s", len(declarations), type(err).__name__)
                self._observer.refused("PERMITS_UNAVAILABLE", len(declarations))
                raise Unavailable("the permit registry is unavailable; retry later") from err
        if sum(len(d.items) for d in declarations) <= INLINE_SCREENING_ITEMS:
            return self._screener.screen(declarations, snapshot, extra_hits)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._screening_pool, self._screener.screen, declarations, snapshot, extra_hits
        )

    async def _cross_check(self, declarations: Sequence[Declaration]) -> list[DeclarationFindings] | None:
        """What the cargo reports filed before these declarations say against them (None: not checked)."""
        if self._cross_checks is None:
            return None
        try:
            return await asyncio.get_running_loop().run_in_executor(
                None, self._cross_checks.for_declarations, declarations
            )
        except Exception as err:
            log.error("reading linked cargo reports failed: %s", type(err).__name__)
            self._observer.refused("STORE_UNAVAILABLE", len(declarations))
            raise Unavailable("the assessment store is unavailable; retry later") from err

    async def _score_valid(
        self, declarations: Sequence[Declaration], *, atomic: bool = False
    ) -> list[Assessment | DomainError]:
        started = time.perf_counter()
        findings = await self._cross_check(declarations)
        screened = await self._screen(declarations, [f.hits for f in findings] if findings is not None else None)
        records = [
            AssessmentRecord(
                s.assessment, d, content_hash(d), s.claim, findings[n].reassessments if findings is not None else ()
            )
            for n, (s, d) in enumerate(zip(screened, declarations, strict=True))
        ]
        try:
            results: list[SaveResult] = await asyncio.wrap_future(self._store.save_many(records, atomic=atomic))
        except Exception as err:
            log.error("storing %d assessments failed: %s", len(records), type(err).__name__)
            self._observer.refused("STORE_UNAVAILABLE", len(records))
            raise Unavailable("the assessment store is unavailable; retry later") from err
        if atomic and any(r.conflict for r in results):
            # Nothing of the batch was written: refuse all of it, count none of it as scored.
            self._observer.refused("BATCH_ROLLED_BACK", len(results))
            return [
                AlreadyExists(_conflict_message(d)) if r.conflict else r.assessment
                for d, r in zip(declarations, results, strict=True)
            ]
        outcomes: list[Assessment | DomainError] = []
        for declaration, result in zip(declarations, results, strict=True):
            if result.conflict:
                self._observer.refused("DECLARATION_VERSION_CONFLICT")
                outcomes.append(AlreadyExists(_conflict_message(declaration)))
                continue
            if result.created and declaration.lodgement_time is not None and self._is_new_filing(declaration):
                self._history.record(declaration)
            outcomes.append(result.assessment)
        self._observer.scored([o for o in outcomes if isinstance(o, Assessment)], time.perf_counter() - started)
        return outcomes
