"""`risk train`: read and check the history, split it by dates, train, evaluate, and record it all in MLflow.

The windows are given as dates: training is every labelled row before `valid_from`, validation
from `valid_from` to `test_from` (or to the end), the test window from `test_from` to `until`.
Settings (early stopping, calibration, the optional hyper-parameter search) are chosen on the
validation window only; the test window is scored once, at the end, and never steers anything.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import logging
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from features.kinds import FeatureKind, feature_kind
from models import RiskModel, registry
from models.booster import DEFAULT_PARAMS
from models.calibration import CalibrationMethod
from training import plots
from training.anomaly import anomaly_scores, fit_anomaly
from training.cargo_history import CARGO_SCHEMA
from training.evaluation import INSPECTION_RATES, Evaluation, evaluate
from training.history import DECLARATION_SCHEMA, HistorySchema, fingerprint, read_histories
from training.mapping import HistoryMapping, load_mapping
from training.train import TrainingDataError, inspected_rows, prepare_history, train_on_windows

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "risk-training"
# Searched on the validation window by --tune; LightGBM's defaults elsewhere (models.booster).
SEARCH_SPACE: Mapping[str, Sequence[Any]] = {
    "learning_rate": (0.02, 0.03, 0.05, 0.08),
    "num_leaves": (15, 31, 63, 127),
    "min_data_in_leaf": (10, 20, 50, 100),
    "feature_fraction": (0.6, 0.75, 0.9, 1.0),
    "lambda_l2": (0.0, 1.0, 5.0, 20.0),
    "cat_smooth": (1.0, 10.0, 30.0),
}


SHAP_SAMPLE_ROWS = 500


HISTORY_SCHEMAS: Mapping[str, HistorySchema] = {"declaration": DECLARATION_SCHEMA, "container": CARGO_SCHEMA}


def read_prepared(
    paths: Sequence[Path], mapping: HistoryMapping | None, kind: FeatureKind
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every filing of the histories with its point-in-time entity history, and the labelled rows among them."""
    history = prepare_history(read_histories(paths, mapping, HISTORY_SCHEMAS[kind.name]), kind)
    return history, inspected_rows(history)


class WindowError(ValueError):
    """Split dates that are out of order, or that leave a window without rows; names the option."""


@dataclass(frozen=True)
class TrainingRequest:
    histories: tuple[Path, ...]
    valid_from: date
    mapping: Path | None = None
    test_from: date | None = None
    until: date | None = None  # exclusive end of the last window; default: all rows
    seed: int = 0
    tune_trials: int = 0
    num_boost_round: int = 2000
    early_stopping_rounds: int = 50
    calibration: CalibrationMethod = "sigmoid"
    params: Mapping[str, Any] = field(default_factory=dict)
    kind: str = "declaration"  # or "container": cargo history, the container-targeting model


@dataclass(frozen=True)
class TrainingResult:
    model: RiskModel
    validation: Evaluation
    test: Evaluation | None
    rows: Mapping[str, int]  # rows per window
    params: Mapping[str, Any]  # what the run logged
    tags: Mapping[str, str]
    run_id: str | None = None
    version: str | None = None
    anomaly: Evaluation | None = None  # the IsolationForest signal on the validation window


def utc_day(day: date) -> pd.Timestamp:
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

    return pd.Timestamp(datetime(day.year, day.month, day.day, tzinfo=UTC))


