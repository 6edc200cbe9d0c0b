"""`risk train` / `risk evaluate` end to end: real small LightGBM models into a temporary MLflow store."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv
import pytest
from mlflow import MlflowClient

from features import (
    FEATURE_NAMES,
    EntityOutcomes,
    FeatureState,
    OutcomePrior,
    build_feature_matrix,
    columns_from_frame,
)
from models import registry
from risk_service.cli import main
from tests.histories import shuffled_labels
from training.history import HISTORY_COLUMNS, read_history
from training.run import TrainingRequest, WindowError, run_training, split_windows
from training.synthetic import generate_history
from training.train import inspected_rows, prepare_history

START = date(2026, 1, 1)


def _export(n_declarations: int, folder: Path) -> Path:
    """Synthetic history written in the canonical schema, as an administration's export would be."""
    frame = generate_history(n_declarations, seed=11, start=START, days=120)
    keep = [c.name for c in HISTORY_COLUMNS if c.name in frame.columns]
    path = folder / f"history_{n_declarations}.csv"
    frame[keep].to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def history_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _export(3000, tmp_path_factory.mktemp("history"))


@pytest.fixture(scope="module")
def larger_history_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enough labelled rows that the top 10 % of the judged window holds ~100 rows: a stable comparison."""
    return _export(12000, tmp_path_factory.mktemp("history"))


def test_training_run_is_tracked_and_registered(history_csv: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    request = TrainingRequest(
        (history_csv,), valid_from=date(2026, 3, 1), test_from=date(2026, 4, 1), num_boost_round=80
    )

    result = run_training(request, model_name="risk-test", tracking_uri=uri)

    assert result.version == "1" and result.run_id is not None
    assert result.rows["train"] > 0 and result.rows["valid"] > 0 and result.rows["test"] > 0
    run = MlflowClient(uri).get_run(result.run_id)
    assert run.data.params["valid_from"] == "2026-03-01" and run.data.params["test_from"] == "2026-04-01"
    assert run.data.params["rows_train"] == str(result.rows["train"])
    assert len(run.data.tags["risk.dataset_sha256"]) == 64
    assert run.data.tags["risk.code_version"]
    for name in ("valid_auc", "valid_precision_at_5pct", "valid_recall_at_10pct", "test_precision_at_1pct"):
        assert name in run.data.metrics
    assert run.data.metrics["valid_auc"] > 0.6  # the planted patterns are learnable
    logged = {a.path for a in MlflowClient(uri).list_artifacts(result.run_id, "evaluation")}
    for plot in ("precision_recall.png", "gain_curve.png", "calibration.png", "feature_importance.png"):
        assert f"evaluation/{plot}" in logged
    assert "evaluation/shap_summary.png" in logged and "evaluation/features.json" in logged
    version_tags = MlflowClient(uri).get_model_version("risk-test", "1").tags
    assert version_tags["risk.dataset_sha256"] == run.data.tags["risk.dataset_sha256"]
    assert registry.resolve_alias(uri, "risk-test", "champion") is None  # training never moves an alias
    loaded = registry.load_version(uri, "risk-test", "1")
    assert loaded.feature_names == FEATURE_NAMES

    # The IsolationForest signal: evaluated like the model, logged next to it, loadable for analysts.
    assert result.anomaly is not None and "valid_anomaly_auc" in run.data.metrics
    import mlflow.sklearn

    from training.anomaly import anomaly_scores

    mlflow.set_tracking_uri(uri)
    forest = mlflow.sklearn.load_model(f"runs:/{result.run_id}/anomaly")
    rows = inspected_rows(prepare_history(read_history(history_csv)))
    scores = anomaly_scores(forest, build_feature_matrix(columns_from_frame(rows), loaded.feature_state))
    assert scores.shape == (len(rows),) and np.isfinite(scores).all()


def test_split_dates_out_of_order_or_empty_windows_are_refused(history_csv: Path) -> None:
    labelled = inspected_rows(prepare_history(read_history(history_csv)))
    with pytest.raises(WindowError, match="--test-from 2026-02-01 must come after --valid-from 2026-03-01"):
        split_windows(labelled, TrainingRequest((history_csv,), date(2026, 3, 1), test_from=date(2026, 2, 1)))
    with pytest.raises(WindowError, match="no labelled rows before --valid-from 2025-06-01"):
        split_windows(labelled, TrainingRequest((history_csv,), date(2025, 6, 1)))
    with pytest.raises(WindowError, match="no labelled rows in the validation window"):
        split_windows(labelled, TrainingRequest((history_csv,), date(2027, 1, 1)))


def test_point_in_time_features_do_not_see_later_rows(history_csv: Path) -> None:
    """A row's features are the same whether or not anything after its day is in the file: no leakage."""
    full = prepare_history(read_history(history_csv))
    cut = pd.Timestamp("2026-02-15", tz="UTC")
    early = full[full["lodgement_time"] < cut]
    alone = prepare_history(early)  # recomputed from the early rows alone
    assert len(alone) == len(early) > 0
    assert (early["importer_prior_findings"] > 0).any()
    state = FeatureState({}, {}, None, min_count=20, min_scale=0.05).with_outcomes(
        EntityOutcomes(OutcomePrior(0.05), None, {})
    )
    np.testing.assert_array_equal(
        build_feature_matrix(columns_from_frame(early), state), build_feature_matrix(columns_from_frame(alone), state)
    )


