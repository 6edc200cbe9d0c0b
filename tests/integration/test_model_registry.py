"""The MLflow contract against a real SQLite store: register, alias, resolve, load, schema checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from features import FEATURE_NAMES, FeatureState, build_feature_matrix, columns_from_frame
from models import Calibrator, ModelSchemaError, RiskModel, fit_calibrator, registry
from training.demo import ensure_demo_champion
from training.synthetic import generate_history
from training.train import prepare_history, train_model

MODEL = "customs-risk-test"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Store:
    uri: str
    artifacts: str
    cwd: Path
    data: Path


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A fresh store in a temp dir, used from an empty working directory that must stay empty."""
    data = tmp_path_factory.mktemp("data")
    cwd = tmp_path_factory.mktemp("cwd")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        yield Store(f"sqlite:///{data / 'mlflow.db'}", (data / "mlartifacts").as_uri(), cwd, data)
    assert list(cwd.iterdir()) == [], "MLflow wrote into the working directory"


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return prepare_history(generate_history(2000, seed=3, start=date(2024, 1, 1), days=180))


@pytest.fixture(scope="module")
def trained(history: pd.DataFrame) -> tuple[RiskModel, dict[str, float]]:
    return train_model(history, seed=3, num_boost_round=50, name=MODEL)


@pytest.fixture(scope="module")
def registered(store: Store, trained: tuple[RiskModel, dict[str, float]]) -> str:
    model, metrics = trained
    return registry.log_and_register(
        model,
        tracking_uri=store.uri,
        model_name=MODEL,
        experiment="registry-test",
        artifact_location=store.artifacts,
        params={"num_boost_round": 50, "note": ["lists", "are", "json"]},
        metrics=metrics,
        alias="champion",
    )


def test_training_reports_validation_metrics(trained: tuple[RiskModel, dict[str, float]]) -> None:
    model, metrics = trained
    assert {"auc", "average_precision", "precision_at_5pct", "precision_at_10pct"} <= set(metrics)
    assert metrics["auc"] > 0.6  # a small, noisy validation window
    assert model.feature_names == FEATURE_NAMES
    assert 1 <= model.booster.num_trees() <= 50


def test_training_is_deterministic(history: pd.DataFrame, trained: tuple[RiskModel, dict[str, float]]) -> None:
    again, _ = train_model(history, seed=3, num_boost_round=50)
    assert again.booster.model_to_string() == trained[0].booster.model_to_string()


def test_alias_resolves_to_the_registered_version(store: Store, registered: str) -> None:
    assert registered == "1"
    assert registry.resolve_alias(store.uri, MODEL, "champion") == registered


def test_unknown_model_or_alias_resolves_to_none(store: Store, registered: str) -> None:
    assert registry.resolve_alias(store.uri, MODEL, "challenger") is None
    assert registry.resolve_alias(store.uri, "no-such-model", "champion") is None


def test_loaded_version_predicts_exactly_like_the_trained_model(
    store: Store, registered: str, trained: tuple[RiskModel, dict[str, float]], history: pd.DataFrame
) -> None:
    model = trained[0]
    loaded = registry.load_version(store.uri, MODEL, registered)
    assert loaded.version == registered and loaded.name == MODEL
    assert loaded.metrics == pytest.approx(model.metrics, nan_ok=True)
    rows = history.iloc[:300]
    matrix = build_feature_matrix(columns_from_frame(rows), loaded.feature_state)
    np.testing.assert_array_equal(matrix, build_feature_matrix(columns_from_frame(rows), model.feature_state))
    p = loaded.predict_proba(matrix)
    np.testing.assert_array_equal(p, model.predict_proba(matrix))
    assert ((p >= 0) & (p <= 1)).all()
    np.testing.assert_array_equal(loaded.contributions(matrix[:5]), model.contributions(matrix[:5]))
    assert loaded.contributions(matrix[:5]).shape == (5, len(FEATURE_NAMES) + 1)
    np.testing.assert_array_equal(loaded.predict_proba(matrix[0]), p[:1])  # one row as a vector


