"""Cargo application service: validate, gather facts from the store, screen, store durably, then answer."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Protocol

from risk_service.domain.cargo.assessment import CargoAssessment
from risk_service.domain.cargo.model import CargoReport
from risk_service.domain.cargo.ports import CargoRecord, CargoSaveResult, CargoStore
from risk_service.domain.cargo.rules import CargoFacts
from risk_service.domain.cargo.screening import CargoScreener
from risk_service.domain.cargo.validation import CargoLimits, validate_cargo_batch, validate_cargo_report
from risk_service.domain.cross_check import CrossCheck, ReportFindings
from risk_service.domain.errors import AlreadyExists, FieldViolation, InvalidArgument, Unavailable
from risk_service.domain.service import content_hash

log = logging.getLogger(__name__)


class CargoObserver(Protocol):
    def cargo_scored(self, assessments: Sequence[CargoAssessment], seconds: float) -> None: ...

    def refused(self, reason: str, count: int = 1) -> None: ...


# Reports with more goods rows than this are screened on a worker thread, so a large manifest
# never stalls the event loop; smaller ones run inline, which is cheaper.
INLINE_SCREENING_ROWS = 32


def _conflict_message(report: CargoReport) -> str:
    return (
        f"cargo report {report.report_id} version {report.version} was already assessed "
        "with different content; file the amendment as a new version"
    )


class CargoScoringService:
    def __init__(
        self,
        screener: CargoScreener,
        store: CargoStore,
        limits: CargoLimits,
        *,
        max_batch_size: int,
        observer: CargoObserver | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        cross_checks: CrossCheck | None = None,
    ) -> None:
        self._screener = screener
        self._cross_checks = cross_checks  # None: reports are not compared with declarations
        self._store = store
        self._limits = limits
        self._max_batch_size = max_batch_size
        self._observer = observer
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cargo-screening")

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    async def score_one(self, report: CargoReport) -> CargoAssessment:
        self._refuse_if_invalid(validate_cargo_report(report, self._limits, path="cargo_report", now=self._clock()))
        (result,) = await self._score_valid([report])
        if result.conflict:
            self._refused("CARGO_REPORT_VERSION_CONFLICT")
            raise AlreadyExists(_conflict_message(report))
        return result.assessment

    async def score_batch(self, reports: Sequence[CargoReport]) -> list[CargoAssessment]:
        """All or nothing: an invalid or conflicting report refuses the batch and nothing is stored."""
        self._refuse_if_invalid(
            validate_cargo_batch(reports, self._limits, max_batch_size=self._max_batch_size, now=self._clock())
        )
        results = await self._score_valid(reports, atomic=True)
        conflicts = [i for i, r in enumerate(results) if r.conflict]
        if conflicts:
            self._refused("BATCH_ROLLED_BACK", len(results))
            raise AlreadyExists(
                "; ".join(f"cargo_reports[{i}]: {_conflict_message(reports[i])}" for i in conflicts[:10])
                + "; nothing in this batch was stored",
                metadata={"cargo_reports": ",".join(str(i) for i in conflicts)},
            )
        return [r.assessment for r in results]

    async def _score_valid(self, reports: Sequence[CargoReport], *, atomic: bool = False) -> list[CargoSaveResult]:
        started = time.perf_counter()
        results = await self._screen_and_store(reports, atomic=atomic)
        if self._observer is not None and not (atomic and any(r.conflict for r in results)):
            self._observer.cargo_scored(
                [r.assessment for r in results if not r.conflict], time.perf_counter() - started
            )
        return results

    async def _screen_and_store(self, reports: Sequence[CargoReport], *, atomic: bool) -> list[CargoSaveResult]:
        loop = asyncio.get_running_loop()
        amended = [r.key for r in reports if r.version > 1]  # a first filing has nothing before it
        try:
            earlier = await loop.run_in_executor(None, self._store.latest_before, amended) if amended else {}
        except Exception as err:
            log.error("reading earlier cargo assessments failed: %s", type(err).__name__)
            self._refused("STORE_UNAVAILABLE", len(reports))
            raise Unavailable("the assessment store is unavailable; retry later") from err
        try:
            findings = (
                await loop.run_in_executor(None, self._cross_checks.for_reports, reports)
                if self._cross_checks is not None
                else [ReportFindings((), 0, 0, ()) for _ in reports]
            )
        except Exception as err:
            log.error("reading linked declarations failed: %s", type(err).__name__)
            self._refused("STORE_UNAVAILABLE", len(reports))
            raise Unavailable("the assessment store is unavailable; retry later") from err
        facts = [
            CargoFacts(
                amended_after_risk_result=_had_risk_result(earlier.get(r.key)),
                master_house_mismatches=f.master_house_mismatches,
                consistency_mismatches=f.declaration_mismatches,
                earlier_version_stored=r.key in earlier,
            )
            for r, f in zip(reports, findings, strict=True)
        ]
        extra = [f.hits for f in findings]
        rows = sum(len(c.items) for r in reports for c in r.containers)
        if rows <= INLINE_SCREENING_ROWS:
            assessments = self._screener.assess(reports, facts, extra)
        else:
            assessments = await loop.run_in_executor(self._pool, self._screener.assess, reports, facts, extra)
        records = [
            CargoRecord(a, r, content_hash(r), f.reassessments)
            for a, r, f in zip(assessments, reports, findings, strict=True)
        ]
        try:
            results = await asyncio.wrap_future(self._store.save_many(records, atomic=atomic))
        except Exception as err:
            log.error("storing %d cargo assessments failed: %s", len(records), type(err).__name__)
            self._refused("STORE_UNAVAILABLE", len(records))
            raise Unavailable("the assessment store is unavailable; retry later") from err
        for report, result in zip(reports, results, strict=True):
            # A report counts once for its parties, as in the cargo history: when its first stored version is.
            if result.created and report.key not in earlier:
                self._screener.entities.record(report)
        return results

    def _refuse_if_invalid(self, violations: list[FieldViolation]) -> None:
        if violations:
            self._refused("INVALID_ARGUMENT")
            raise InvalidArgument(violations)

    def _refused(self, reason: str, count: int = 1) -> None:
        if self._observer is not None:
            self._observer.refused(reason, count)


def _had_risk_result(previous: CargoAssessment | None) -> bool:
    """An earlier version's answer asked something of someone (anything but the mildest outcome)."""
    return previous is not None and not previous.is_mildest
