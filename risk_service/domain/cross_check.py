"""Cross-checks a new declaration or cargo report against the other kind's filings for the same consignment.

Finds them by transport document and container within the link window (`consistency.linked`),
compares each pair (`consistency.compare`), and returns the findings for the new filing together
with re-assessments of the linked filings that were there first, so both sides' histories show the
check. The store writes those re-assessments in the same transaction as the new filing, and only
when it is new.

A re-assessment starts from the filing's stored assessment without its consistency reasons, and
adds the reasons against every filing of the other kind now linked to it (this call's included), so
a corrected manifest clears an earlier mismatch and two reports never count the same one twice. A
call writes one re-assessment per linked filing. Only the newest version of a linked filing is
compared; an amendment that stops naming a bill leaves the old counterpart's last re-assessment as it
was until that counterpart is filed again.

Two linked filings that are in flight at the same moment each read the store before the other is
stored, so neither sees the other; the check then happens on the next filing for the consignment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from risk_service.domain.assessment import Assessment, RuleHit
from risk_service.domain.cargo.assessment import CargoAssessment
from risk_service.domain.cargo.model import CargoReport
from risk_service.domain.cargo.screening import CargoScreener
from risk_service.domain.consistency import (
    CargoReassessment,
    ConsistencyConfig,
    DeclarationReassessment,
    LinkKey,
    by_bill,
    compare,
    declaration_hits,
    declaration_link_keys,
    declaration_time,
    linked,
    master_house_mismatches,
    report_hits,
    report_link_keys,
    report_time,
)
from risk_service.domain.declaration import Declaration
from risk_service.domain.screening import Screener

# (keys, since, until) -> the newest stored version, with its assessment, of every filing of the
# other kind that named any key in a version linked within [since, until]. They read the store.
T = TypeVar("T")
LinkedReports = Callable[[set[LinkKey], datetime, datetime], list[tuple[CargoReport, CargoAssessment]]]
LinkedDeclarations = Callable[[set[LinkKey], datetime, datetime], list[tuple[Declaration, Assessment]]]


@dataclass(frozen=True, slots=True)
class DeclarationFindings:
    hits: tuple[RuleHit, ...]  # disagreements with the cargo reports filed before it
    reassessments: tuple[CargoReassessment, ...]  # those reports, assessed again


@dataclass(frozen=True, slots=True)
class ReportFindings:
    hits: tuple[RuleHit, ...]  # disagreements with the declarations filed before it
    declaration_mismatches: int  # how many, for the cargo rules' report.consistency_mismatches
    master_house_mismatches: int  # disagreements of a house filing with its master filing
    reassessments: tuple[DeclarationReassessment, ...]  # those declarations, assessed again


@dataclass
class CrossCheck:
    config: ConsistencyConfig
    linked_reports: LinkedReports  # may block: call the CrossCheck off the event loop
    linked_declarations: LinkedDeclarations
    declarations: Screener
    cargo: CargoScreener
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def for_declarations(self, declarations: Sequence[Declaration]) -> list[DeclarationFindings]:
        now = self.clock()
        reports = self._around(
            self.linked_reports, _declaration_keys(declarations), _declaration_times(declarations, now)
        )
        known = [r for r, _ in reports]
        # Every stored declaration linked to those reports, for their re-assessments, and this call's own
        new_ids = {d.declaration_id for d in declarations}
        stored = self._around(self.linked_declarations, _report_keys(known), _report_times(known, now))
        counterparts = [o for o, _ in stored if o.declaration_id not in new_ids] + list(declarations)
        # One re-assessment per linked report per call, shared by every new declaration that links to it:
        # the store writes it once (same id), with the declarations that were stored.
        later: dict[str, CargoReassessment] = {}
        trigger = ", ".join(f"declaration {_name(d)}" for d in declarations)
        for r, a in reports:
            if not any(r in self._pairs(d, known, now) for d in declarations):
                continue
            reasons = [
                h
                for c in counterparts
                if r in self._pairs(c, known, now)
                for h in report_hits(compare(c, r, self.config), self.config)
            ]
            later[r.report_id] = CargoReassessment(self.cargo.reassess(r, a, reasons), trigger)
        out = []
        for d in declarations:
            mine = self._pairs(d, known, now)
            hits = [h for r in mine for h in declaration_hits(compare(d, r, self.config), self.config)]
            out.append(DeclarationFindings(tuple(hits), tuple(later[r.report_id] for r in mine)))
        return out

    def for_reports(self, reports: Sequence[CargoReport]) -> list[ReportFindings]:
        now = self.clock()
        keys, times = _report_keys(reports), _report_times(reports, now)
        declarations = self._around(self.linked_declarations, keys, times)
        known_declarations = [d for d, _ in declarations]
        # One look-up serves both: the reports those declarations link to, and the master and house
        # filings of these reports' own bills.
        stored = self._around(
            self.linked_reports,
            keys | _declaration_keys(known_declarations),
            times + _declaration_times(known_declarations, now),
        )
        new_ids = {r.report_id for r in reports}
        candidates = [o for o, _ in stored if o.report_id not in new_ids] + list(reports)
        later: dict[str, DeclarationReassessment] = {}
        trigger = ", ".join(f"cargo_report {_name(r)}" for r in reports)
        for d, a in declarations:
            mine = self._pairs(d, candidates, now)
            if any(r in mine for r in reports):
                reasons = [h for o in mine for h in declaration_hits(compare(d, o, self.config), self.config)]
                later[d.declaration_id] = DeclarationReassessment(self.declarations.reassess(a, reasons), trigger)
        out = []
        for r in reports:
            linked_to = [d for d in known_declarations if r in self._pairs(d, candidates, now)]
            mismatches = [m for d in linked_to for m in compare(d, r, self.config)]
            master_house = sum(
                master_house_mismatches(r, other, self.config) for other, _ in stored if other.report_id != r.report_id
            )
            findings = ReportFindings(
                tuple(report_hits(mismatches, self.config)),
                len(mismatches),
                master_house,
                tuple(later[d.declaration_id] for d in linked_to),
            )
            out.append(findings)
        return out

    def reports_of(self, declaration: Declaration) -> list[tuple[CargoReport, CargoAssessment]]:
        """The stored cargo reports the declaration is compared with, with their newest assessments (blocks)."""
        now = self.clock()
        stored = self._around(
            self.linked_reports, declaration_link_keys(declaration), [declaration_time(declaration, now)]
        )
        mine = self._pairs(declaration, [r for r, _ in stored], now)
        return [(r, a) for r, a in stored if r in mine]

    def _pairs(self, d: Declaration, reports: Sequence[CargoReport], now: datetime) -> list[CargoReport]:
        """The reports `d` is compared with: those of its own bill, else those sharing a container."""
        near = [r for r in reports if linked(d, r, self.config, now)]
        billed = [r for r in near if by_bill(d, r)]
        return billed or near

    def _around(
        self, fetch: Callable[[set[LinkKey], datetime, datetime], list[T]], keys: set[LinkKey], times: list[datetime]
    ) -> list[T]:
        """The stored filings naming any of the keys, within the link window of any of the times."""
        if not keys:
            return []
        window = self.config.link_window
        return fetch(keys, min(times) - window, max(times) + window)


def _declaration_keys(declarations: Sequence[Declaration]) -> set[LinkKey]:
    return set().union(*(declaration_link_keys(d) for d in declarations))


def _report_keys(reports: Sequence[CargoReport]) -> set[LinkKey]:
    return set().union(*(report_link_keys(r) for r in reports))


def _declaration_times(declarations: Sequence[Declaration], now: datetime) -> list[datetime]:
    return [declaration_time(d, now) for d in declarations]


def _report_times(reports: Sequence[CargoReport], now: datetime) -> list[datetime]:
    return [report_time(r, now) for r in reports]


def _name(filing: Declaration | CargoReport) -> str:
    if isinstance(filing, Declaration):
        return f"{filing.declaration_id} v{filing.version}"
    return f"{filing.report_id} v{filing.version}"
