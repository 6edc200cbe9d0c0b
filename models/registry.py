"""The MLflow naming contract: how risk models are logged, registered, aliased and loaded.

A registered version is one MLflow 3 LoggedModel named "model", logged with the LightGBM flavour
(`model.lgb`, loadable by `mlflow.lightgbm.load_model`) plus `extra_files/risk_model.json` holding
the calibrator, the feature state, the feature names and the training metrics (see
RiskModel.to_artifact). Loading `models:/<name>/<version>` therefore needs nothing else: no run
lookup, no second artifact. Each version also carries the tags `risk.feature_schema_sha256` and
`risk.artifact_format`, so a schema mismatch can be seen without downloading the model.

mlflow is imported inside the functions only, so `import models` stays light for serving.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from features import FEATURE_NAMES
from models.risk_model import ARTIFACT_FORMAT_VERSION, ModelSchemaError, RiskModel

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

MODEL_ARTIFACT_NAME = "model"  # the LoggedModel's name inside its run
RISK_MODEL_FILE = "risk_model.json"
FEATURE_SCHEMA_TAG = "risk.feature_schema_sha256"
ARTIFACT_FORMAT_TAG = "risk.artifact_format"


def feature_schema_hash(feature_names: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(feature_names).encode()).hexdigest()


def default_artifact_location(tracking_uri: str) -> str | None:
    """For a local `sqlite:///<dir>/mlflow.db` store: `file://<dir>/mlartifacts`; None for servers."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme != "sqlite":
        return None
    db_path = unquote(parsed.path)
    # sqlite:///relative.db has path "/relative.db"; sqlite:////abs.db has "//abs.db"
    db = Path(db_path[1:]) if db_path.startswith("/") else Path(db_path)
    return (db.resolve().parent / "mlartifacts").as_uri()


def log_and_register(
    model: RiskModel,
    *,
    tracking_uri: str,
    model_name: str,
    experiment: str,
    artifact_location: str | None,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    alias: str | None = None,
    tags: Mapping[str, str] | None = None,
    artifacts: Sequence[Path] = (),
    within_run: Callable[[], None] | None = None,
) -> str:
    """Logs one training run with the model, registers it under `model_name`; returns the version.

    `tags` are set on the run and on the version; `artifacts` (plots, reports) are logged under
    the run's `evaluation/` folder. The experiment is created with `artifact_location` (default:
    next to a SQLite store), so nothing is written under the current directory. Sets `alias` on
    the new version when given.
    """
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client = _client(tracking_uri)
    experiment_id = _ensure_experiment(client, experiment, artifact_location or default_artifact_location(tracking_uri))
    signature = ModelSignature(
        inputs=Schema([ColSpec("double", name) for name in model.feature_names]),
        outputs=Schema([ColSpec("double")]),
    )
    schema_hash = feature_schema_hash(model.feature_names)
    with tempfile.TemporaryDirectory(prefix="risk-model-") as tmp:
        artifact_file = Path(tmp) / RISK_MODEL_FILE
        artifact_file.write_text(model.artifact_json(), encoding="utf-8")
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_params({k: _param_value(v) for k, v in params.items()})
            finite = {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}
            mlflow.log_metrics(finite)
            mlflow.set_tags({**(tags or {}), FEATURE_SCHEMA_TAG: schema_hash, "risk.model_name": model_name})
            for path in artifacts:
                mlflow.log_artifact(str(path), artifact_path="evaluation")
            if within_run is not None:  # e.g. companion models logged next to this one
                within_run()
            info = mlflow.lightgbm.log_model(
                model.booster,
                name=MODEL_ARTIFACT_NAME,
                signature=signature,
                registered_model_name=model_name,
                extra_files=[str(artifact_file)],
                metadata={FEATURE_SCHEMA_TAG: schema_hash, ARTIFACT_FORMAT_TAG: ARTIFACT_FORMAT_VERSION},
                tags={FEATURE_SCHEMA_TAG: schema_hash},
                # explicit, because inferring them runs a subprocess that imports the model (~10 s)
                pip_requirements=pip_requirements(),
            )
    version = str(info.registered_model_version)
    client.set_model_version_tag(model_name, version, FEATURE_SCHEMA_TAG, schema_hash)
    client.set_model_version_tag(model_name, version, ARTIFACT_FORMAT_TAG, str(ARTIFACT_FORMAT_VERSION))
    for key, value in (tags or {}).items():
        client.set_model_version_tag(model_name, version, key, value)
    log.info("registered %s version %s (run %s, model %s)", model_name, version, run.info.run_id, info.model_id)
    if alias:
        set_alias(tracking_uri, model_name, alias, version)
    return version


def trained_until(tracking_uri: str, model_name: str, version: str) -> str | None:
    """The first day after a version's training window (its run's valid_from), or None when not recorded."""
    client = _client(tracking_uri)
    run_id = client.get_model_version(model_name, str(version)).run_id
    if not run_id:
        return None
    value = client.get_run(run_id).data.params.get("valid_from")
    return str(value) if value else None


def version_run_id(tracking_uri: str, model_name: str, version: str) -> str:
    """The id of the run that logged a registered version."""
    return str(_client(tracking_uri).get_model_version(model_name, str(version)).run_id)


