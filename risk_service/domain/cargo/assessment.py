"""The outcome of screening a cargo report: an answer for the report and one for each container."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from risk_service.domain.assessment import Channel, FeatureContribution, ModelStatus, RuleHit
from risk_service.domain.cargo.model import ContainerOutcome, FilingType, PreLoadingOutcome


@dataclass(frozen=True, slots=True)
class ContainerAssessment:
    container_number: str
    outcome: ContainerOutcome  # what its data lead to on arrival, for either filing type
    channel: Channel  # the declaration scale the outcome maps from
    risk_score: float
    model_score: float | None
    rule_hits: tuple[RuleHit, ...]  # hits on this container's data; report-level hits are on the report
    contributions: tuple[FeatureContribution, ...] = ()
    random_control: bool = False  # its outcome comes from the random scan draw alone, not from its data


@dataclass(frozen=True, slots=True)
class CargoSummary:
    no_action: int
    scan: int
    physical_examination: int
    highest_risk_container: str


@dataclass(frozen=True, slots=True)
class CargoAssessment:
    assessment_id: str
    report_id: str
    report_version: int
    filing_type: FilingType
    pre_loading_outcome: PreLoadingOutcome  # UNSPECIFIED for a pre-arrival report
    containers: tuple[ContainerAssessment, ...]
    rule_hits: tuple[RuleHit, ...]  # report-level hits: they count for every container
    risk_score: float  # the highest container risk
    summary: CargoSummary
    model_status: ModelStatus
    model_name: str
    model_version: str
    rule_set_version: str
    assessment_time: datetime

    @property
    def is_mildest(self) -> bool:
        """Nothing asked of anyone for cause: loading may go ahead, or no container is to be checked but
        for random scans."""
        if self.filing_type == FilingType.PRE_LOADING:
            return self.pre_loading_outcome == PreLoadingOutcome.ASSESSMENT_COMPLETE
        return all(c.outcome == ContainerOutcome.NO_ACTION or c.random_control for c in self.containers)
