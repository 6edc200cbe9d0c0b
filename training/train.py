"""Trains a RiskModel on a filing history: inspected rows only, time-based validation, calibration."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

from features import FEATURE_NAMES, FeatureState, build_feature_matrix, columns_from_frame
from features.entity_history import add_importer_history
from models import RiskModel
from models.booster import DEFAULT_PARAMS, fit_booster, ranking_metrics
from models.calibration import CalibrationMethod, fit_calibrator

log = logging.getLogger(__name__)


class TrainingDataError(ValueError):
    """The history cannot support training (no labels, one class, an empty window)."""


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
) -> tuple[RiskModel, dict[str, float]]:
    """Fits the booster on the earlier inspected filings and validates on the latest ones.

    Only inspected rows carry labels (a finding can only come from an inspection), so the model
    estimates P(finding | inspected, features); the random control stream keeps that from being
    only the officers' old targeting. The last `valid_fraction_by_time` of labelled rows by
    lodgement time is the validation window: early stopping, calibration and the metrics use it.
    FeatureState is fitted on the training window only.
    """
    if not 0.0 < valid_fraction_by_time < 1.0:
        raise ValueError("valid_fraction_by_time must be in (0, 1)")
    if "importer_prior_filings" not in history.columns or "importer_days_known" not in history.columns:
        history = add_importer_history(history)  # over all filings, inspected or not
    labelled = history[history["inspected"].astype(bool)]
    if labelled.empty:
        raise TrainingDataError("no inspected rows to learn from")
    times = labelled["lodgement_time"]
    cut = times.quantile(1.0 - valid_fraction_by_time)
    train_rows = labelled[times < cut]
    valid_rows = labelled[times >= cut]
    y_train = train_rows["finding"].to_numpy(dtype=np.float64)
    y_valid = valid_rows["finding"].to_numpy(dtype=np.float64)
    if np.unique(y_train).size < 2 or valid_rows.empty:
        raise TrainingDataError("the training window needs both classes and the validation window rows")

    train_columns = columns_from_frame(train_rows)
    state = FeatureState.fit(train_columns)
    x_train = build_feature_matrix(train_columns, state)
    x_valid = build_feature_matrix(columns_from_frame(valid_rows), state)
    log.info(
        "training on %d rows (%.2f%% findings), validating on %d rows from %s",
        len(y_train),
        100 * y_train.mean(),
        len(y_valid),
        cut,
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
    )
    best = booster.current_iteration()

    raw_valid = np.asarray(booster.predict(x_valid, num_threads=1), dtype=np.float64)
    calibrator = fit_calibrator(raw_valid, y_valid, calibration)
    metrics = ranking_metrics(raw_valid, y_valid)
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
    model = RiskModel(booster, calibrator, state, FEATURE_NAMES, name=name, metrics=metrics, params=recorded)
    log.info("validation: %s", ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    return model, metrics
