"""Champion/challenger: a candidate becomes champion only if it beats the champion on the same window.

Both versions score the same labelled rows; the candidate must exceed the champion's precision at
the target inspection rate by the configured margin. Every decision, promotion or refusal, is an
MLflow run in the `risk-promotion` experiment with both evaluations and the reason, and the
registered model keeps the list of champions (tag `risk.champion_history`), so `rollback`
re-points the alias to the one before.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from features.kinds import feature_kind
from models import RiskModel, registry
from models.risk_model import ModelSchemaError
from training.evaluation import INSPECTION_RATES, Evaluation, rate_label
from training.run import EvaluationWindow, evaluate_rows, load_window, record_run

log = logging.getLogger(__name__)

PROMOTION_EXPERIMENT = "risk-promotion"


class PromotionRefused(Exception):
    """The candidate cannot be considered at all (unknown version, features the service does not build)."""


@dataclass(frozen=True)
class PromotionDecision:
    promoted: bool
    candidate: str
    champion: str | None  # the champion before the decision
    reason: str
    rate: float
    candidate_evaluation: Evaluation
    champion_evaluation: Evaluation | None
    run_id: str | None = None


def _load(tracking_uri: str, model_name: str, version: str, role: str, kind: str) -> RiskModel:
    from mlflow.exceptions import MlflowException

    try:
        model = registry.load_version(tracking_uri, model_name, version, expected_feature_names=None)
        if model.kind.name != kind:
            raise PromotionRefused(
                f"{role} {model_name} version {version} is a {model.kind.name} model; "
                f"judge it with --kind {model.kind.name} on {model.kind.name} history"
            )
        model.check_schema(feature_kind(kind).feature_names)
    except ModelSchemaError as err:
        raise PromotionRefused(f"{role} {model_name} version {version} does not fit this service: {err}") from None
    except MlflowException as err:
        if err.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise PromotionRefused(f"{role} {model_name} version {version} is not registered") from None
    return model


def promote(
    *,
    tracking_uri: str,
    model_name: str,
    candidate: str,
    window: EvaluationWindow,
    rate: float,
    margin: float,
    alias: str = "champion",
) -> PromotionDecision:
    """Moves `alias` to `candidate` if it beats the current holder by `margin` at `rate`; records the decision.

    A candidate whose features differ from the service's for the window's kind (declaration or
    container) is refused before any scoring (PromotionRefused). With no current champion the
    candidate is promoted on its own figures.
    """
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"the target inspection rate must be in (0, 1], not {rate}")
    model = _load(tracking_uri, model_name, candidate, "candidate", window.kind)
    champion = registry.resolve_alias(tracking_uri, model_name, alias)
    if window.start is None:
        raise PromotionRefused("give the first day of the judging window (--from): the whole file holds training rows")
    trained_until = registry.trained_until(tracking_uri, model_name, candidate)
    if trained_until is not None and window.start.isoformat() < trained_until:
        raise PromotionRefused(
            f"the judging window starts {window.start}, inside candidate v{candidate}'s training window "
            f"(it trained on rows before {trained_until}); judge on later rows"
        )
    if champion == str(candidate):
        raise PromotionRefused(f"{model_name} version {candidate} already is the {alias}")
    rows = load_window(window)
    rates = tuple(sorted({*INSPECTION_RATES, rate}))
    candidate_eval = evaluate_rows(model, rows, rates)
    champion_eval = None
    label = rate_label(rate)
    new = candidate_eval.overall.at(rate).precision
    if champion is None:
        promoted, reason = True, f"no {alias} yet; candidate precision at {label} is {new:.4f}"
    else:
        champion_eval = evaluate_rows(_load(tracking_uri, model_name, champion, alias, window.kind), rows, rates)
        old = champion_eval.overall.at(rate).precision
        promoted = new > old and new - old >= margin  # strictly better, and by at least the margin
        verdict = "beats" if promoted else "does not beat"
        reason = (
            f"candidate v{candidate} precision at {label} {new:.4f} {verdict} {alias} v{champion} {old:.4f} "
            f"by the margin {margin:.4f} on {len(rows)} labelled rows"
        )
    if promoted:
        if champion is not None and champion not in registry.champion_history(tracking_uri, model_name):
            registry.push_champion(tracking_uri, model_name, champion)  # set by alias alone (e.g. the demo)
        registry.set_alias(tracking_uri, model_name, alias, str(candidate))
        registry.push_champion(tracking_uri, model_name, str(candidate))
    log.info("%s: %s", "promoted" if promoted else "refused", reason)
    run_id = _record(
        tracking_uri,
        model_name,
        decision="promoted" if promoted else "refused",
        reason=reason,
        params={
            "candidate": str(candidate),
            "champion": champion or "",
            "rate": rate,
            "margin": margin,
            "rows": len(rows),
            "from": window.start.isoformat() if window.start else "",
            "until": window.until.isoformat() if window.until else "",
            "history_files": ",".join(p.name for p in window.histories),
        },
        evaluations={"candidate_": candidate_eval, "champion_": champion_eval},
        histories=window.histories,
    )
    return PromotionDecision(promoted, str(candidate), champion, reason, rate, candidate_eval, champion_eval, run_id)


def rollback(
    *, tracking_uri: str, model_name: str, to: str | None = None, alias: str = "champion", kind: str = "declaration"
) -> tuple[str, str]:
    """Re-points `alias` to the previous champion (or to version `to`); returns (from, to) versions.

    The version rolled back to must still take this service's features of the model's `kind`.
    """
    current = registry.resolve_alias(tracking_uri, model_name, alias)
    if current is None:
        raise PromotionRefused(f"{model_name} has no {alias} to roll back")
    history = registry.champion_history(tracking_uri, model_name)
    if to is None:
        # The champion recorded before the current one (the alias may have moved outside promote).
        earlier = history[: history.index(current)] if current in history else history
        earlier = [v for v in earlier if v != current]
        if not earlier:
            raise PromotionRefused(f"{model_name} has no earlier {alias} recorded to roll back to")
        to = earlier[-1]
    _load(tracking_uri, model_name, to, "rollback target", kind)
    registry.set_alias(tracking_uri, model_name, alias, to)
    registry.pop_champion(tracking_uri, model_name, to)
    _record(
        tracking_uri,
        model_name,
        decision="rollback",
        reason=f"{alias} moved back from v{current} to v{to}",
        params={"from_version": current, "to_version": to},
        evaluations={},
        histories=(),
    )
    return current, to


def _record(
    tracking_uri: str,
    model_name: str,
    *,
    decision: str,
    reason: str,
    params: dict[str, object],
    evaluations: dict[str, Evaluation | None],
    histories: Sequence[Path],
) -> str:
    metrics = {
        f"{prefix}{k}": v
        for prefix, evaluation in evaluations.items()
        if evaluation is not None
        for k, v in evaluation.metrics().items()
    }
    return record_run(
        tracking_uri,
        PROMOTION_EXPERIMENT,
        tags={"risk.model_name": model_name, "risk.decision": decision, "risk.reason": reason},
        params=params,
        metrics=metrics,
        histories=histories,
    )
