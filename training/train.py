"""Trains a RiskModel on a filing history: inspected rows only, time-based validation, calibration."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

from features import EntityOutcomes, OutcomePrior, add_entity_history
from features.kinds import DECLARATION, FeatureKind
from models import RiskModel
from models.booster import DEFAULT_PARAMS, fit_booster
from models.calibration import CalibrationMethod, fit_calibrator
from training.evaluation import evaluate

log = logging.getLogger(__name__)


class TrainingDataError(ValueError):
    """The history cannot support training (no labels, one class, an empty window)."""


def prepare_history(history: pd.DataFrame, kind: FeatureKind = DECLARATION) -> pd.DataFrame:
    """Adds the point-in-time entity history over all filings, inspected or not (features.entity_history).

    Always computed here, never read from the file, so a history cannot bring features that look ahead.
    """
    stale = [c for c in kind.entities.columns() if c in history.columns]
    return add_entity_history(history.drop(columns=stale) if stale else history, kind.entities)


def inspected_rows(history: pd.DataFrame) -> pd.DataFrame:
    """Only inspected rows carry labels: a finding can only come from an inspection."""
    labelled = history[history["inspected"].astype(bool)]
    if labelled.empty:
        raise TrainingDataError("no inspected rows to learn from")
    return labelled


def train_model(
    history: pd.DataFrame,
    *,
    seed: int = 0,
    num_boost_round: int = 300,
    valid_fraction_by_time: float = 0.2,
    early_stopping_rounds: int = 30,
    calibration: CalibrationMethod = "sigmoid",
    params: Mapping[str, Any] | None = None,
    name: str = "",
    kind: FeatureKind = DECLARATION,
) -> tuple[RiskModel, dict[str, float]]:
    """Fits the booster on the earlier inspected filings and validates on the latest ones.

    The model estimates P(finding | inspected, features); the random control stream keeps that
    from being only the officers' old targeting. The last `valid_fraction_by_time` of labelled rows
    by lodgement time is the validation window (see train_on_windows). For dated windows, as
    `risk train` gives them, call train_on_windows directly.
    """
    if not 0.0 < valid_fraction_by_time < 1.0:
        raise ValueError("valid_fraction_by_time must be in (0, 1)")
    labelled = inspected_rows(prepare_history(history, kind))
    times = labelled[kind.entities.time_column]
    cut = times.quantile(1.0 - valid_fraction_by_time)
    return train_on_windows(
        labelled[times < cut],
        labelled[times >= cut],
        seed=seed,
        num_boost_round=num_boost_round,
        early_stopping_rounds=early_stopping_rounds,
        calibration=calibration,
        params=params,
        name=name,
        kind=kind,
    )


def train_on_windows(
    train_rows: pd.DataFrame,
    valid_rows: pd.DataFrame,
    *,
    seed: int = 0,
    num_boost_round: int = 300,
    early_stopping_rounds: int = 30,
    calibration: CalibrationMethod = "sigmoid",
    params: Mapping[str, Any] | None = None,
    name: str = "",
    on_round: Callable[[int, int], None] | None = None,
    outcomes_from: pd.DataFrame | None = None,
    kind: FeatureKind = DECLARATION,
) -> tuple[RiskModel, dict[str, float]]:
    """Fits on the training window; early stopping, calibration and the metrics use the validation window.

    Both windows hold inspected rows with their point-in-time history (prepare_history over all
    filings). FeatureState's bands and outcome prior are fitted on the training window only, so
    nothing of the validation window leaks into the features. The entity outcomes the model
    carries come from `outcomes_from` (default: both windows): what serving counts inspections and
    findings from once the model is in service. Training and validation rows never read them; theirs
    are point in time.
    """
    y_train = train_rows["finding"].to_numpy(dtype=np.float64)
    y_valid = valid_rows["finding"].to_numpy(dtype=np.float64)
    if np.unique(y_train).size < 2 or valid_rows.empty:
        raise TrainingDataError("the training window needs both classes and the validation window rows")

    train_columns = kind.columns_from_frame(train_rows)
    prior = OutcomePrior.fit(train_rows, kind.entities)
    served_outcomes = pd.concat([train_rows, valid_rows]) if outcomes_from is None else outcomes_from
    outcomes = EntityOutcomes.from_frame(served_outcomes, prior, kind.entities)
    state = kind.fit_state(train_columns).with_outcomes(outcomes)
    x_train = kind.build_matrix(train_columns, state)
    x_valid = kind.matrix_of(valid_rows, state)
    log.info(
        "training a %s model on %d rows (%.2f%% findings), validating on %d rows from %s",
        kind.name,
        len(y_train),
        100 * y_train.mean(),
        len(y_valid),
        valid_rows[kind.entities.time_column].min(),
    )

    full_params = {**DEFAULT_PARAMS, **(params or {}), "seed": seed}
    booster = fit_booster(
        x_train,
        y_train,
        x_valid,
        y_valid,
        params=full_params,
        num_boost_round=num_boost_round,
        early_stopping_rounds=early_stopping_rounds,
        on_round=on_round,
        kind=kind,
    )
    best = booster.current_iteration()

    raw_valid = np.asarray(booster.predict(x_valid, num_threads=1), dtype=np.float64)
    calibrator = fit_calibrator(raw_valid, y_valid, calibration)
    # One definition of the ranking metrics for every run: training.evaluation's (the BACUDA convention).
    metrics = evaluate(raw_valid, y_valid.astype(np.int64)).overall.metrics()
    calibrated = calibrator.apply(raw_valid)
    metrics.update(
        brier=float(np.mean((calibrated - y_valid) ** 2)),
        best_iteration=float(best),
        train_rows=float(len(y_train)),
        valid_rows=float(len(y_valid)),
        train_positive_rate=float(y_train.mean()),
        valid_positive_rate=float(y_valid.mean()),
    )
    recorded = {k: v for k, v in full_params.items() if k != "metric"}
    model = RiskModel(
        booster, calibrator, state, kind.feature_names, kind=kind, name=name, metrics=metrics, params=recorded
    )
    log.info("validation: %s", ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    return model, metrics
