"""The `risk` command as a newcomer runs it: serve with a demo model, score the sample, check rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RISK = str(Path(sys.executable).parent / "risk")
SAMPLE = ROOT / "tests" / "data" / "declaration_sample.json"


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RISK, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False)


@contextmanager
def running_server(data_dir: Path, *serve_args: str) -> Iterator[str]:
    """`risk serve` as a user starts it, on a free port; yields its address, and checks it stops cleanly."""
    env = {**os.environ, "RISK_DATA_DIR": str(data_dir), "RISK_SERVER__PORT": "0"}
    proc = subprocess.Popen([RISK, "serve", *serve_args], env=env, stdout=subprocess.PIPE, text=True, cwd=data_dir)
    assert proc.stdout is not None
    address = None
    for line in proc.stdout:
        if line.startswith("risk service ready on "):
            address = line.split(" on ", 1)[1].strip()
            break
    try:
        assert address, f"server exited with {proc.poll()}"
        yield address
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0, "the server stops cleanly on SIGTERM"


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("risk-data")
    with running_server(data_dir, "--demo") as address:
        yield address
    assert not (data_dir / "mlruns").exists(), "MLflow writes under the data folder only"
    assert (data_dir / "risk.db").exists() and (data_dir / "mlflow.db").exists()


def test_a_pre_loading_cargo_report_gets_do_not_load_with_its_reasons(demo_server: str) -> None:
    """The README's cargo example, as shown there."""
    result = run("score", str(ROOT / "tests" / "data" / "cargo_report_do_not_load.json"), "--address", demo_server)
    assert result.returncode == 0, result.stderr
    assessment = json.loads(result.stdout)["assessment"]
    assert assessment["preLoadingOutcome"] == "PRE_LOADING_OUTCOME_DO_NOT_LOAD"
    reasons = {h["ruleId"]: h["message"] for h in assessment["ruleHits"]}
    assert "NL000000000003" in reasons["CARGO-WATCHLIST-CONSIGNEE"]
    assert "CARGO-LATE-FILING" in reasons
    second = {c["containerNumber"]: c for c in assessment["containers"]}["TGHU9876542"]
    assert {"CARGO-SEAL-MISSING", "CARGO-MASS-GAP", "CARGO-DESC-VAGUE"} <= {h["ruleId"] for h in second["ruleHits"]}
    # the demo container model scored it too, and says why (README: seal and description lead)
    assert assessment["modelStatus"] == "MODEL_STATUS_SCORED" and assessment["modelName"] == "container-risk"
    first = {c["containerNumber"]: c for c in assessment["containers"]}["CSQU3054383"]
    assert second["modelScore"] > first["modelScore"]
    leading = [c["feature"] for c in second["contributions"][:2]]
    assert {"seal_count", "vague_description_share"} <= set(leading)


def test_a_declaration_disagreeing_with_its_manifest_is_flagged_with_both_figures(demo_server: str) -> None:
    """The README's cross-check example, as shown there."""
    data = ROOT / "tests" / "data"
    manifest = run("score", str(data / "cargo_report_manifest.json"), "--address", demo_server)
    assert manifest.returncode == 0, manifest.stderr
    result = run("score", str(data / "declaration_mass_mismatch.json"), "--address", demo_server)
    assert result.returncode == 0, result.stderr
    assessment = json.loads(result.stdout)["assessment"]
    reasons = {h["ruleId"]: h["message"] for h in assessment["ruleHits"]}
    assert "1,450 kg declared, 2,400 kg on the cargo report" in reasons["CONSISTENCY_GROSS_MASS"]
    assert assessment["channel"] in {"CHANNEL_YELLOW", "CHANNEL_RED"}


def test_the_sample_declaration_scores_through_the_cli(demo_server: str) -> None:
    result = run("score", str(SAMPLE), "--address", demo_server)
    assert result.returncode == 0, result.stderr
    assessment = json.loads(result.stdout)["assessment"]
    assert assessment["declarationId"] == "DEMO-2026-000001"
    assert assessment["channel"] in {"CHANNEL_RED", "CHANNEL_YELLOW", "CHANNEL_BLUE", "CHANNEL_GREEN"}
    assert assessment["modelStatus"] == "MODEL_STATUS_SCORED"
    assert assessment["modelVersion"] == "1"
    assert assessment["ruleHits"]


