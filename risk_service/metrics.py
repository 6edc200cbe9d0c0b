"""Prometheus metrics of scoring and review, served on /metrics when a metrics port is set."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter, Gauge, Histogram, Info

from risk_service.domain.assessment import Assessment, ModelStatus
from risk_service.domain.cargo.assessment import CargoAssessment
from risk_service.domain.cargo.model import FilingType

ASSESSMENTS = Counter(
    "risk_assessments_total", "Assessments returned, by channel and model status.", ["channel", "model_status"]
)
REFUSED = Counter("risk_refused_total", "Declarations and cargo reports refused, by reason.", ["reason"])
SCORING_SECONDS = Histogram(
    "risk_scoring_seconds",
    "Time to screen and store one call's declarations.",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
)
CARGO_REPORTS = Counter(
    "risk_cargo_reports_total",
    "Cargo report assessments returned, by filing type and pre-loading answer (NONE before arrival).",
    ["filing_type", "pre_loading_outcome"],
)
CARGO_CONTAINERS = Counter(
    "risk_cargo_containers_total",
    "Containers assessed, by outcome on arrival and whether a random scan draw alone decided it.",
    ["outcome", "random_control"],
)
CARGO_SECONDS = Histogram(
    "risk_cargo_scoring_seconds",
    "Time to screen and store one call's cargo reports.",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0, 5.0),
)
MODEL_AVAILABLE = Gauge("risk_model_available", "1 while a model scores, 0 while the service runs on rules alone.")
SERVING = Info("risk_serving", "Model and rule-set versions in service.")
RULES_RELOAD_FAILED = Gauge(
    "risk_rules_reload_failed", "1 while the newest rule file is refused and the previous set serves."
)
CONTROLLED_GOODS_RELOAD_FAILED = Gauge(
    "risk_controlled_goods_reload_failed",
    "1 while the newest controlled goods table is refused and the previous serves.",
)
REVIEW_ACTIONS = Counter(
    "risk_review_actions_total",
    "Officers' actions on cases, by action and outcome: DONE, or why it was refused (ABORTED: a stale view).",
    ["action", "outcome"],
)
RULE_RUNTIME_ERRORS = Gauge("risk_rule_runtime_errors", "Rule conditions that failed at run time in the current set.")


class PrometheusObserver:
    def acted(self, action: str, outcome: str) -> None:
        REVIEW_ACTIONS.labels(action, outcome).inc()

    def scored(self, assessments: Sequence[Assessment], seconds: float) -> None:
        SCORING_SECONDS.observe(seconds)
        for a in assessments:
            ASSESSMENTS.labels(a.channel.name, a.model_status.name).inc()

    def refused(self, reason: str, count: int = 1) -> None:
        REFUSED.labels(reason).inc(count)

    def cargo_scored(self, assessments: Sequence[CargoAssessment], seconds: float) -> None:
        CARGO_SECONDS.observe(seconds)
        for a in assessments:
            answer = a.pre_loading_outcome.name if a.filing_type == FilingType.PRE_LOADING else "NONE"
            CARGO_REPORTS.labels(a.filing_type.name, answer).inc()
            for c in a.containers:
                CARGO_CONTAINERS.labels(c.outcome.name, "true" if c.random_control else "false").inc()


def publish_versions(
    model_name: str,
    model_version: str | None,
    rule_set_version: str,
    *,
    rules_reload_failed: bool = False,
    rule_runtime_errors: int = 0,
    controlled_goods_version: str = "",
    controlled_goods_reload_failed: bool = False,
    cargo_model_name: str = "",
    cargo_model_version: str | None = None,
    cargo_rule_set_version: str = "",
) -> None:
    MODEL_AVAILABLE.set(1 if model_version else 0)
    RULES_RELOAD_FAILED.set(1 if rules_reload_failed else 0)
    CONTROLLED_GOODS_RELOAD_FAILED.set(1 if controlled_goods_reload_failed else 0)
    RULE_RUNTIME_ERRORS.set(rule_runtime_errors)
    SERVING.info(
        {
            "model_name": model_name,
            "model_version": model_version or "none",
            "model_status": (ModelStatus.SCORED if model_version else ModelStatus.UNAVAILABLE).name,
            "rule_set_version": rule_set_version,
            "controlled_goods_version": controlled_goods_version or "none",
            "cargo_model_name": cargo_model_name,
            "cargo_model_version": cargo_model_version or "none",
            "cargo_rule_set_version": cargo_rule_set_version,
        }
    )
