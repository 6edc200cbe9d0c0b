"""An unsupervised anomaly score (IsolationForest) trained next to the risk model, as an extra signal.

Labels exist only where officers inspected, and officers inspected what earlier targeting chose:
the supervised model learns that bias. The anomaly score is fitted on every filing of the
training window, inspected or not, on the same features, so it can point at consignments unlike
anything seen, whatever was inspected before. Each training run evaluates it on the validation
window like the model (its own AUC and top-n% precision, `valid_anomaly_*`) and logs it as the
run's `anomaly` model (scikit-learn flavour) for analysts' offline selection; the online service
does not compute it (scikit-learn walks its trees in Python, about a millisecond a row).
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

ANOMALY_MODEL_NAME = "anomaly"  # the companion model's name inside a training run
# Saved with these skops types trusted; mlflow.sklearn.load_model(f"runs:/{run_id}/anomaly") loads it.
ANOMALY_TRUSTED_TYPES = ["numpy.dtype", "sklearn.tree._tree.Tree"]
# IsolationForest learns from small subsamples by design; more rows add time, not signal.
MAX_FIT_ROWS = 200_000


def fit_anomaly(matrix: np.ndarray, *, seed: int = 0, n_estimators: int = 200) -> Pipeline:
    """Fits on the rows of `matrix` (a seeded sample of at most MAX_FIT_ROWS); missing values take the median."""
    rows = matrix
    if rows.shape[0] > MAX_FIT_ROWS:
        pick = np.random.default_rng(seed).choice(rows.shape[0], MAX_FIT_ROWS, replace=False)
        rows = rows[np.sort(pick)]
    # Columns that are all NaN in the window (e.g. permit facts in another administration's data)
    # are kept (as 0) so the pipeline takes the full feature matrix at scoring time.
    pipeline = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("forest", IsolationForest(n_estimators=n_estimators, random_state=seed, n_jobs=1)),
        ]
    )
    pipeline.fit(rows)
    return pipeline


def anomaly_scores(pipeline: Pipeline, matrix: np.ndarray) -> np.ndarray:
    """Higher is more anomalous (the negated IsolationForest score), one per row."""
    return -np.asarray(pipeline.score_samples(matrix), dtype=np.float64)
