"""Fitting the LightGBM booster of a RiskModel, and the ranking metrics it is judged by."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lightgbm as lgb
import numpy as np

from features.kinds import DECLARATION, FeatureKind

DEFAULT_PARAMS: Mapping[str, Any] = {
    "objective": "binary",
    "metric": ["binary_logloss", "auc"],
    "first_metric_only": True,  # early stopping on log loss: the calibrator wants good probabilities
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.9,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "cat_smooth": 10.0,
    "min_data_per_group": 50,
    "max_cat_to_onehot": 4,
    "deterministic": True,
    # One thread: LightGBM's second OpenMP thread busy-waits, and on a shared 2-core machine that made
    # a KCS fit up to 13x slower whenever anything else ran; one thread costs ~1.5 s when idle.
    "num_threads": 1,
    "force_row_wise": True,
    "verbosity": -1,
}


def fit_booster(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    *,
    params: Mapping[str, Any],
    num_boost_round: int,
    early_stopping_rounds: int,
    on_round: Callable[[int, int], None] | None = None,
    kind: FeatureKind = DECLARATION,
) -> lgb.Booster:
    """Binary LightGBM on the kind's features with native categoricals, early-stopped on the validation rows.

    Returns a booster holding only the trees up to the best iteration, so the in-memory model
    and the one saved to the registry are the same model. `on_round(done, most)` hears each round.
    """
    dataset_params = {"verbosity": -1}
    dtrain = lgb.Dataset(
        x_train,
        label=y_train,
        feature_name=list(kind.feature_names),
        categorical_feature=list(kind.categorical),
        params=dataset_params,
        free_raw_data=False,
    )
    dvalid = lgb.Dataset(x_valid, label=y_valid, reference=dtrain, params=dataset_params)
    callbacks: list[Callable[..., Any]] = []
    if np.unique(y_valid).size == 2:
        callbacks.append(lgb.early_stopping(early_stopping_rounds, first_metric_only=True, verbose=False))
    if on_round is not None:
        report = on_round

        def progress(env: lgb.callback.CallbackEnv) -> None:
            report(env.iteration + 1, env.end_iteration)

        callbacks.append(progress)
    trained = lgb.train(dict(params), dtrain, num_boost_round=num_boost_round, valid_sets=[dvalid], callbacks=callbacks)
    best = trained.best_iteration if trained.best_iteration > 0 else trained.current_iteration()
    return lgb.Booster(model_str=trained.model_to_string(num_iteration=best))
