"""Rule backtesting: what a rule set would have done to labelled history, rule by rule and as a whole.

Each declaration goes through the same steps as live screening (`screening.Screener.screen`):
`feature_rows.declaration_columns`, `features.build_feature_matrix`, `item_contexts`,
`RuleSet.evaluate`, `combine_scores` and `SelectionPolicy.decide`. Three things differ, on purpose:

- Rules only. No model score enters the risk (a backtest of rules must not depend on which model
  happens to be champion), the random-control draw is switched off (it is not a rule), and permit
  checks add no hits (they need the permit registry as it was, which a history does not hold).
- Entity history (importer, broker, trade lane, office) is point in time: what the service would
  have known when each declaration arrived, filings and outcomes, from the backtested declarations
  themselves (as training computes it).
- HS unit-value bands (`features.unit_value_*`) come from `feature_state`, normally the champion
  model's. Without one they are fitted on every item of the backtested history, inspected or not:
  in-sample, so each item counts towards its own band, but with bands of at least 20 items the
  effect is small, and it lets the valuation rules be tested before any model is trained.

Precision is measured on inspected declarations only. Historical inspections were mostly
targeted, so it estimates what the rule finds among declarations officers chose to open; the
random-control columns per channel are the unbiased sample, where the history has one.
"""

from __future__ import annotations

import datetime
import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

import features
from risk_service.domain.assessment import Channel, RuleHit
from risk_service.domain.declaration import Declaration
from risk_service.domain.entity_history import EntityHistory
from risk_service.domain.feature_rows import declaration_columns
from risk_service.domain.permits.model import ItemPermitFacts
from risk_service.domain.policy import SelectionPolicy, combine_scores
from risk_service.domain.rules.context import item_contexts
from risk_service.domain.rules.engine import Rule, RuleSet

#: The channels an assessment can have, in precedence order.
CHANNELS: tuple[Channel, ...] = (Channel.GREEN, Channel.BLUE, Channel.YELLOW, Channel.RED)
_SELECTED = frozenset({Channel.YELLOW, Channel.RED})  # an officer opens the consignment

NOTES = (
    "Rules only: no model score, no random-control draw and no permit checks; a declaration's "
    "channel comes from its rule weights (noisy-OR against the policy thresholds) and min_channel.",
    "Precision counts inspected declarations only; past inspections were mostly targeted.",
)


@dataclass(frozen=True, slots=True)
class HistoryOutcome:
    """What became of one historical declaration: inspected, found, recovered, and why inspected."""

    inspected: bool  # any of its items was inspected
    finding: bool = False  # any of its items had a finding
    revenue_recovered: float = math.nan  # over its items; NaN when the history records none
    random_control: bool = False  # inspected as a random control rather than targeted


Case = tuple[Declaration, HistoryOutcome]


@dataclass(frozen=True, slots=True)
class RuleBacktest:
    """One rule over the history: how often it fired, where the set sent those filings, what was found."""

    rule_id: str
    weight: float
    min_channel: Channel | None
    channel_alone: Channel  # the channel this rule's hit alone gives (its weight, then its min_channel)
    active: int  # declarations lodged on a day the rule was enabled and valid
    hits: int  # declarations it fired on, inspected or not
    hits_by_channel: Mapping[Channel, int]  # those declarations by the channel the whole set gave them
    labelled: int  # inspected declarations it fired on
    findings: int  # ... of which had a finding
    revenue_recovered: float  # recovered from the declarations it fired on; NaN when none recorded
    errors: int  # evaluations where its condition raised (counted as not matched)
    missing_names: tuple[str, ...]  # context names it reads that the history does not carry
    skipped: bool = False  # switched off for this backtest (`disabled`)

    @property
    def precision(self) -> float:
        """Findings per inspected declaration hit; NaN when it hit none that was inspected."""
        return self.findings / self.labelled if self.labelled else math.nan


@dataclass(frozen=True, slots=True)
class ChannelBacktest:
    """The declarations the whole set sends to one channel, and what inspections of them found."""

    channel: Channel
    declarations: int
    labelled: int
    findings: int
    revenue_recovered: float
    control_labelled: int  # ... inspected as random controls: an unbiased sample of the channel
    control_findings: int

    @property
    def precision(self) -> float:
        return self.findings / self.labelled if self.labelled else math.nan

    @property
    def control_precision(self) -> float:
        return self.control_findings / self.control_labelled if self.control_labelled else math.nan


