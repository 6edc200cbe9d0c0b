"""Synthetic history: seeded, realistic finding rates, planted patterns, label bias."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features import ENTITY_COLUMNS, RAW_COLUMNS, add_entity_history, build_feature_matrix, columns_from_frame
from training.synthetic import generate_history

START = date(2024, 1, 1)


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return generate_history(3000, seed=11, start=START, days=120)


def test_same_seed_gives_the_same_frame(history: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(history, generate_history(3000, seed=11, start=START, days=120))
    other = generate_history(3000, seed=12, start=START, days=120)
    assert not other["customs_value"].equals(history["customs_value"])


def test_frame_has_the_raw_columns_and_the_filing_columns(history: pd.DataFrame) -> None:
    expected = (set(RAW_COLUMNS) - set(ENTITY_COLUMNS)) | {
        "declaration_id",
        "item_number",
        "lodgement_time",
        "importer_id",
        "declarant_id",
        "exporter_id",
        "customs_office",
        "description",
        "inspected",
        "finding",
        "random_control",
    }
    assert expected <= set(history.columns)
    assert history["declaration_id"].nunique() == 3000
    assert str(history["lodgement_time"].dt.tz) == "UTC"
    assert history["lodgement_time"].is_monotonic_increasing
    assert history["hs_code"].str.fullmatch(r"\d{8}|\d{10}").all()
    items = history.groupby("declaration_id")["item_number"]
    assert (items.max() == items.count()).all()
    assert not set(ENTITY_COLUMNS) & set(history.columns)  # computed by training, never carried by a file
    m = build_feature_matrix(columns_from_frame(add_entity_history(history)), None)
    assert not np.isinf(m).any()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_finding_rate_is_realistic(seed: int) -> None:
    df = generate_history(4000, seed=seed, start=START, days=200)
    assert 0.01 <= df["finding"].mean() <= 0.05
    assert 0.05 <= df["inspected"].mean() <= 0.25
    per_declaration = df.drop_duplicates("declaration_id")
    assert 0.01 <= per_declaration["random_control"].mean() <= 0.035


def test_findings_only_come_from_inspections(history: pd.DataFrame) -> None:
    assert (history.loc[history["finding"] == 1, "inspected"]).all()
    assert history.loc[history["random_control"], "inspected"].all()
    inspected = history[history["inspected"]]
    control = history[history["random_control"]]
    # officers target risk: targeted inspections find more than the random stream
    assert inspected["finding"].mean() > control["finding"].mean()


def test_permit_facts_are_given_only_for_items_citing_a_permit(history: pd.DataFrame) -> None:
    cites = history["permit_count"] > 0
    facts = history[["permit_balance_used", "permit_days_to_expiry"]]
    assert facts[~cites].isna().all().all()
    citing = facts[cites]
    # most cited permits have an end of validity; fewer limit quantity (certificates seldom do)
    assert 0.8 <= citing["permit_days_to_expiry"].notna().mean() < 1.0
    assert 0.3 <= citing["permit_balance_used"].notna().mean() <= 0.8
    used = citing["permit_balance_used"].dropna()
    assert (used >= 0).all() and used.max() < 1.5
    days = citing["permit_days_to_expiry"].dropna()
    assert days.between(-60, 730).all()
    assert (days > 0).mean() > 0.95  # honest filings cite permits that are still valid


@pytest.fixture(scope="module")
def large_history() -> pd.DataFrame:
    return generate_history(20000, seed=7, start=START, days=365)


def test_permit_abuse_raises_the_finding_rate(large_history: pd.DataFrame) -> None:
    df = large_history
    cites = df["permit_count"] > 0
    # drawn close to or past the authorised quantity, or cited about to expire or after expiry
    strained = cites & ((df["permit_balance_used"] >= 0.85) | (df["permit_days_to_expiry"] < 7))
    others = cites & ~strained
    assert strained.sum() >= 100
    assert df.loc[strained, "finding"].mean() > 5 * df.loc[others, "finding"].mean()
    assert df.loc[strained, "finding"].mean() > 3 * df["finding"].mean()
    # officers target suspicious filings (the label bias), so these are inspected more often too
    assert df.loc[strained, "inspected"].mean() > df.loc[others, "inspected"].mean()
    assert (df["permit_days_to_expiry"] < 0).sum() > 0  # some cite a permit after it expired


def test_complicit_brokers_raise_the_finding_rate_of_their_filings(large_history: pd.DataFrame) -> None:
    inspected = large_history[large_history["inspected"].astype(bool)]
    by_broker = inspected.groupby("declarant_id")["finding"].mean()
    overall = inspected["finding"].mean()
    # a few brokers stand out well above the rest: the signal the declarant finding rate can learn
    assert 1 <= (by_broker > 2 * overall).sum() <= 30


def test_risk_data_generate_writes_history_that_reads_back_with_drift_and_label_bias(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from risk_service.cli import main
    from training.history import read_history

    monkeypatch.setenv("RISK_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "history.parquet"
    assert main(["data", "generate", str(out), "--declarations", "20000", "--seed", "3", "--days", "365"]) == 0
    assert "wrote" in capsys.readouterr().out
    history = read_history(out)

    assert 0.01 <= history["finding"].mean() <= 0.05  # a realistic finding rate over all items
    assert not history.loc[~history["inspected"], "finding"].any()  # labels only where inspected
    assert 0.005 < history.groupby("declaration_id")["random_control"].first().mean() < 0.04
    recovered = history["revenue_recovered"]
    assert recovered[history["finding"]].ge(0).all() and recovered[history["finding"]].gt(0).mean() > 0.9
    assert recovered[~history["inspected"]].isna().all()
    late = history["lodgement_time"] >= pd.Timestamp("2025-07-02", tz="UTC")  # the window's second half
    # Drift: the late half finds more than the same world without drift does (which also rises a little,
    # as shell importers accumulate).
    still = generate_history(20000, seed=3, start=date(2025, 1, 1), days=365)
    still_late = still["lodgement_time"] >= pd.Timestamp("2025-07-02", tz="UTC")
    assert history.loc[late, "finding"].mean() > 1.1 * still.loc[still_late, "finding"].mean()
    assert (history.loc[late, "export_country"] == "KH").any() and not (
        history.loc[~late, "export_country"] == "KH"
    ).any()

    assert main(["data", "generate", str(tmp_path / "history.xlsx")]) == 2