def test_a_fresh_process_loads_the_champion_without_global_mlflow_state(
    store: Store, registered: str, trained: tuple[RiskModel, dict[str, float]], history: pd.DataFrame
) -> None:
    """What the server does at start-up: resolve the alias and load, with no mlflow.set_*_uri made."""
    rows = history.iloc[:50]
    matrix = build_feature_matrix(columns_from_frame(rows), trained[0].feature_state)
    np.save(store.data / "matrix.npy", matrix)
    script = (
        "import sys, numpy as np\n"
        "from models import registry\n"
        "uri = sys.argv[1]\n"
        "v = registry.resolve_alias(uri, sys.argv[2], 'champion')\n"
        "m = registry.load_version(uri, sys.argv[2], v)\n"
        "np.save(sys.argv[4], m.predict_proba(np.load(sys.argv[3])))\n"
    )
    out = store.data / "proba.npy"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-c", script, store.uri, MODEL, str(store.data / "matrix.npy"), str(out)],
        cwd=store.cwd,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    np.testing.assert_array_equal(np.load(out), trained[0].predict_proba(matrix))
    assert list(store.cwd.iterdir()) == []


def test_version_carries_its_schema_tag(store: Store, registered: str) -> None:
    from mlflow import MlflowClient

    mv = MlflowClient(tracking_uri=store.uri, registry_uri=store.uri).get_model_version(MODEL, registered)
    assert mv.tags[registry.FEATURE_SCHEMA_TAG] == registry.feature_schema_hash(FEATURE_NAMES)


OTHER_FEATURE_NAMES = [*FEATURE_NAMES[:-1], "some_new_feature"]