@dataclass(frozen=True, slots=True)
class BacktestReport:
    """Per rule (sorted by id) and per channel results of one rule set over one history."""

    rule_set_version: str
    declarations: int
    items: int
    labelled: int
    findings: int
    rules: tuple[RuleBacktest, ...]
    channels: tuple[ChannelBacktest, ...]  # GREEN, BLUE, YELLOW, RED
    evaluated_on: datetime.date | None  # None: each declaration on its own lodgement date
    feature_state_fitted: bool  # True: unit-value bands fitted on this history (no state given)
    notes: tuple[str, ...] = NOTES

    @property
    def recall(self) -> float:
        """Share of all findings that the set sends to YELLOW or RED; NaN when there are none."""
        selected = sum(c.findings for c in self.channels if c.channel in _SELECTED)
        return selected / self.findings if self.findings else math.nan


class PointInTimeEntityHistory(EntityHistory):
    """EntityHistory as it stood at any moment of a batch of past declarations with their outcomes.

    Serving's history grows as filings are stored; replaying a history that way would force one
    `declaration_columns` call per declaration. Instead every item's entity columns come from
    features.add_entity_history over the whole batch: filings lodged and outcomes known strictly
    before each declaration, exactly as training computes them.
    """

    def __init__(self, cases: Sequence[Case]) -> None:
        super().__init__()
        import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

        rows = [
            (
                d.declaration_id,
                d.lodgement_time,
                d.importer.id,
                d.declarant.id,
                d.customs_office,
                item.hs_code,
                item.origin_country,
                outcome.inspected,
                outcome.inspected and outcome.finding,
            )
            for d, outcome in cases
            if d.lodgement_time is not None
            for item in d.items
        ]
        frame = pd.DataFrame(
            rows,
            columns=[
                "declaration_id",
                "lodgement_time",
                "importer_id",
                "declarant_id",
                "customs_office",
                "hs_code",
                "origin_country",
                "inspected",
                "finding",
            ],
        )
        if not frame.empty:
            frame["lodgement_time"] = pd.to_datetime(frame["lodgement_time"], utc=True)
        computed = features.add_entity_history(frame)[list(features.ENTITY_COLUMNS)].to_numpy(dtype=np.float64)
        self._rows: dict[str, list[tuple[float, ...]]] = {}
        for declaration_id, values in zip(frame["declaration_id"].tolist(), computed.tolist(), strict=True):
            self._rows.setdefault(declaration_id, []).append(tuple(values))

    def lookup(self, declaration: Declaration, outcomes: features.EntityOutcomes | None) -> list[tuple[float, ...]]:
        found = self._rows.get(declaration.declaration_id)
        if found is None:  # no lodgement time: nothing was known before it
            return EntityHistory().lookup(declaration, None)
        return found

    def record(self, declaration: Declaration) -> None:
        raise NotImplementedError("a point-in-time entity history is read-only")


def backtest(
    rule_set: RuleSet,
    cases: Sequence[Case],
    *,
    policy: SelectionPolicy | None = None,
    feature_state: features.FeatureState | None = None,
    permit_facts: Sequence[Sequence[ItemPermitFacts]] | None = None,
    on: datetime.date | None = None,
    missing_names: Collection[str] = (),
    disabled: Collection[str] = (),
) -> BacktestReport:
    """Runs `rule_set` over historical declarations with their outcomes; see the module docstring.

    `policy` gives the channel thresholds (default SelectionPolicy()); its random-control rate is
    ignored. `permit_facts` holds one sequence per case with one entry per item, as
    `declaration_columns` takes them; None leaves the permit features NaN. `on` evaluates every
    declaration as of one day (to try a rule whose valid_from is still ahead); by default each is
    evaluated on its lodgement date, as it was screened. `missing_names` are the context names the
    history could not fill; each rule lists those it reads. Rules whose ids are in `disabled` are
    evaluated as if switched off (e.g. those reading missing names) and reported as skipped.
    """
    policy = replace(policy or SelectionPolicy(), random_control_rate=0.0)
    skipped = frozenset(disabled)
    if skipped:
        rule_set = _without(rule_set, skipped)
    declarations = [d for d, _ in cases]
    days = [on if on is not None else _lodgement_day(d) for d in declarations]
    columns, spans = declaration_columns(declarations, PointInTimeEntityHistory(cases), permit_facts)
    fitted = feature_state is None
    if feature_state is None:  # bands from every item; finding rates shrink toward the history's own rate
        labelled = [o for _, o in cases if o.inspected]
        rate = sum(1 for o in labelled if o.finding) / len(labelled) if labelled else 0.0
        outcomes = features.EntityOutcomes(features.OutcomePrior(rate), None, {})
        state = features.FeatureState.fit(columns).with_outcomes(outcomes)
    else:
        state = feature_state
    matrix = features.build_feature_matrix(columns, state)

    errors_before = rule_set.runtime_errors_by_rule
    by_rule = {r.id: _Counts() for r in rule_set.rules}
    by_channel = {c: _Counts() for c in CHANNELS}
    for (declaration, outcome), span, day in zip(cases, spans, days, strict=True):
        hits = rule_set.evaluate(item_contexts(declaration, features.FEATURE_NAMES, matrix[span]), on=day)
        risk = combine_scores(None, [h.weight for h in hits])
        channel, _ = policy.decide(declaration.declaration_id, declaration.version, risk, hits)
        by_channel[channel].add(outcome, channel)
        for hit in hits:
            by_rule[hit.rule_id].add(outcome, channel)
    errors_after = rule_set.runtime_errors_by_rule

    declarations_on = Counter(days)
    missing = frozenset(missing_names)
    rules = [
        by_rule[rule.id].rule(
            rule,
            policy,
            active=sum(n for day, n in declarations_on.items() if rule.applies_on(day)),
            errors=errors_after.get(rule.id, 0) - errors_before.get(rule.id, 0),
            missing=missing,
            skipped=rule.id in skipped,
        )
        for rule in rule_set.rules
    ]
    return BacktestReport(
        rule_set_version=rule_set.version,
        declarations=len(declarations),
        items=sum(len(d.items) for d in declarations),
        labelled=sum(1 for _, o in cases if o.inspected),
        findings=sum(1 for _, o in cases if o.inspected and o.finding),
        rules=tuple(sorted(rules, key=lambda r: r.rule_id)),
        channels=tuple(by_channel[c].channel(c) for c in CHANNELS),
        evaluated_on=on,
        feature_state_fitted=fitted,
    )


