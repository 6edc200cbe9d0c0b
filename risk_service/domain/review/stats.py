"""Per-rule effectiveness from officers' results: which rules find something, and what it recovers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from risk_service.domain.review.ports import LabelledFiling


@dataclass(frozen=True, slots=True)
class RuleStat:
    rule_id: str
    hits: int  # declarations whose newest assessment the rule hit
    inspected_hits: int  # of those, with a result
    findings: int  # of those, with a discrepancy or seizure
    revenue_recovered: Decimal

    @property
    def finding_rate(self) -> float | None:
        return self.findings / self.inspected_hits if self.inspected_hits else None

    @property
    def revenue_per_inspection(self) -> float | None:
        return float(self.revenue_recovered / self.inspected_hits) if self.inspected_hits else None


@dataclass
class _Tally:
    hits: int = 0
    inspected: int = 0
    findings: int = 0
    revenue: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class RuleStats:
    stats: tuple[RuleStat, ...]  # most hits first, then rule id
    declarations: int
    inspected: int
    currency: str


def rule_stats(filings: Iterable[LabelledFiling], currency: str) -> RuleStats:
    """Counts each rule once per declaration (however many of its items it hit), over the filings given."""
    tallies: dict[str, _Tally] = {}
    declarations = inspected = 0
    for filing in filings:
        declarations += 1
        result = filing.result
        inspected += result is not None
        for rule_id in {hit.rule_id for hit in filing.assessment.rule_hits}:
            tally = tallies.setdefault(rule_id, _Tally())
            tally.hits += 1
            if result is not None:
                tally.inspected += 1
                tally.findings += result.outcome.is_finding
                tally.revenue += result.revenue_recovered
    stats = tuple(
        sorted(
            (RuleStat(rule_id, t.hits, t.inspected, t.findings, t.revenue) for rule_id, t in tallies.items()),
            key=lambda s: (-s.hits, s.rule_id),
        )
    )
    return RuleStats(stats, declarations, inspected, currency)
