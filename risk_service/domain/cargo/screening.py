"""Cargo screening: the cargo rule set and selection policy turn a cargo report into outcomes.

A container's risk folds the container-targeting model's probability (when a cargo model serves;
rules decide alone otherwise, and each assessment says which) with the weights of the hits on its
own data and the report-level hits (route, parties, timing), as for declarations; its channel
follows the policy thresholds and the hits' minimum channels. Containers an officer will act on
carry the model's top feature contributions. Channels then map to the cargo outcomes:

- on arrival, per container: GREEN or BLUE -> NO_ACTION, YELLOW -> SCAN, RED -> PHYSICAL_EXAMINATION;
- before loading, for the report: the strongest container channel, YELLOW -> REQUEST_FOR_INFORMATION,
  RED -> REQUEST_FOR_SCREENING, and DO_NOT_LOAD only for an imminent threat: a hit of a rule the
  settings name for it (watch lists, typically), or a rule score at or above the do-not-load score
  (the model's probability of a finding on arrival is no threat to the ship: it never holds cargo back).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np

from features.cargo import ContainerFeatureState, build_container_matrix
from risk_service.domain.assessment import Channel, FeatureContribution, ModelStatus, RuleHit
from risk_service.domain.cargo.assessment import CargoAssessment, CargoSummary, ContainerAssessment
from risk_service.domain.cargo.feature_rows import container_columns
from risk_service.domain.cargo.model import CargoReport, ContainerOutcome, FilingType, PreLoadingOutcome
from risk_service.domain.cargo.rules import CargoFacts, cargo_contexts, containers_of
from risk_service.domain.consistency import is_consistency_hit
from risk_service.domain.declaration import TransportMode
from risk_service.domain.entity_history import ContainerEntities
from risk_service.domain.model_handle import LoadedModel, ModelHandle
from risk_service.domain.policy import SelectionPolicy, combine_scores
from risk_service.domain.screening import RuleSetSource

_ON_ARRIVAL = {
    Channel.GREEN: ContainerOutcome.NO_ACTION,
    Channel.BLUE: ContainerOutcome.NO_ACTION,
    Channel.YELLOW: ContainerOutcome.SCAN,
    Channel.RED: ContainerOutcome.PHYSICAL_EXAMINATION,
}
_BEFORE_LOADING = {
    Channel.GREEN: PreLoadingOutcome.ASSESSMENT_COMPLETE,
    Channel.BLUE: PreLoadingOutcome.ASSESSMENT_COMPLETE,
    Channel.YELLOW: PreLoadingOutcome.REQUEST_FOR_INFORMATION,
    Channel.RED: PreLoadingOutcome.REQUEST_FOR_SCREENING,
}


@dataclass(frozen=True)
class CargoPolicy:
    """The selection policy for containers, the filing deadlines and what is an imminent threat."""

    selection: SelectionPolicy  # its random control draws containers of pre-arrival reports for a scan
    filing_deadline_hours: Mapping[TransportMode, float]  # hours before loading a report is due, per mode
    default_filing_deadline_hours: float = 24.0
    do_not_load_rules: frozenset[str] = frozenset()
    do_not_load_score: float = 1.0

    def deadline(self, mode: TransportMode) -> float:
        return self.filing_deadline_hours.get(mode, self.default_filing_deadline_hours)


@dataclass
class CargoScreener:
    """Assesses validated cargo reports; pure CPU work, no I/O. Each call reads the rule set once."""

    rules: RuleSetSource
    policy: CargoPolicy
    models: ModelHandle = field(default_factory=lambda: ModelHandle(None))  # the container-targeting model
    entities: ContainerEntities = field(default_factory=ContainerEntities)
    top_contributions: int = 5
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))

    def assess(
        self,
        reports: Sequence[CargoReport],
        facts: Sequence[CargoFacts] | None = None,
        extra_hits: Sequence[Sequence[RuleHit]] | None = None,
    ) -> list[CargoAssessment]:
        """One assessment per report; `facts` (from the store: earlier versions, linked filings) per report.

        `extra_hits` (one sequence per report) are report-level findings of other checks, such as
        cross-document consistency; they count for every container, like report-level rule hits.
        """
        if facts is not None and len(facts) != len(reports):
            raise ValueError(f"facts for {len(facts)} reports, expected {len(reports)}")
        rule_set = self.rules.current
        loaded = self.models.current
        now = self.clock()
        stored = [f.earlier_version_stored for f in facts] if facts is not None else None
        scored = self._score(reports, loaded, stored) if loaded is not None else None
        out = []
        for n, report in enumerate(reports):
            contexts = cargo_contexts(
                report,
                facts[n] if facts is not None else CargoFacts(),
                filing_deadline_hours=self.policy.deadline(report.transport_mode),
            )
            hits = rule_set.evaluate(contexts, on=(report.filing_time or now).date())
            if extra_hits is not None:
                hits = (*hits, *extra_hits[n])
            if loaded is None or scored is None:
                out.append(self._decide(report, hits, [None] * len(report.containers), rule_set.version, now, None))
                continue
            matrix, spans, probabilities = scored
            rows = matrix[spans[n]]
            assessment = self._decide(report, hits, probabilities[spans[n]].tolist(), rule_set.version, now, loaded)
            out.append(self._explain(assessment, loaded, rows))
        return out

    def _score(
        self, reports: Sequence[CargoReport], loaded: LoadedModel, counted_already: Sequence[bool] | None
    ) -> tuple[np.ndarray, list[slice], np.ndarray]:
        """The container matrix of every report (features.cargo, as training builds it) and its scores."""
        state = loaded.model.feature_state
        if not isinstance(state, ContainerFeatureState):  # the loader admits container models only
            state = None
        outcomes = state.outcomes if state is not None else None
        columns, spans = container_columns(reports, self.entities, outcomes, counted_already)
        matrix = build_container_matrix(columns, state)
        return matrix, spans, loaded.model.predict_proba(matrix)

    def _explain(self, assessment: CargoAssessment, loaded: LoadedModel, rows: np.ndarray) -> CargoAssessment:
        """Top contributions on the containers an officer will act on (an outcome other than NO_ACTION)."""
        wanted = [i for i, c in enumerate(assessment.containers) if c.outcome != ContainerOutcome.NO_ACTION]
        if not wanted or self.top_contributions == 0:
            return assessment
        contributions = loaded.model.contributions(rows[wanted])
        names = loaded.model.feature_names
        containers = list(assessment.containers)
        for k, i in enumerate(wanted):
            values = contributions[k, : len(names)]  # the last column is the bias
            order = np.argsort(-np.abs(values))[: self.top_contributions]
            top = tuple(
                FeatureContribution(
                    feature=names[j], value=float(rows[i, j]), contribution=float(values[j]), item_number=0
                )
                for j in order
                if values[j] != 0.0
            )
            containers[i] = replace(containers[i], contributions=top)
        return replace(assessment, containers=tuple(containers))

    def reassess(
        self, report: CargoReport, original: CargoAssessment, extra_hits: Sequence[RuleHit]
    ) -> CargoAssessment:
        """The stored assessment again, with `extra_hits` as all its consistency reasons: rules are not run again."""
        every = [*original.rule_hits, *(h for c in original.containers for h in c.rule_hits)]
        earlier = dict.fromkeys(h for h in every if not is_consistency_hit(h))
        scores = [c.model_score for c in original.containers]
        again = self._decide(report, [*earlier, *extra_hits], scores, original.rule_set_version, self.clock(), None)
        kept = {c.container_number: c.contributions for c in original.containers}
        containers = tuple(replace(c, contributions=kept.get(c.container_number, ())) for c in again.containers)
        return replace(
            again,
            containers=containers,
            model_status=original.model_status,
            model_name=original.model_name,
            model_version=original.model_version,
        )

    def _decide(
        self,
        report: CargoReport,
        hits: Sequence[RuleHit],
        model_scores: Sequence[float | None],
        rule_set_version: str,
        now: datetime,
        loaded: LoadedModel | None,
    ) -> CargoAssessment:
        shared: list[RuleHit] = []
        by_container: dict[str, list[RuleHit]] = {c.container_number: [] for c in report.containers}
        for hit in hits:
            concerned = containers_of(hit, report)
            if not concerned:
                shared.append(hit)
            for number in concerned:
                by_container[number].append(hit)
        selection = self.policy.selection
        containers: list[ContainerAssessment] = []
        rules_risk = 0.0  # the riskiest container's rule score alone: what may hold cargo back
        for container, model_score in zip(report.containers, model_scores, strict=True):
            own = by_container[container.container_number]
            applying = (*shared, *own)
            risk = combine_scores(model_score, [h.weight for h in applying])
            rules_risk = max(rules_risk, combine_scores(None, [h.weight for h in applying]))
            targeted = max([selection.channel_for_score(risk), *(h.min_channel for h in applying if h.min_channel)])
            channel, drawn = targeted, False
            if report.filing_type == FilingType.PRE_ARRIVAL:  # random scans on arrival, never to hold cargo back
                key = f"{report.report_id}\x1f{container.container_number}"
                channel, drawn = selection.decide(key, report.version, risk, applying)
            containers.append(
                ContainerAssessment(
                    container_number=container.container_number,
                    outcome=_ON_ARRIVAL.get(channel, ContainerOutcome.NO_ACTION),
                    channel=channel,
                    risk_score=risk,
                    model_score=model_score,
                    rule_hits=tuple(own),
                    # Only where the draw alone sends it to a check (its data would not): the unbiased sample.
                    random_control=drawn
                    and _ON_ARRIVAL.get(targeted) == ContainerOutcome.NO_ACTION
                    and _ON_ARRIVAL.get(channel) != ContainerOutcome.NO_ACTION,
                )
            )
        top = max(containers, key=lambda c: c.risk_score)  # the first of the riskiest
        pre_loading = PreLoadingOutcome.UNSPECIFIED
        if report.filing_type == FilingType.PRE_LOADING:
            threat = any(h.rule_id in self.policy.do_not_load_rules for h in hits)
            # The model predicts findings on arrival (revenue as much as safety), never an imminent
            # threat: only rules hold cargo back.
            if threat or rules_risk >= self.policy.do_not_load_score:
                pre_loading = PreLoadingOutcome.DO_NOT_LOAD
            else:
                pre_loading = _BEFORE_LOADING.get(
                    max(c.channel for c in containers), PreLoadingOutcome.ASSESSMENT_COMPLETE
                )
        outcomes = [c.outcome for c in containers]
        return CargoAssessment(
            assessment_id=self.new_id(),
            report_id=report.report_id,
            report_version=report.version,
            filing_type=report.filing_type,
            pre_loading_outcome=pre_loading,
            containers=tuple(containers),
            rule_hits=tuple(shared),
            risk_score=top.risk_score,
            summary=CargoSummary(
                no_action=outcomes.count(ContainerOutcome.NO_ACTION),
                scan=outcomes.count(ContainerOutcome.SCAN),
                physical_examination=outcomes.count(ContainerOutcome.PHYSICAL_EXAMINATION),
                highest_risk_container=top.container_number,
            ),
            model_status=ModelStatus.SCORED if loaded is not None else ModelStatus.UNAVAILABLE,
            model_name=loaded.name if loaded is not None else "",
            model_version=loaded.version if loaded is not None else "",
            rule_set_version=rule_set_version,
            assessment_time=now,
        )
