"""The container-targeting model through the same pipeline as declarations: generate, train, evaluate,
promote, roll back, under its own registered name, from the CLI into a temporary MLflow store."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from mlflow import MlflowClient

from features.cargo import CONTAINER_FEATURE_NAMES
from models import registry
from models.risk_model import ModelSchemaError
from risk_service.cli import main
from risk_service.permit_feed import read_feed
from tests.histories import shuffled_labels
from training.cargo_history import CARGO_SCHEMA
from training.history import read_history
from training.run import TrainingRequest, run_training

CONTAINER_MODEL = "container-risk"  # settings.cargo.model_name's default


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("generated")
    out = folder / "history.csv"
    args = ["data", "generate", str(out), "--declarations", "2000", "--reports", "4000"]
    assert main([*args, "--start", "2026-01-01", "--days", "150", "--seed", "5"]) == 0
    return {"declarations": out, "cargo": folder / "history-cargo.csv", "permits": folder / "history-permits.jsonl"}


def test_generate_writes_declarations_cargo_reports_and_permits(generated: dict[str, Path]) -> None:
    cargo = read_history(generated["cargo"], schema=CARGO_SCHEMA)
    assert cargo["report_id"].nunique() == 4000
    assert 0.01 <= cargo["finding"].mean() <= 0.05  # a realistic finding rate over all containers
    assert cargo.loc[cargo["random_control"], "inspected"].all()
    entries = list(read_feed(generated["permits"]))
    assert entries and not any(e.error for e in entries)
    holders = {e.permit.holder_id for e in entries if e.permit is not None}
    declarations = read_history(generated["declarations"])
    citing = set(declarations.loc[declarations["permit_count"] > 0, "importer_id"])
    assert holders & citing  # the permits belong to the traders whose filings cite them


def test_cli_trains_a_container_model_under_its_own_name_and_gates_its_promotion(
    generated: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RISK_DATA_DIR", str(tmp_path / "data"))
    cargo = str(generated["cargo"])
    train = ["train", cargo, "--kind", "container", "--valid-from", "2026-04-01", "--test-from", "2026-05-01"]
    assert main(train) == 0
    out = capsys.readouterr().out
    assert f"registered {CONTAINER_MODEL} version 1" in out and "validation:" in out
    uri = f"sqlite:///{(tmp_path / 'data' / 'mlflow.db').resolve()}"
    client = MlflowClient(uri)
    version = client.get_model_version(CONTAINER_MODEL, "1")
    run = client.get_run(version.run_id)
    assert run.data.tags["risk.model_kind"] == "container" and run.data.params["kind"] == "container"
    assert run.data.metrics["valid_auc"] > 0.7  # the planted cargo patterns are learnable
    model = registry.load_version(uri, CONTAINER_MODEL, "1", expected_feature_names=CONTAINER_FEATURE_NAMES)
    assert model.kind.name == "container" and model.feature_names == CONTAINER_FEATURE_NAMES
    with pytest.raises(ModelSchemaError):  # it can never be served as a declaration model
        registry.load_version(uri, CONTAINER_MODEL, "1")

    assert main(["evaluate", f"{CONTAINER_MODEL}/1", cargo, "--from", "2026-05-01", "--no-log"]) == 0
    assert f"{CONTAINER_MODEL} version 1:" in capsys.readouterr().out
    assert main(["evaluate", "@champion", cargo, "--kind", "container"]) == 2
    assert f"{CONTAINER_MODEL} has no version with alias 'champion'" in capsys.readouterr().err

    promote = ["promote", "1", cargo, "--kind", "container", "--from", "2026-05-01", "--rate", "0.1"]
    assert main(promote) == 0
    assert registry.resolve_alias(uri, CONTAINER_MODEL, "champion") == "1"
    assert registry.resolve_alias(uri, "declaration-risk", "champion") is None  # the other kind is untouched

    # A challenger that learned noise is refused on the same window; rollback re-points the alias.
    noise = shuffled_labels(generated["cargo"], tmp_path / "shuffled-cargo.csv")
    request = TrainingRequest((noise,), date(2026, 4, 1), kind="container", num_boost_round=80)
    worse = run_training(request, model_name=CONTAINER_MODEL, tracking_uri=uri).version
    assert worse == "2"
    refused = ["promote", "2", cargo, "--kind", "container", "--from", "2026-05-01", "--rate", "0.1"]
    assert main(refused) == 1
    assert "does not beat champion" in capsys.readouterr().out
    assert registry.resolve_alias(uri, CONTAINER_MODEL, "champion") == "1"

    # Judged as a declaration model (the default kind), a container model is refused before any scoring.
    declarations = str(generated["declarations"])
    wrong = ["promote", "1", declarations, "--model-name", CONTAINER_MODEL, "--from", "2026-05-01"]
    assert main(wrong) == 2
    assert "is a container model; judge it with --kind container" in capsys.readouterr().err


def test_a_cargo_history_with_a_bad_row_is_refused_before_training(
    generated: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RISK_DATA_DIR", str(tmp_path / "data"))
    lines = generated["cargo"].read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    row = lines[7].split(",")
    row[header.index("container_number")] = "ABCD1234"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([*lines[:7], ",".join(row), *lines[8:]]) + "\n", encoding="utf-8")
    assert main(["train", str(bad), "--kind", "container", "--valid-from", "2026-04-01"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:8: column 'container_number'" in err and "nothing was done" in err
