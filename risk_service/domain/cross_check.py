"""Cross-checks a new declaration or cargo report against the other kind's filings for the same consignment.

Finds them by transport document and container (`consistency.links`), compares each pair
(`consistency.compare`), and returns the findings for the new filing together with re-assessments of
the linked filings that were there first, so both sides' histories show the check. The store writes
those re-assessments in the same transaction as the new filing, and only when it is new.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from risk_service.domain.assessment import Assessment, RuleHit
from risk_service.domain.cargo.assessment import CargoAssessment
from risk_service.domain.cargo.model import CargoReport
from risk_service.domain.cargo.screening import CargoScreener
from risk_service.domain.consistency import (
    CargoReassessment,
    ConsistencyConfig,
    DeclarationReassessment,
    LinkKey,
    compare,
    declaration_hits,
    declaration_link_keys,
    master_house_mismatches,
    report_hits,
    report_link_keys,
)
from risk_service.domain.declaration import Declaration
from risk_service.domain.screening import Screener

LinkedReports = Callable[[set[LinkKey]], list[tuple[CargoReport, CargoAssessment]]]
LinkedDeclarations = Callable[[set[LinkKey]], list[tuple[Declaration, Assessment]]]


@dataclass(frozen=True, slots=True)
class DeclarationFindings:
    hits: tuple[RuleHit, ...]  # disagreements with the cargo reports filed before it
    reassessments: tuple[CargoReassessment, ...]  # those reports, assessed again with the same findings


@dataclass(frozen=True, slots=True)
class ReportFindings:
    hits: tuple[RuleHit, ...]  # disagreements with the declarations filed before it
    declaration_mismatches: int  # how many, for the cargo rules' report.consistency_mismatches
    master_house_mismatches: int  # disagreements of a house filing with its master filing
    reassessments: tuple[DeclarationReassessment, ...]  # those declarations, assessed again


@dataclass
class CrossCheck:
    config: ConsistencyConfig
    linked_reports: LinkedReports  # reads the store: may block, call off the event loop
    linked_declarations: LinkedDeclarations
    declarations: Screener
    cargo: CargoScreener

    def for_declarations(self, declarations: Sequence[Declaration]) -> list[DeclarationFindings]:
        keys = set().union(*(declaration_link_keys(d) for d in declarations))
        linked = self.linked_reports(keys) if keys else []
        out = []
        for d in declarations:
            hits: list[RuleHit] = []
            later: list[CargoReassessment] = []
            for report, assessment in linked:
                if not _overlap(declaration_link_keys(d), report_link_keys(report)):
                    continue
                mismatches = compare(d, report, self.config)
                hits.extend(declaration_hits(mismatches, self.config))
                again = self.cargo.reassess(report, assessment, report_hits(mismatches, self.config))
                later.append(CargoReassessment(again, f"declaration {d.declaration_id} v{d.version}"))
            out.append(DeclarationFindings(tuple(hits), tuple(later)))
        return out

    def for_reports(self, reports: Sequence[CargoReport]) -> list[ReportFindings]:
        keys = set().union(*(report_link_keys(r) for r in reports))
        declarations = self.linked_declarations(keys) if keys else []
        others = self.linked_reports(keys) if keys else []
        out = []
        for r in reports:
            own = report_link_keys(r)
            hits: list[RuleHit] = []
            later: list[DeclarationReassessment] = []
            mismatched = 0
            for d, assessment in declarations:
                if not _overlap(own, declaration_link_keys(d)):
                    continue
                mismatches = compare(d, r, self.config)
                mismatched += len(mismatches)
                hits.extend(report_hits(mismatches, self.config))
                again = self.declarations.reassess(assessment, declaration_hits(mismatches, self.config))
                later.append(DeclarationReassessment(again, f"cargo_report {r.report_id} v{r.version}"))
            master_house = sum(
                master_house_mismatches(r, other, self.config) for other, _ in others if other.report_id != r.report_id
            )
            out.append(ReportFindings(tuple(hits), mismatched, master_house, tuple(later)))
        return out


def _overlap(a: set[LinkKey], b: set[LinkKey]) -> bool:
    return not a.isdisjoint(b)