def split_windows(
    labelled: pd.DataFrame, request: TrainingRequest, time_column: str = "lodgement_time"
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """The train, validation and (optional) test rows; refuses dates out of order or empty windows."""
    order = [("--valid-from", request.valid_from), ("--test-from", request.test_from), ("--until", request.until)]
    given = [(option, day) for option, day in order if day is not None]
    for (first, a), (second, b) in itertools.pairwise(given):
        if b <= a:
            raise WindowError(f"{second} {b} must come after {first} {a}")
    times = labelled[time_column]
    end = utc_day(request.until) if request.until is not None else None
    in_range = times < end if end is not None else times == times
    train = labelled[times < utc_day(request.valid_from)]
    valid_end = utc_day(request.test_from) if request.test_from is not None else end
    valid = labelled[
        (times >= utc_day(request.valid_from)) & (times < valid_end if valid_end is not None else in_range)
    ]
    test = None
    if request.test_from is not None:
        test = labelled[(times >= utc_day(request.test_from)) & in_range]
    first_day, last_day = times.min().date(), times.max().date()
    span = f"the labelled rows run from {first_day} to {last_day}"
    if train.empty:
        raise WindowError(f"no labelled rows before --valid-from {request.valid_from}; {span}")
    if valid.empty:
        raise WindowError(f"no labelled rows in the validation window from --valid-from {request.valid_from}; {span}")
    if test is not None and test.empty:
        raise WindowError(f"no labelled rows in the test window from --test-from {request.test_from}; {span}")
    return train, valid, test


def code_version() -> str:
    """The git commit of this checkout (with "+dirty" for local changes), else the package version."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        return f"{commit}+dirty" if dirty else commit
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"customs-risk-service {version('customs-risk-service')}"
        except PackageNotFoundError:
            return "unknown"


def _matrix(model: RiskModel, rows: pd.DataFrame) -> np.ndarray:
    return model.kind.matrix_of(rows, model.feature_state)


def _scores(model: RiskModel, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    matrix = _matrix(model, rows)
    return model.predict_proba(matrix), matrix


def evaluate_rows(model: RiskModel, rows: pd.DataFrame, rates: Sequence[float] = INSPECTION_RATES) -> Evaluation:
    scores, _ = _scores(model, rows)
    return evaluate_scores(scores, rows, rates)


def _revenue(rows: pd.DataFrame) -> np.ndarray | None:
    """Recovered revenue per row (a gap: nothing recovered), or None when the history records none."""
    revenue = rows["revenue_recovered"].to_numpy(dtype=np.float64)
    return None if np.isnan(revenue).all() else np.nan_to_num(revenue)


def evaluate_scores(scores: np.ndarray, rows: pd.DataFrame, rates: Sequence[float] = INSPECTION_RATES) -> Evaluation:
    """The BACUDA figures of any score over labelled rows (revenue and random controls when present)."""
    return evaluate(
        scores,
        rows["finding"].to_numpy(dtype=np.int64),
        revenue=_revenue(rows),
        random_control=rows["random_control"].to_numpy(dtype=bool),
        rates=rates,
    )


Progress = Callable[[str, int, int], None]  # (stage, done, total): for progress bars


def _fit(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    request: TrainingRequest,
    params: Mapping[str, Any],
    name: str = "",
    progress: Progress | None = None,
    outcomes_from: pd.DataFrame | None = None,
) -> tuple[RiskModel, dict[str, float]]:
    on_round = None if progress is None else functools.partial(progress, "boosting rounds")
    return train_on_windows(
        train,
        valid,
        kind=feature_kind(request.kind),
        seed=request.seed,
        num_boost_round=request.num_boost_round,
        early_stopping_rounds=request.early_stopping_rounds,
        calibration=request.calibration,
        params=params,
        name=name,
        on_round=on_round,
        outcomes_from=outcomes_from,
    )


def tune(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    request: TrainingRequest,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Random search over SEARCH_SPACE, judged by average precision on the validation window only."""
    from sklearn.model_selection import ParameterSampler

    best: tuple[float, dict[str, Any]] = (-1.0, dict(request.params))
    candidates = list(ParameterSampler(SEARCH_SPACE, n_iter=request.tune_trials, random_state=request.seed))
    for n, candidate in enumerate(candidates, start=1):
        trial = {**request.params, **candidate}
        model, _ = _fit(train, valid, request, trial)
        score = evaluate_rows(model, valid).overall.average_precision
        log.info("trial %d/%d: average precision %.4f with %s", n, len(candidates), score, candidate)
        if score > best[0]:
            best = (score, trial)
        if progress is not None:
            progress("tuning on validation", n, len(candidates))
    return best[1]


def run_training(
    request: TrainingRequest,
    *,
    model_name: str,
    tracking_uri: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    artifact_location: str | None = None,
    progress: Progress | None = None,
) -> TrainingResult:
    """Reads, checks, splits, trains and evaluates; logs and registers the model when tracking_uri is given.

    Every problem with the data or the dates is raised (HistoryError, WindowError) before training starts.
    """
    kind = feature_kind(request.kind)
    time_column = kind.entities.time_column
    mapping: HistoryMapping | None = load_mapping(request.mapping) if request.mapping is not None else None
    history, labelled = read_prepared(request.histories, mapping, kind)
    train, valid, test = split_windows(labelled, request, time_column)
    params = tune(train, valid, request, progress) if request.tune_trials > 0 else dict(request.params)
    # The model serves with every outcome up to the end of the data it was given (the test window too).
    known = labelled if request.until is None else labelled[labelled[time_column] < utc_day(request.until)]
    model, fit_metrics = _fit(train, valid, request, params, model_name, progress, outcomes_from=known)
    validation = evaluate_rows(model, valid)
    tested = evaluate_rows(model, test) if test is not None else None
    window = history[history[time_column] < utc_day(request.valid_from)]  # every filing, inspected or not
    anomaly = fit_anomaly(_matrix(model, window), seed=request.seed)
    anomaly_validation = evaluate_scores(anomaly_scores(anomaly, _matrix(model, valid)), valid)
    metrics = {f"valid_{k}": v for k, v in validation.metrics().items()}
    metrics.update({f"valid_anomaly_{k}": v for k, v in anomaly_validation.metrics().items()})
    if tested is not None:
        metrics.update({f"test_{k}": v for k, v in tested.metrics().items()})
    # The fit's own ranking figures repeat valid_* (from uncalibrated scores): keep only the rest.
    metrics.update({k: v for k, v in fit_metrics.items() if k not in validation.overall.metrics()})
    rows = {"train": len(train), "valid": len(valid), "test": 0 if test is None else len(test)}
    logged_params = {
        **{k: v for k, v in {**DEFAULT_PARAMS, **params}.items() if k != "metric"},
        "seed": request.seed,
        "calibration": request.calibration,
        "early_stopping_rounds": request.early_stopping_rounds,
        "tune_trials": request.tune_trials,
        "valid_from": request.valid_from.isoformat(),
        "test_from": request.test_from.isoformat() if request.test_from else "",
        "until": request.until.isoformat() if request.until else "",
        "train_start": str(train[time_column].min().date()),
        "kind": kind.name,
        "mapping": mapping.name if mapping is not None else "",
        "history_files": [p.name for p in request.histories],
        **{f"rows_{k}": v for k, v in rows.items()},
        "feature_count": len(model.feature_names),
    }
    tags = {
        "risk.dataset_sha256": fingerprint(request.histories),
        "risk.code_version": code_version(),
        "risk.mapping": mapping.name if mapping is not None else "canonical",
        "risk.model_kind": kind.name,
    }
    result = TrainingResult(model, validation, tested, rows, logged_params, tags, anomaly=anomaly_validation)
    if tracking_uri is None:
        return result
    with tempfile.TemporaryDirectory(prefix="risk-train-") as tmp:
        # Plotted on the test window when there is one: the validation window calibrated the model,
        # so its calibration plot would be calibrated by construction.
        plotted = (test, tested) if test is not None and tested is not None else (valid, validation)
        artifacts = _artifacts(model, plotted[0], plotted[1], Path(tmp))
        version = registry.log_and_register(
            model,
            tracking_uri=tracking_uri,
            model_name=model_name,
            experiment=experiment,
            artifact_location=artifact_location,
            params=logged_params,
            metrics=metrics,
            tags=tags,
            artifacts=artifacts,
            within_run=lambda: _log_anomaly(anomaly),
        )
    run_id = registry.version_run_id(tracking_uri, model_name, version)
    return TrainingResult(
        model, validation, tested, rows, logged_params, tags, run_id, version, anomaly=anomaly_validation
    )


def _log_anomaly(pipeline: Any) -> None:
    import mlflow.sklearn

    from training.anomaly import ANOMALY_MODEL_NAME, ANOMALY_TRUSTED_TYPES

    # Requirements given, not inferred: inferring them imports the model in a subprocess (~10 s).
    mlflow.sklearn.log_model(
        pipeline,
        name=ANOMALY_MODEL_NAME,
        pip_requirements=registry.pip_requirements("scikit-learn"),
        # MLflow saves scikit-learn models with skops, which refuses types it cannot vet; these two
        # are the forest's own node arrays, written by this run.
        skops_trusted_types=ANOMALY_TRUSTED_TYPES,
    )


def _artifacts(model: RiskModel, valid: pd.DataFrame, validation: Evaluation, folder: Path) -> list[Path]:
    """Evaluation plots of the rows (the validation window, for a training run), the feature list, the metrics."""
    scores, matrix = _scores(model, valid)
    findings = valid["finding"].to_numpy(dtype=np.int64)
    features = folder / "features.json"
    features.write_text(json.dumps(list(model.feature_names), indent=1), encoding="utf-8")
    report = folder / "metrics.json"
    report.write_text(json.dumps(validation.metrics(), indent=1, default=str), encoding="utf-8")
    gains = model.booster.feature_importance(importance_type="gain")
    return [
        features,
        report,
        plots.precision_recall_plot(scores, findings, folder),
        plots.gain_curve_plot(scores, findings, folder, revenue=_revenue(valid)),
        plots.calibration_plot(scores, findings, folder),
        plots.feature_importance_plot(list(model.feature_names), gains, folder),
        plots.shap_summary_plot(*_shap_sample(model, matrix), list(model.feature_names), folder),
    ]


def _shap_sample(model: RiskModel, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SHAP values of a seeded sample of rows, on every core: TreeSHAP of a large model costs ~10 ms a row,
    and a summary plot of SHAP_SAMPLE_ROWS rows shows the distribution that one of all of them would."""
    rows = np.random.default_rng(0).permutation(matrix.shape[0])[:SHAP_SAMPLE_ROWS]
    sample = matrix[np.sort(rows)]
    contributions = np.asarray(model.booster.predict(sample, pred_contrib=True), dtype=np.float64)
    return contributions, sample


@dataclass(frozen=True)
class EvaluationResult:
    evaluation: Evaluation
    rows: int
    run_id: str | None


@dataclass(frozen=True)
class EvaluationWindow:
    """Labelled rows of history files between two days; features still see the whole files (point in time)."""

    histories: tuple[Path, ...]
    start: date | None = None
    until: date | None = None
    mapping: Path | None = None
    kind: str = "declaration"


def load_window(window: EvaluationWindow) -> pd.DataFrame:
    mapping = load_mapping(window.mapping) if window.mapping is not None else None
    kind = feature_kind(window.kind)
    _, labelled = read_prepared(window.histories, mapping, kind)
    times = labelled[kind.entities.time_column]
    keep = np.ones(len(labelled), dtype=bool)
    if window.start is not None:
        keep &= (times >= utc_day(window.start)).to_numpy()
    if window.until is not None:
        keep &= (times < utc_day(window.until)).to_numpy()
    if not keep.any():
        raise WindowError("no labelled rows in the evaluation window (--from / --until)")
    return labelled[keep]


def run_evaluation(
    model: RiskModel,
    window: EvaluationWindow,
    *,
    tracking_uri: str | None = None,
    experiment: str = "risk-evaluation",
    artifact_location: str | None = None,
) -> EvaluationResult:
    """Scores the window's labelled rows with a model; logs a run with metrics and plots when tracking.

    The window is read as the model's kind of history (declarations or cargo containers).
    """
    window = dataclasses.replace(window, kind=model.kind.name)
    labelled = load_window(window)
    histories, start, until = window.histories, window.start, window.until
    evaluation = evaluate_rows(model, labelled)
    if tracking_uri is None:
        return EvaluationResult(evaluation, len(labelled), None)
    with tempfile.TemporaryDirectory(prefix="risk-evaluate-") as tmp:
        run_id = record_run(
            tracking_uri,
            experiment,
            artifact_location=artifact_location,
            tags={"risk.model_name": model.name, "risk.model_version": str(model.version)},
            params={
                "history_files": ",".join(p.name for p in histories),
                "mapping": str(window.mapping or ""),
                "from": start.isoformat() if start else "",
                "until": until.isoformat() if until else "",
                "rows": len(labelled),
            },
            metrics=evaluation.metrics(),
            histories=histories,
            artifacts=_artifacts(model, labelled, evaluation, Path(tmp)),
        )
    return EvaluationResult(evaluation, len(labelled), run_id)


def record_run(
    tracking_uri: str,
    experiment: str,
    *,
    tags: Mapping[str, str],
    params: Mapping[str, object],
    metrics: Mapping[str, float],
    histories: Sequence[Path] = (),
    artifacts: Sequence[Path] = (),
    artifact_location: str | None = None,
) -> str:
    """One MLflow run without a model (an evaluation, a promotion decision); returns its id.

    Adds the code version and, when histories are given, their fingerprint; leaves out undefined
    (NaN) metrics, which MLflow cannot compare.
    """
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    experiment_id = registry.ensure_experiment(tracking_uri, experiment, artifact_location)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        recorded = {**tags, "risk.code_version": code_version()}
        if histories:
            recorded["risk.dataset_sha256"] = fingerprint(histories)
        mlflow.set_tags(recorded)
        mlflow.log_params({k: str(v) for k, v in params.items()})
        mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
        for path in artifacts:
            mlflow.log_artifact(str(path), artifact_path="evaluation")
    return str(run.info.run_id)


__all__ = [
    "DEFAULT_EXPERIMENT",
    "TrainingDataError",
    "TrainingRequest",
    "TrainingResult",
    "WindowError",
    "run_training",
    "split_windows",
]
