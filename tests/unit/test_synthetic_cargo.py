"""Synthetic cargo history: seeded, schema-true, valid codes, realistic rates, planted patterns, label bias."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from stdnum import imo, iso6346

from training.cargo_history import CARGO_HISTORY_COLUMNS, CARGO_SCHEMA
from training.history import read_history, write_history
from training.synthetic import ANTI_DUMPING_CHAPTERS
from training.synthetic_cargo import (
    CONCEALMENT_HUBS,
    DRIFT_HUB,
    HOME_PORTS,
    SIZE_TYPES,
    VAGUE_DESCRIPTIONS,
    generate_cargo_history,
)

START = date(2024, 1, 1)
LOCODE = r"[A-Z]{2}[A-Z2-9]{3}"


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return generate_cargo_history(2000, seed=11, start=START, days=180)


@pytest.fixture(scope="module")
def large_history() -> pd.DataFrame:
    return generate_cargo_history(8000, seed=5, start=START, days=365)


def lists(column: pd.Series) -> pd.Series:
    return column.str.split(";").map(lambda parts: [p for p in parts if p])


def test_same_seed_gives_the_same_frame(history: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(history, generate_cargo_history(2000, seed=11, start=START, days=180))
    other = generate_cargo_history(2000, seed=12, start=START, days=180)
    assert not other["container_number"].equals(history["container_number"])
    assert not np.array_equal(other["gross_mass_kg"].to_numpy()[:100], history["gross_mass_kg"].to_numpy()[:100])


def test_frame_has_exactly_the_canonical_columns_in_filing_order(history: pd.DataFrame) -> None:
    assert list(history.columns) == [c.name for c in CARGO_HISTORY_COLUMNS]
    assert str(history["filing_time"].dt.tz) == "UTC"
    assert history["filing_time"].is_monotonic_increasing
    assert history["report_id"].nunique() == 2000
    # a report's containers are consecutive rows and share its report-level columns
    runs = (history["report_id"] != history["report_id"].shift()).sum()
    assert runs == 2000
    shared = ["report_version", "filing_type", "filing_time", "consignee_id", "port_of_loading", "transshipment_ports"]
    assert (history.groupby("report_id")[shared].nunique() == 1).all().all()
    assert (history["planned_loading_time"] < history["planned_arrival_time"]).all()
    assert history["filing_time"].iloc[-1] < pd.Timestamp("2024-06-29", tz="UTC")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_written_history_reads_back_with_every_check_passed(tmp_path: Path, suffix: str) -> None:
    history = generate_cargo_history(800, seed=3, start=START, days=60)
    path = tmp_path / f"cargo{suffix}"
    assert write_history(history, path, CARGO_SCHEMA) == len(history)
    back = read_history(path, schema=CARGO_SCHEMA)  # raises HistoryError on any failed check
    assert list(back.columns) == list(history.columns)
    for column in CARGO_HISTORY_COLUMNS:
        ours, theirs = history[column.name], back[column.name]
        if column.kind == "time":
            assert (ours.dt.tz_convert("UTC").to_numpy() == pd.to_datetime(theirs, utc=True).to_numpy()).all()
        elif column.kind == "number":
            np.testing.assert_allclose(theirs.to_numpy(float), ours.to_numpy(float), rtol=1e-12, equal_nan=True)
        elif column.kind in ("integer", "flag"):
            assert (theirs.to_numpy().astype(np.int64) == ours.to_numpy().astype(np.int64)).all(), column.name
        else:
            assert theirs.astype(str).tolist() == ours.astype(str).tolist(), column.name


def test_container_and_vessel_numbers_have_valid_check_digits(history: pd.DataFrame) -> None:
    containers = history["container_number"]
    assert containers.map(iso6346.is_valid).all()
    assert (containers.str[3] == "U").all()  # freight containers
    assert not history.duplicated(["report_id", "container_number"]).any()
    assert containers.nunique() < len(containers)  # containers come back over the window
    vessels = history["vessel_imo_number"].unique()
    assert all(imo.is_valid(v) and len(v) == 7 for v in vessels)
    # a carrier sails its own vessels
    assert (history.groupby("vessel_imo_number")["carrier_id"].nunique() == 1).all()


def test_parties_ports_and_codes_follow_the_conventions(history: pd.DataFrame) -> None:
    assert history["consignee_id"].str.fullmatch(r"IMP\d{5}").all()  # the declaration world's importers
    assert history["consignor_id"].str.fullmatch(r"CNR\d{5}").all()
    assert history["carrier_id"].str.fullmatch(r"CAR\d{2}").all()
    by_forwarder = history["filer_id"].str.fullmatch(r"FWD\d{3}")
    assert (by_forwarder | (history["filer_id"] == history["carrier_id"])).all()
    assert ((history["house_document"] != "") == by_forwarder).all()  # forwarders file house bills
    assert history["port_of_loading"].str.fullmatch(LOCODE).all()
    assert history["port_of_discharge"].isin(HOME_PORTS).all()
    assert history["port_of_discharge"].value_counts().index[0] == "KRPUS"
    routes = lists(history["transshipment_ports"])
    assert routes.map(len).between(0, 2).all() and (routes.map(len) > 0).mean() > 0.2
    assert all(p != loading for route, loading in zip(routes, history["port_of_loading"], strict=True) for p in route)
    assert history["size_type_code"].isin(SIZE_TYPES).all()
    assert set(history["transport_mode"]) == {1}


def test_containers_and_goods_are_plausible(history: pd.DataFrame) -> None:
    per_report = history.groupby("report_id").size()
    assert per_report.between(1, 10).all() and per_report.mean() < 2.5 and (per_report == 1).mean() > 0.4
    codes, descriptions, origins = (lists(history[c]) for c in ("hs_codes", "descriptions", "origin_countries"))
    items = history["item_count"]
    assert items.between(1, 5).all()
    assert (codes.map(len) == items).all() and (descriptions.map(len) == items).all()
    assert (origins.map(len) == items).all()
    assert history["hs_codes"].str.fullmatch(r"\d{6}(;\d{6})*").all()
    assert history["origin_countries"].str.fullmatch(r"[A-Z]{2}(;[A-Z]{2})*").all()
    # item origins are mostly the loading port's country
    loading_country = history["port_of_loading"].str[:2]
    first_origin = origins.str[0]
    assert (first_origin == loading_country).mean() > 0.8
    twenty = history["size_type_code"].str[0] == "2"
    mass = history["gross_mass_kg"]
    assert (mass > 0).all() and mass[twenty].max() <= 28_000 and mass[~twenty].max() <= 30_000
    assert mass.median() > 5_000
    assert (history["packages"] >= items).all() and history["packages"].median() > 50
    seals = history["seal_count"].value_counts(normalize=True)
    assert seals[1] > 0.75 and 0.05 < seals[2] < 0.2 and 0.005 < seals[0] < 0.06
    reefers = history["size_type_code"].str[2] == "R"
    chilled = codes.str[0].str[:2].isin(["03", "08"])  # fish, fruit
    assert reefers[chilled].mean() > 0.7 and reefers[~chilled].mean() < 0.1


def test_filing_times_are_mostly_on_time(history: pd.DataFrame) -> None:
    reports = history.drop_duplicates("report_id")
    pre_loading = reports["filing_type"] == "pre_loading"
    assert 0.25 <= pre_loading.mean() <= 0.35
    hours_to_loading = (reports["planned_loading_time"] - reports["filing_time"]).dt.total_seconds() / 3600
    hours_to_arrival = (reports["planned_arrival_time"] - reports["filing_time"]).dt.total_seconds() / 3600
    assert (hours_to_loading > 0).mean() > 0.75  # most reports are filed before loading
    on_time = np.where(pre_loading, hours_to_loading >= 24, hours_to_arrival >= 24)
    assert 0.9 < on_time.mean() < 0.99
    assert (hours_to_arrival > 0).all()  # pre-arrival reports come before arrival, late ones only just
    voyage_days = (reports["planned_arrival_time"] - reports["planned_loading_time"]).dt.total_seconds() / 86400
    from_europe = reports["port_of_loading"].str[:2].isin(["DE", "NL", "BE", "GB", "FR", "PL"])
    from_china = reports["port_of_loading"].str[:2] == "CN"
    assert voyage_days[from_europe].min() > 25 and voyage_days[from_china].max() < 15
    versions = reports["report_version"].value_counts(normalize=True)
    assert versions[1] > 0.8 and set(versions.index) <= {1, 2, 3}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_finding_rate_is_realistic_and_labels_come_only_from_inspections(seed: int) -> None:
    df = generate_cargo_history(2500, seed=seed, start=START, days=200)
    assert 0.01 <= df["finding"].mean() <= 0.05  # over all containers
    assert 0.04 <= df["inspected"].mean() <= 0.2
    assert 0.012 <= df["random_control"].mean() <= 0.03
    assert df.loc[df["finding"], "inspected"].all()
    control = df[df["random_control"]]
    assert control["inspected"].all() and (control["examination"] == "scan").all()
    assert (df.loc[df["inspected"], "examination"].isin(["scan", "physical"])).all()
    assert (df.loc[~df["inspected"], "examination"] == "").all()
    recovered = df["revenue_recovered"]
    assert (recovered[df["finding"]] > 0).all()
    assert (recovered[df["inspected"] & ~df["finding"]] == 0).all()
    assert recovered[~df["inspected"]].isna().all()
    # officers target risk: targeted inspections find more than the random stream
    targeted = df[df["inspected"] & ~df["random_control"]]
    assert targeted["finding"].mean() > 1.5 * control["finding"].mean()


def _consignee_finding_rate_before(df: pd.DataFrame) -> np.ndarray:
    """Per row, the consignee's smoothed finding rate over its earlier reports' inspections (point in time)."""
    reports = df.groupby("report_id", sort=False).agg(
        consignee=("consignee_id", "first"), found=("finding", "any"), inspected=("inspected", "any")
    )
    by_consignee = reports.groupby("consignee")
    findings = by_consignee["found"].cumsum() - reports["found"]
    inspections = by_consignee["inspected"].cumsum() - reports["inspected"]
    rate = (findings + 0.2) / (inspections + 2.0)
    return df["report_id"].map(rate.where(findings >= 2, 0.0)).to_numpy()


def _mass_per_package_outlier(df: pd.DataFrame) -> np.ndarray:
    """Gross mass per package far from what containers of the same main HS heading carry."""
    log_mpp = np.log(df["gross_mass_kg"] / df["packages"])
    heading = df["hs_codes"].str[:4]
    deviation = log_mpp - log_mpp.groupby(heading).transform("median")
    spread = deviation.abs().groupby(heading).transform("median") * 1.4826
    return (deviation.abs() > 3 * spread).to_numpy()


def _off_route_anti_dumping_item(df: pd.DataFrame) -> np.ndarray:
    """An item of an anti-dumping chapter whose origin is neither the loading country nor on the route."""
    rows = zip(df["port_of_loading"], df["transshipment_ports"], df["hs_codes"], df["origin_countries"], strict=True)
    out = []
    for loading, route, codes, origins in rows:
        on_route = {loading[:2], *(p[:2] for p in route.split(";") if p)}
        out.append(
            any(
                int(code[:2]) in ANTI_DUMPING_CHAPTERS and origin not in on_route
                for code, origin in zip(codes.split(";"), origins.split(";"), strict=True)
            )
        )
    return np.array(out)


def _hours_before_deadline(df: pd.DataFrame) -> np.ndarray:
    target = np.where(df["filing_type"] == "pre_loading", df["planned_loading_time"], df["planned_arrival_time"])
    return (pd.to_datetime(target, utc=True) - df["filing_time"]).dt.total_seconds().to_numpy() / 3600


PATTERNS = {
    "transshipment via a concealment hub": lambda df: (
        df["transshipment_ports"].str.contains("|".join(CONCEALMENT_HUBS)).to_numpy()
    ),
    "vague description": lambda df: (
        lists(df["descriptions"]).map(lambda texts: any(t in VAGUE_DESCRIPTIONS for t in texts)).to_numpy()
    ),
    "mass per package off its heading": _mass_per_package_outlier,
    "consignee with earlier findings": lambda df: _consignee_finding_rate_before(df) >= 0.3,
    "filed late": lambda df: _hours_before_deadline(df) < 24,
    "no seal": lambda df: (df["seal_count"] == 0).to_numpy(),
    "anti-dumping origin off the route": _off_route_anti_dumping_item,
}


@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_each_planted_pattern_raises_the_finding_rate_of_inspected_containers(
    large_history: pd.DataFrame, pattern: str
) -> None:
    df = large_history
    flagged = PATTERNS[pattern](df)
    inspected = df["inspected"].to_numpy()
    finding = df["finding"].to_numpy()
    assert 0.005 < flagged.mean() < 0.3  # a pattern, not the norm
    assert (flagged & inspected).sum() >= 30
    with_pattern, without = finding[flagged & inspected].mean(), finding[~flagged & inspected].mean()
    assert with_pattern > 1.4 * without, f"{pattern}: {with_pattern:.3f} vs {without:.3f}"


def test_new_consignees_carry_more_contraband_early(large_history: pd.DataFrame) -> None:
    df = large_history
    first_seen = df.groupby("consignee_id")["filing_time"].transform("min")
    new = (df["filing_time"] - first_seen < pd.Timedelta(days=60)) & (
        first_seen > df["filing_time"].iloc[0] + pd.Timedelta(days=60)
    )
    inspected = df[df["inspected"]]
    assert inspected.loc[new, "finding"].mean() > 1.25 * inspected.loc[~new, "finding"].mean()


def test_drift_reroutes_late_concealment_through_a_new_hub_and_changes_nothing_else() -> None:
    still = generate_cargo_history(3000, seed=4, start=START, days=200)
    drifted = generate_cargo_history(3000, seed=4, start=START, days=200, drift=1.0)
    late = (still["filing_time"] > pd.Timestamp("2024-04-10", tz="UTC")).to_numpy()  # the second half
    pd.testing.assert_frame_equal(drifted[~late], still[~late])
    outcome = ["transshipment_ports", "inspected", "examination", "finding", "revenue_recovered"]
    pd.testing.assert_frame_equal(drifted.drop(columns=outcome), still.drop(columns=outcome))
    assert not still["transshipment_ports"].str.contains(DRIFT_HUB).any()
    moved = (drifted["transshipment_ports"] != still["transshipment_ports"]).to_numpy()
    assert moved.sum() >= 20
    assert drifted.loc[moved, "transshipment_ports"].str.contains(DRIFT_HUB).all()
    # whole reports move, and only reports carrying contraband (found where inspected)
    moved_reports = set(drifted.loc[moved, "report_id"])
    assert np.array_equal(moved, drifted["report_id"].isin(moved_reports).to_numpy())
    assert drifted[moved].groupby("report_id")["finding"].any().mean() > 0.1
    # officers do not know the new hub: fewer of the rerouted containers are inspected
    changed = (drifted["inspected"] != still["inspected"]).to_numpy()
    assert not (changed & ~moved).any()
    assert drifted.loc[moved, "inspected"].sum() < still.loc[moved, "inspected"].sum()