CHAMPION_HISTORY_TAG = "risk.champion_history"


def champion_history(tracking_uri: str, model_name: str) -> list[str]:
    """The versions promoted to champion, oldest first, as promotions and rollbacks recorded them."""
    tags = _client(tracking_uri).get_registered_model(model_name).tags or {}
    recorded = json.loads(tags.get(CHAMPION_HISTORY_TAG, "[]"))
    return [str(v) for v in recorded]


def push_champion(tracking_uri: str, model_name: str, version: str) -> None:
    history = [v for v in champion_history(tracking_uri, model_name) if v != version] + [str(version)]
    _client(tracking_uri).set_registered_model_tag(model_name, CHAMPION_HISTORY_TAG, json.dumps(history))


def pop_champion(tracking_uri: str, model_name: str, back_to: str) -> None:
    """Drops the champions after `back_to` (a rollback); keeps `back_to` last."""
    history = champion_history(tracking_uri, model_name)
    kept = history[: history.index(back_to) + 1] if back_to in history else [*history, back_to]
    _client(tracking_uri).set_registered_model_tag(model_name, CHAMPION_HISTORY_TAG, json.dumps(kept))


def set_alias(tracking_uri: str, model_name: str, alias: str, version: str) -> None:
    """Points `alias` (e.g. "champion") at `version`; serving picks it up on its next refresh."""
    _client(tracking_uri).set_registered_model_alias(model_name, alias, str(version))
    log.info("alias %s@%s -> version %s", model_name, alias, version)


def resolve_alias(tracking_uri: str, model_name: str, alias: str) -> str | None:
    """The version `models:/<model_name>@<alias>` names, or None when the model or the alias is absent."""
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    try:
        registered = client.get_registered_model(model_name)
    except MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    version = (registered.aliases or {}).get(alias)
    return str(version) if version is not None else None


def has_feature_schema(
    tracking_uri: str, model_name: str, version: str, feature_names: Sequence[str] = FEATURE_NAMES
) -> bool:
    """Whether the version takes exactly `feature_names`, in order.

    Reads the version's schema tag; only a version without one (registered by other means) is
    downloaded and loaded to find out. A version whose artifact cannot be read does not match.
    """
    tags = _client(tracking_uri).get_model_version(model_name, str(version)).tags or {}
    tagged = tags.get(FEATURE_SCHEMA_TAG)
    if tagged is not None:
        return bool(tagged == feature_schema_hash(feature_names))
    log.info("%s version %s has no %s tag; loading it to read its features", model_name, version, FEATURE_SCHEMA_TAG)
    try:
        model = load_version(tracking_uri, model_name, version, expected_feature_names=None)
    except ModelSchemaError as err:
        log.warning("%s version %s cannot be read: %s", model_name, version, err)
        return False
    return model.feature_names == tuple(feature_names)


def load_version(
    tracking_uri: str,
    model_name: str,
    version: str,
    *,
    expected_feature_names: Sequence[str] | None = FEATURE_NAMES,
) -> RiskModel:
    """Downloads and fully loads one version; raises ModelSchemaError when its features differ.

    `expected_feature_names=None` skips the check against this code's FEATURE_NAMES (the booster
    is still checked against its own artifact).
    """
    import mlflow.artifacts
    import mlflow.lightgbm

    # Resolved with our own client: MLflow resolves a `models:/name/version` URI against the
    # process-global registry URI (default ./mlflow.db), whatever registry_uri it is given.
    source = _client(tracking_uri).get_model_version_download_uri(model_name, str(version))
    with tempfile.TemporaryDirectory(prefix="risk-model-") as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=source, dst_path=tmp, tracking_uri=tracking_uri, registry_uri=tracking_uri
        )
        booster = mlflow.lightgbm.load_model(local)
        data = json.loads((Path(local) / "extra_files" / RISK_MODEL_FILE).read_text(encoding="utf-8"))
    model = RiskModel.from_artifact(booster, data, version=str(version))
    model.name = model_name
    if expected_feature_names is not None:
        model.check_schema(expected_feature_names)
    return model


def pip_requirements(*extra: str) -> list[str]:
    """Pinned requirements of a logged model: what serving it needs, from this environment."""
    from importlib.metadata import version

    return [f"{dist}=={version(dist)}" for dist in ("mlflow", "lightgbm", "numpy", "pandas", *extra)]


def _client(tracking_uri: str) -> MlflowClient:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def ensure_experiment(tracking_uri: str, name: str, artifact_location: str | None = None) -> str:
    """The experiment's id, creating it (artifacts next to a SQLite store by default) when absent."""
    return _ensure_experiment(_client(tracking_uri), name, artifact_location or default_artifact_location(tracking_uri))


def _ensure_experiment(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    from mlflow.exceptions import MlflowException

    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return str(existing.experiment_id)
    try:
        return str(client.create_experiment(name, artifact_location=artifact_location))
    except MlflowException as err:  # created concurrently by another process
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        again = client.get_experiment_by_name(name)
        if again is None:
            raise
        return str(again.experiment_id)


def _param_value(value: Any) -> str | int | float | bool:
    if isinstance(value, str | int | float | bool):
        return value
    return json.dumps(value, sort_keys=True, default=str)