def _without(rule_set: RuleSet, disabled: frozenset[str]) -> RuleSet:
    """A copy of the set with these rules switched off, so the accumulation pass does not count them either."""
    unknown = disabled - {r.id for r in rule_set.rules}
    if unknown:
        raise ValueError(f"no such rules to disable: {', '.join(sorted(unknown))}")
    rules = [replace(r, enabled=False) if r.id in disabled else r for r in rule_set.rules]
    return RuleSet(rule_set.version, rules, rule_set.lists, rule_set.path, rule_set.sources)


def _lodgement_day(declaration: Declaration) -> datetime.date:
    if declaration.lodgement_time is None:
        # Screening falls back to the clock; a backtest has no "now" to fall back to.
        raise ValueError(f"declaration {declaration.declaration_id!r} has no lodgement time; pass on=")
    return declaration.lodgement_time.date()


def _channel_alone(policy: SelectionPolicy, weight: float, min_channel: Channel | None) -> Channel:
    hit = RuleHit(rule_id="", message="", fields=(), weight=weight, min_channel=min_channel)
    channel, _ = policy.decide("", 0, combine_scores(None, [weight]), [hit])
    return channel


class _Counts:
    """Running totals over the declarations a rule hit, or the set sent to one channel."""

    __slots__ = ("channels", "control_findings", "control_labelled", "declarations", "findings", "labelled", "revenue")

    def __init__(self) -> None:
        self.declarations = 0
        self.labelled = 0
        self.findings = 0
        self.revenue = math.nan
        self.control_labelled = 0
        self.control_findings = 0
        self.channels: Counter[Channel] = Counter()

    def add(self, outcome: HistoryOutcome, channel: Channel) -> None:
        self.declarations += 1
        self.channels[channel] += 1
        if outcome.inspected:
            self.labelled += 1
            self.findings += outcome.finding
            if outcome.random_control:
                self.control_labelled += 1
                self.control_findings += outcome.finding
        if not math.isnan(outcome.revenue_recovered):
            self.revenue = outcome.revenue_recovered + (0.0 if math.isnan(self.revenue) else self.revenue)

    def rule(
        self, rule: Rule, policy: SelectionPolicy, *, active: int, errors: int, missing: frozenset[str], skipped: bool
    ) -> RuleBacktest:
        return RuleBacktest(
            rule_id=rule.id,
            weight=rule.weight,
            min_channel=rule.min_channel,
            channel_alone=_channel_alone(policy, rule.weight, rule.min_channel),
            active=active,
            hits=self.declarations,
            hits_by_channel={c: self.channels[c] for c in CHANNELS},
            labelled=self.labelled,
            findings=self.findings,
            revenue_recovered=self.revenue,
            errors=errors,
            missing_names=tuple(sorted(n for n in rule.condition.names if n in missing)),
            skipped=skipped,
        )

    def channel(self, channel: Channel) -> ChannelBacktest:
        return ChannelBacktest(
            channel=channel,
            declarations=self.declarations,
            labelled=self.labelled,
            findings=self.findings,
            revenue_recovered=self.revenue,
            control_labelled=self.control_labelled,
            control_findings=self.control_findings,
        )