def test_an_invalid_file_gets_the_field_paths(demo_server: str, tmp_path: Path) -> None:
    bad = json.loads(SAMPLE.read_text())
    bad["items"][0]["hsCode"] = "12"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    result = run("score", str(path), "--address", demo_server)
    assert result.returncode == 1
    assert "INVALID_ARGUMENT" in result.stderr and "declaration.items[0].hs_code" in result.stderr


def test_broken_json_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "declarationId": "X",\n  oops\n}\n')
    result = run("score", str(path), "--address", "127.0.0.1:1")
    assert result.returncode != 0
    assert f"{path}:3:" in result.stderr


def test_rules_check_reports_file_line_and_rule(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        'version: "t1"\nrules:\n  - id: BAD-1\n    description: "x"\n'
        '    condition: "item.no_such_field > 1"\n    weight: 0.1\n'
    )
    result = run("rules", "check", str(path))
    assert result.returncode == 1
    assert "rules.yaml:" in result.stderr and "BAD-1" in result.stderr


def test_the_default_rule_set_checks_clean() -> None:
    from risk_service.domain.rules import DEFAULT_RULES_PATH

    result = run("rules", "check", str(DEFAULT_RULES_PATH))
    assert result.returncode == 0, result.stderr


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys, risk_service.cli as c; c._parser().format_help(); "
        "print(sorted(m for m in ('mlflow', 'lightgbm', 'grpc', 'sqlalchemy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_invalid_settings_are_named(tmp_path: Path) -> None:
    result = run("db", "upgrade", env={**os.environ, "RISK_POLICY__RED_THRESHOLD": "2"})
    assert result.returncode == 2 and "red_threshold" in result.stderr


def test_the_readme_permit_example_flags_the_declaration_that_overdraws(demo_server: str) -> None:
    """The README's single-window walk-through, command by command, with the outcomes it shows."""
    data = ROOT / "tests" / "data"
    feed = run("permits", "import", str(data / "permits" / "beef_permits.csv"), "--address", demo_server)
    assert feed.returncode == 0, feed.stderr
    assert feed.stdout.strip().endswith("2 created, 0 amended, 0 unchanged, 0 skipped")

    first = run("score", str(data / "declaration_beef_first.json"), "--address", demo_server)
    assert first.returncode == 0, first.stderr
    released = json.loads(first.stdout)["assessment"]
    assert released["channel"] == "CHANNEL_GREEN"
    assert not [h for h in released.get("ruleHits", []) if h["ruleId"].startswith("PERMIT_")]

    second = run("score", str(data / "declaration_beef_second.json"), "--address", demo_server)
    assert second.returncode == 0, second.stderr
    flagged = json.loads(second.stdout)["assessment"]
    assert flagged["channel"] == "CHANNEL_RED"
    (hit,) = [h for h in flagged["ruleHits"] if h["ruleId"] == "PERMIT_BALANCE_EXCEEDED"]
    assert hit["message"] == "Permit QC-2026-0815 line 1: 8 TNE requested, 5 TNE remain of 20 TNE (item 1)"

    report = run("permits", "report", "--agency", "NFQS", "--format", "csv", "--address", demo_server)
    assert report.returncode == 0, report.stderr
    header, row = report.stdout.strip().splitlines()
    line = dict(zip(header.split(","), row.split(","), strict=True))
    assert (line["permit_id"], line["authorised"], line["drawn"], line["remaining"]) == (
        "QC-2026-0815",
        "20",
        "15",
        "5",
    )
    assert line["declarations"] == "BEEF-2026-000101/v1"


def test_controlled_goods_tables_are_checked_with_file_and_line(tmp_path: Path) -> None:
    shipped = ROOT / "risk_service" / "domain" / "permits" / "default_controlled_goods.yaml"
    ok = run("permits", "check-table", str(shipped))
    assert ok.returncode == 0 and "is valid" in ok.stdout, ok.stderr
    bad = tmp_path / "table.yaml"
    bad.write_text('version: "1"\nentries:\n  - hs_prefix: "0x"\n    permit_type: NOPE\n    agency: NFQS\n')
    result = run("permits", "check-table", str(bad))
    assert result.returncode == 1
    assert f"{bad}:3: hs_prefix '0x' must be a string of 2 to 10 digits" in result.stderr
    assert f"{bad}:4: unknown permit_type 'NOPE'" in result.stderr
    assert "Traceback" not in result.stderr