def model_on(names: list[str], model_name: str = MODEL) -> RiskModel:
    """A tiny model trained on other features than this code builds."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, len(names)))
    y = (x[:, 0] > 0).astype(float)
    booster = lgb.train(
        {"objective": "binary", "verbosity": -1, "num_threads": 1},
        lgb.Dataset(x, label=y, feature_name=names),
        num_boost_round=3,
    )
    return RiskModel(booster, Calibrator("identity"), trained_state(), names, name=model_name)


def register(store: Store, model: RiskModel, model_name: str = MODEL, alias: str | None = None) -> str:
    return registry.log_and_register(
        model,
        tracking_uri=store.uri,
        model_name=model_name,
        experiment="registry-test",
        artifact_location=store.artifacts,
        params={},
        metrics={},
        alias=alias,
    )


def test_version_with_other_features_is_refused(store: Store, registered: str) -> None:
    version = register(store, model_on(OTHER_FEATURE_NAMES))
    assert version != registered
    assert registry.resolve_alias(store.uri, MODEL, "champion") == registered  # no alias given: unchanged
    with pytest.raises(ModelSchemaError, match="some_new_feature"):
        registry.load_version(store.uri, MODEL, version)
    unchecked = registry.load_version(store.uri, MODEL, version, expected_feature_names=None)
    assert unchecked.feature_names == tuple(OTHER_FEATURE_NAMES)


def trained_state() -> FeatureState:
    return FeatureState({}, {}, None, min_count=20, min_scale=0.05)


def test_set_alias_moves_the_champion(store: Store, registered: str) -> None:
    registry.set_alias(store.uri, MODEL, "challenger", registered)
    assert registry.resolve_alias(store.uri, MODEL, "challenger") == registered


def test_demo_champion_is_created_once(store: Store) -> None:
    from mlflow import MlflowClient

    kwargs = {
        "tracking_uri": store.uri,
        "artifact_location": store.artifacts,
        "model_name": "demo-risk",
        "n_declarations": 1500,
    }
    first = ensure_demo_champion(**kwargs)  # type: ignore[arg-type]
    second = ensure_demo_champion(**kwargs)  # type: ignore[arg-type]
    assert first == second == registry.resolve_alias(store.uri, "demo-risk", "champion")
    client = MlflowClient(tracking_uri=store.uri, registry_uri=store.uri)
    assert len(client.search_model_versions("name='demo-risk'")) == 1
    registry.load_version(store.uri, "demo-risk", first).check_schema(FEATURE_NAMES)


def test_demo_champion_on_an_old_feature_schema_is_replaced(store: Store) -> None:
    """An upgrade adds features: the old champion would be refused, so the demo trains a new one."""
    from mlflow import MlflowClient

    old = register(store, model_on(OTHER_FEATURE_NAMES, "demo-upgraded"), "demo-upgraded", alias="champion")
    assert not registry.has_feature_schema(store.uri, "demo-upgraded", old)
    kwargs = {
        "tracking_uri": store.uri,
        "artifact_location": store.artifacts,
        "model_name": "demo-upgraded",
        "n_declarations": 1500,
    }
    new = ensure_demo_champion(**kwargs)  # type: ignore[arg-type]
    assert new != old
    assert registry.resolve_alias(store.uri, "demo-upgraded", "champion") == new
    assert registry.has_feature_schema(store.uri, "demo-upgraded", new)
    registry.load_version(store.uri, "demo-upgraded", new).check_schema(FEATURE_NAMES)
    assert ensure_demo_champion(**kwargs) == new  # type: ignore[arg-type]  # now current: kept
    client = MlflowClient(tracking_uri=store.uri, registry_uri=store.uri)
    assert len(client.search_model_versions("name='demo-upgraded'")) == 2  # the old version stays registered


def test_a_version_without_a_schema_tag_is_judged_by_its_features(
    store: Store, trained: tuple[RiskModel, dict[str, float]]
) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=store.uri, registry_uri=store.uri)
    current = register(store, trained[0], "untagged")
    old = register(store, model_on(OTHER_FEATURE_NAMES, "untagged"), "untagged")
    for version in (current, old):
        client.delete_model_version_tag("untagged", version, registry.FEATURE_SCHEMA_TAG)
        assert registry.FEATURE_SCHEMA_TAG not in client.get_model_version("untagged", version).tags
    assert registry.has_feature_schema(store.uri, "untagged", current)
    assert not registry.has_feature_schema(store.uri, "untagged", old)
    assert registry.has_feature_schema(store.uri, "untagged", old, OTHER_FEATURE_NAMES)


def test_calibrator_json_round_trip_and_numpy_application() -> None:
    rng = np.random.default_rng(1)
    scores = rng.uniform(0, 1, 2000)
    labels = (rng.uniform(0, 1, 2000) < scores**2).astype(float)
    for method in ("sigmoid", "isotonic"):
        cal = fit_calibrator(scores, labels, method)  # type: ignore[arg-type]
        restored = Calibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
        probe = np.linspace(-0.1, 1.1, 50)
        np.testing.assert_array_equal(restored.apply(probe), cal.apply(probe))
        assert ((cal.apply(probe) >= 0) & (cal.apply(probe) <= 1)).all()
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(scores, labels)
    cal = fit_calibrator(scores, labels, "isotonic")
    np.testing.assert_allclose(cal.apply(scores), iso.predict(scores))
    assert fit_calibrator(scores, np.zeros_like(scores)).method == "identity"


def test_check_schema_names_the_difference(trained: tuple[RiskModel, dict[str, float]]) -> None:
    model = trained[0]
    model.check_schema(FEATURE_NAMES)
    with pytest.raises(ModelSchemaError, match="extra_feature"):
        model.check_schema([*FEATURE_NAMES, "extra_feature"])
    with pytest.raises(ModelSchemaError, match="order differs: True"):
        model.check_schema(list(reversed(FEATURE_NAMES)))