# --- output ------------------------------------------------------------------------------------


def backtest_to_dict(report: BacktestReport) -> dict[str, Any]:
    """Plain JSON-ready data; NaN (no inspected hits, no revenue recorded) becomes None."""
    return {
        "rule_set_version": report.rule_set_version,
        "declarations": report.declarations,
        "items": report.items,
        "labelled": report.labelled,
        "findings": report.findings,
        "recall": _number(report.recall),
        "evaluated_on": report.evaluated_on.isoformat() if report.evaluated_on else None,
        "feature_state_fitted": report.feature_state_fitted,
        "notes": list(report.notes),
        "channels": [
            {
                "channel": c.channel.name,
                "declarations": c.declarations,
                "labelled": c.labelled,
                "findings": c.findings,
                "precision": _number(c.precision),
                "revenue_recovered": _number(c.revenue_recovered),
                "control_labelled": c.control_labelled,
                "control_findings": c.control_findings,
                "control_precision": _number(c.control_precision),
            }
            for c in report.channels
        ],
        "rules": [
            {
                "rule_id": r.rule_id,
                "weight": r.weight,
                "min_channel": r.min_channel.name if r.min_channel is not None else None,
                "channel_alone": r.channel_alone.name,
                "active": r.active,
                "hits": r.hits,
                "hits_by_channel": {c.name: r.hits_by_channel.get(c, 0) for c in CHANNELS},
                "labelled": r.labelled,
                "findings": r.findings,
                "precision": _number(r.precision),
                "revenue_recovered": _number(r.revenue_recovered),
                "errors": r.errors,
                "missing_names": list(r.missing_names),
                "skipped": r.skipped,
            }
            for r in report.rules
        ],
    }


def format_backtest(report: BacktestReport) -> str:
    """A plain-text report: one row per rule (sorted by id), then the whole set per channel."""
    when = f"as of {report.evaluated_on.isoformat()}" if report.evaluated_on else "on each lodgement date"
    bands = "fitted on this history" if report.feature_state_fitted else "from the given feature state"
    lines = [
        f"Rule set {report.rule_set_version}: {report.declarations:,} declarations ({report.items:,} items), "
        f"{report.labelled:,} inspected, {report.findings:,} with a finding; rules evaluated {when}; "
        f"unit-value bands {bands}.",
        "",
    ]
    rule_header = ["rule", "weight", "min", "alone", "active", "hits", *(c.name for c in CHANNELS)]
    rule_header += ["inspected", "found", "precision", "revenue"]
    rows = [
        (
            r.rule_id + ("*" if r.missing_names or r.errors or r.skipped else ""),
            f"{r.weight:+.2f}",
            r.min_channel.name if r.min_channel is not None else "-",
            r.channel_alone.name,
            f"{r.active:,}",
            f"{r.hits:,}",
            *(f"{r.hits_by_channel.get(c, 0):,}" for c in CHANNELS),
            f"{r.labelled:,}",
            f"{r.findings:,}",
            _percent(r.precision),
            _amount(r.revenue_recovered),
        )
        for r in report.rules
    ]
    lines += _table(rule_header, rows)
    lines.append("  (GREEN..RED: the channel the whole set gave the declarations the rule hit)")
    for r in report.rules:
        if r.missing_names:
            missing = f"{r.rule_id} reads {', '.join(r.missing_names)}, which the history does not carry"
            lines.append(f"  * {missing}{': not evaluated' if r.skipped else ''}")
        elif r.skipped:
            lines.append(f"  * {r.rule_id}: not evaluated (switched off for this backtest)")
        if r.errors:
            lines.append(f"  * {r.rule_id}: condition raised {r.errors:,} times (counted as not matched)")
    lines.append("")
    channel_header = ["channel", "declarations", "share", "inspected", "found", "precision", "revenue"]
    channel_header += ["controls", "found", "precision"]
    total = report.declarations
    rows = [
        (
            c.channel.name,
            f"{c.declarations:,}",
            _percent(c.declarations / total if total else math.nan),
            f"{c.labelled:,}",
            f"{c.findings:,}",
            _percent(c.precision),
            _amount(c.revenue_recovered),
            f"{c.control_labelled:,}",
            f"{c.control_findings:,}",
            _percent(c.control_precision),
        )
        for c in report.channels
    ]
    lines += _table(channel_header, rows)
    lines.append(f"Recall: {_percent(report.recall)} of findings sent to YELLOW or RED.")
    lines += ["", *report.notes]
    return "\n".join(lines) + "\n"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        # The first column is a name (left-aligned); the rest are numbers or codes (right-aligned).
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _percent(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.1f}%"


def _amount(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.0f}"


def _number(value: float) -> float | None:
    return None if math.isnan(value) else value
