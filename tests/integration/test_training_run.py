"""`risk train` / `risk evaluate` end to end: real small LightGBM models into a temporary MLflow store."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv
import pytest
from mlflow import MlflowClient

from features import FEATURE_NAMES, build_feature_matrix, columns_from_frame
from models import registry
from risk_service.cli import main
from training.history import HISTORY_COLUMNS, read_history
from training.run import TrainingRequest, WindowError, run_training, split_windows
from training.synthetic import generate_history
from training.train import inspected_rows, prepare_history

START = date(2026, 1, 1)


@pytest.fixture(scope="module")
def history_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic history written in the canonical schema, as an administration's export would be."""
    frame = generate_history(3000, seed=11, start=START, days=120)
    keep = [c.name for c in HISTORY_COLUMNS if c.name in frame.columns]
    path = tmp_path_factory.mktemp("history") / "history.csv"
    frame[keep].to_csv(path, index=False)
    return path


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
    alone = prepare_history(early.drop(columns=["importer_prior_filings", "importer_days_known"]))
    assert len(alone) == len(early) > 0
    np.testing.assert_array_equal(
        build_feature_matrix(columns_from_frame(early), None), build_feature_matrix(columns_from_frame(alone), None)
    )


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
    assert "nothing was trained" in err
    uri = f"sqlite:///{(tmp_path / 'data' / 'mlflow.db').resolve()}"
    assert [v.version for v in MlflowClient(uri).search_model_versions("name='cli-model'")] in ([1], ["1"])

    assert main(["evaluate", "cli-model@champion", str(history_csv)]) == 2
    assert "has no version with alias 'champion'" in capsys.readouterr().err