def test_served_entity_outcomes_are_every_outcome_up_to_until_and_the_prior_the_training_window(
    history_csv: Path,
) -> None:
    history = read_history(history_csv)
    request = TrainingRequest((history_csv,), date(2026, 3, 15), until=date(2026, 4, 20))
    result = run_training(request, model_name="m")
    outcomes = result.model.feature_state.outcomes
    assert outcomes is not None
    times = history["lodgement_time"]
    known = history[times < pd.Timestamp("2026-04-20", tz="UTC")]
    assert outcomes == EntityOutcomes.from_frame(known[known["inspected"].astype(bool)], outcomes.prior)
    assert outcomes.prior == OutcomePrior.fit(history[(times < pd.Timestamp("2026-03-15", tz="UTC"))
                                                      & history["inspected"].astype(bool)])  # fmt: skip


def test_cli_trains_and_evaluates_then_refuses_bad_history(
    history_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RISK_DATA_DIR", str(tmp_path / "data"))
    assert main(["train", str(history_csv), "--valid-from", "2026-03-15", "--model-name", "cli-model"]) == 0
    out = capsys.readouterr().out
    assert "registered cli-model version 1" in out and "validation:" in out and "5%" in out

    code = main(["evaluate", "cli-model/1", str(history_csv), "--from", "2026-03-15"])
    out = capsys.readouterr().out
    assert code == 0 and "cli-model version 1:" in out and "logged evaluation run" in out

    text = history_csv.read_text(encoding="utf-8").splitlines()
    header = text[0].split(",")
    row = text[5].split(",")
    row[header.index("customs_value")] = "lots"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([text[0], *text[1:5], ",".join(row), *text[6:]]) + "\n", encoding="utf-8")
    assert main(["train", str(bad), "--valid-from", "2026-03-15", "--model-name", "cli-model"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:6: column 'customs_value': 'lots' is not a number" in err
    assert "nothing was done" in err
    uri = f"sqlite:///{(tmp_path / 'data' / 'mlflow.db').resolve()}"
    assert [v.version for v in MlflowClient(uri).search_model_versions("name='cli-model'")] in ([1], ["1"])

    assert main(["evaluate", "cli-model@champion", str(history_csv)]) == 2
    assert "has no version with alias 'champion'" in capsys.readouterr().err


def test_promotion_gate_rejects_a_worse_challenger_and_rollback_restores(
    larger_history_csv: Path, tmp_path: Path
) -> None:
    from training.promotion import PromotionRefused, promote, rollback
    from training.run import EvaluationWindow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    name = "gate"

    def train(path: Path, rounds: int, **params: object) -> str:
        request = TrainingRequest((path,), date(2026, 3, 1), num_boost_round=rounds, params=params)
        version = run_training(request, model_name=name, tracking_uri=uri).version
        assert version is not None
        return version

    weak = train(larger_history_csv, 1, num_leaves=2)
    strong = train(larger_history_csv, 120)
    noise = train(shuffled_labels(larger_history_csv, tmp_path / "shuffled.csv"), 120)
    window = EvaluationWindow((larger_history_csv,), start=date(2026, 3, 1))

    first = promote(tracking_uri=uri, model_name=name, candidate=weak, window=window, rate=0.10, margin=0.01)
    assert first.promoted and first.champion is None and "no champion yet" in first.reason
    better = promote(tracking_uri=uri, model_name=name, candidate=strong, window=window, rate=0.10, margin=0.01)
    assert better.promoted, better.reason
    assert better.champion == weak and better.champion_evaluation is not None
    worse = promote(tracking_uri=uri, model_name=name, candidate=noise, window=window, rate=0.10, margin=0.01)
    assert not worse.promoted and "does not beat champion" in worse.reason
    assert registry.resolve_alias(uri, name, "champion") == strong  # the refusal moved nothing

    client = MlflowClient(uri)
    refused = client.get_run(worse.run_id or "")
    assert refused.data.tags["risk.decision"] == "refused" and refused.data.tags["risk.reason"] == worse.reason
    assert refused.data.metrics["candidate_precision_at_10pct"] < refused.data.metrics["champion_precision_at_10pct"]

    assert rollback(tracking_uri=uri, model_name=name) == (strong, weak)
    assert registry.resolve_alias(uri, name, "champion") == weak
    with pytest.raises(PromotionRefused, match="no earlier champion"):
        rollback(tracking_uri=uri, model_name=name)
    with pytest.raises(PromotionRefused, match="already is the champion"):
        promote(tracking_uri=uri, model_name=name, candidate=weak, window=window, rate=0.10, margin=0.01)

    # Promote again after the rollback, at a rate outside the usual four, then roll back once more.
    again = promote(tracking_uri=uri, model_name=name, candidate=strong, window=window, rate=0.03, margin=0.0)
    assert again.promoted and again.candidate_evaluation.overall.at(0.03).n_selected > 0
    assert rollback(tracking_uri=uri, model_name=name) == (strong, weak)

    # The judging window must not overlap the candidate's training rows, and must be given.
    early = EvaluationWindow((larger_history_csv,), start=date(2026, 2, 1))
    with pytest.raises(PromotionRefused, match=r"inside candidate v.*'s training window"):
        promote(tracking_uri=uri, model_name=name, candidate=strong, window=early, rate=0.10, margin=0.0)
    with pytest.raises(PromotionRefused, match="--from"):
        promote(
            tracking_uri=uri,
            model_name=name,
            candidate=strong,
            window=EvaluationWindow((larger_history_csv,)),
            rate=0.10,
            margin=0.0,
        )


def test_a_champion_set_by_alias_alone_is_recorded_so_rollback_finds_it(
    larger_history_csv: Path, tmp_path: Path
) -> None:
    from training.promotion import promote, rollback
    from training.run import EvaluationWindow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    def train(rounds: int, **params: object) -> str:
        request = TrainingRequest((larger_history_csv,), date(2026, 3, 1), num_boost_round=rounds, params=params)
        version = run_training(request, model_name="m", tracking_uri=uri).version
        assert version is not None
        return version

    weak, strong = train(1, num_leaves=2), train(120)
    registry.set_alias(uri, "m", "champion", weak)  # as the demo champion is set: no promotion recorded it
    window = EvaluationWindow((larger_history_csv,), start=date(2026, 3, 1))

    decision = promote(tracking_uri=uri, model_name="m", candidate=strong, window=window, rate=0.10, margin=0.01)

    assert decision.promoted, decision.reason
    assert registry.champion_history(uri, "m") == [weak, strong]
    assert rollback(tracking_uri=uri, model_name="m") == (strong, weak)


def test_tuning_searches_settings_on_the_validation_window_only(history_csv: Path) -> None:
    from training.run import SEARCH_SPACE

    request = TrainingRequest((history_csv,), date(2026, 3, 1), num_boost_round=40, tune_trials=3, seed=2)
    stages: list[tuple[str, int, int]] = []

    result = run_training(request, model_name="tuned", progress=lambda *a: stages.append(a))

    assert ("tuning on validation", 3, 3) in stages
    assert any(stage == "boosting rounds" for stage, _, _ in stages)
    chosen = {k: result.params[k] for k in SEARCH_SPACE}
    assert all(value in SEARCH_SPACE[k] for k, value in chosen.items())
    assert result.params["tune_trials"] == 3

    # The test window never steers: with one after the same validation window, the search chooses
    # the same settings and the validation figures are the same as when those rows are cut off.
    with_test = TrainingRequest(
        (history_csv,), date(2026, 3, 1), test_from=date(2026, 4, 1), num_boost_round=40, tune_trials=3, seed=2
    )
    without = TrainingRequest(
        (history_csv,), date(2026, 3, 1), until=date(2026, 4, 1), num_boost_round=40, tune_trials=3, seed=2
    )
    a, b = run_training(with_test, model_name="t"), run_training(without, model_name="t")
    assert a.rows["test"] > 0 and b.rows["test"] == 0
    assert {k: a.params[k] for k in SEARCH_SPACE} == {k: b.params[k] for k in SEARCH_SPACE}
    assert a.validation.metrics() == b.validation.metrics()


def test_a_model_with_other_features_is_refused_at_promotion(history_csv: Path, tmp_path: Path) -> None:
    import lightgbm as lgb

    from models import RiskModel
    from models.calibration import fit_calibrator
    from training.promotion import PromotionRefused, promote
    from training.run import EvaluationWindow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(200, 2)), rng.integers(0, 2, 200).astype(float)
    names = ("something_else", "another_feature")
    booster = lgb.train(
        {"objective": "binary", "verbose": -1}, lgb.Dataset(x, y, feature_name=list(names)), num_boost_round=3
    )
    calibrator = fit_calibrator(booster.predict(x), y, "sigmoid")
    state = FeatureState({}, {}, None, min_count=20, min_scale=0.05)
    alien = RiskModel(booster, calibrator, state, names, name="alien")
    version = registry.log_and_register(
        alien, tracking_uri=uri, model_name="alien", experiment="t", artifact_location=None, params={}, metrics={}
    )
    window = EvaluationWindow((history_csv,), start=date(2026, 3, 1))
    with pytest.raises(PromotionRefused, match="does not fit this service"):
        promote(tracking_uri=uri, model_name="alien", candidate=version, window=window, rate=0.05, margin=0.0)
    assert registry.resolve_alias(uri, "alien", "champion") is None


def test_cli_promote_exit_codes(
    history_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RISK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RISK_MODEL__NAME", "cli-gate")
    assert main(["train", str(history_csv), "--valid-from", "2026-03-15"]) == 0
    assert main(["promote", "1", str(history_csv), "--from", "2026-03-15"]) == 0
    assert "promoted: no champion yet" in capsys.readouterr().out
    assert main(["promote", "1", str(history_csv), "--from", "2026-03-15"]) == 2
    assert "already is the champion" in capsys.readouterr().err
    assert main(["promote", "7", str(history_csv), "--from", "2026-03-15"]) == 2
    assert "version 7 is not registered" in capsys.readouterr().err
    assert main(["promote", "1", str(history_csv), "--from", "2026-03-15", "--rate", "7"]) == 2
    assert "--rate must be in (0, 1]" in capsys.readouterr().err
    assert main(["rollback"]) == 2
    assert "no earlier champion recorded" in capsys.readouterr().err


def test_cli_rules_backtest_reports_channels_and_precision(
    history_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    rules = Path(__file__).parents[2] / "risk_service" / "domain" / "rules" / "default_rules.yaml"
    monkeypatch.setenv("RISK_DATA_DIR", str(tmp_path / "data"))
    assert main(["rules", "backtest", str(rules), str(history_csv), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    declarations = pd.read_csv(history_csv)["declaration_id"].nunique()
    assert sum(c["declarations"] for c in report["channels"]) == report["declarations"] == declarations
    assert any(r["labelled"] > 0 for r in report["rules"])

    assert main(["rules", "backtest", str(rules), str(tmp_path / "absent.csv")]) == 2
    assert "absent.csv: no such file" in capsys.readouterr().err
