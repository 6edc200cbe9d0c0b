"""The container feature path: one code path for cargo history rows and served cargo reports."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv
import pytest

from features import EntityOutcomes, OutcomePrior, add_entity_history
from features.cargo import (
    CONTAINER_ENTITIES,
    CONTAINER_FEATURE_NAMES,
    ContainerFeatureState,
    build_container_matrix,
    container_columns_from_frame,
)
from features.kinds import CONTAINER
from features.state import UnitValueBand
from risk_service.domain.cargo.feature_rows import container_columns
from risk_service.domain.cargo.model import CargoItem, CargoReport, FilingType
from risk_service.domain.declaration import Party
from risk_service.domain.entity_history import ContainerEntities
from tests.cargo_builders import CONTAINER_NUMBERS, FILED, PLANNED_ARRIVAL, PLANNED_LOADING, cargo_report, container
from training.cargo_history import CARGO_SCHEMA
from training.history import HistoryError, read_history, write_history
from training.train import prepare_history

F = {name: i for i, name in enumerate(CONTAINER_FEATURE_NAMES)}


def two_container_report(**overrides: object) -> CargoReport:
    """Pre-arrival, CNSHA via SGSIN and MYPKG; one plain container and one vague, unsealed, heavy one."""
    plain = container()
    odd = container(
        container_number=CONTAINER_NUMBERS[1],
        size_type_code="45R1",
        seal_numbers=(),
        gross_mass_kg=9000.0,
        packages=10,
        items=(
            CargoItem(1, "851712", "General cargo", 6, 6000.0, "VN"),
            CargoItem(2, "940360", "Wooden furniture, assembled", 4, 3000.0, "CN"),
        ),
    )
    base = cargo_report(
        filing_type=FilingType.PRE_ARRIVAL,
        transshipment_ports=("SGSIN", "MYPKG"),
        containers=(plain, odd),
        filing_time=PLANNED_ARRIVAL - timedelta(hours=10),
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def history_rows(report: CargoReport, *, inspected: bool = False, finding: bool = False) -> list[dict[str, object]]:
    """The report as canonical cargo history rows, written out field by field (not through the service's code)."""

    def iso(moment: object) -> str:
        return moment.isoformat() if moment is not None else ""  # type: ignore[attr-defined]

    return [
        {
            "report_id": report.report_id,
            "report_version": report.version,
            "filing_type": "pre_loading" if report.filing_type == FilingType.PRE_LOADING else "pre_arrival",
            "filing_time": iso(report.filing_time),
            "transport_mode": int(report.transport_mode),
            "filer_id": report.filer.id,
            "carrier_id": report.carrier.id,
            "vessel_imo_number": report.vessel_imo_number,
            "master_document": report.master_transport_document_number,
            "house_document": report.house_transport_document_number,
            "port_of_loading": report.port_of_loading,
            "transshipment_ports": ";".join(report.transshipment_ports),
            "port_of_discharge": report.port_of_discharge,
            "planned_loading_time": iso(report.planned_loading_time),
            "planned_arrival_time": iso(report.planned_arrival_time),
            "consignor_id": report.consignor.id,
            "consignee_id": report.consignee.id,
            "notify_party_id": report.notify_party.id,
            "container_number": c.container_number,
            "size_type_code": c.size_type_code,
            "seal_count": len(c.seal_numbers),
            "gross_mass_kg": c.gross_mass_kg,
            "packages": c.packages,
            "item_count": len(c.items),
            "hs_codes": ";".join(i.hs_code for i in c.items),
            "descriptions": ";".join(i.description for i in c.items),
            "origin_countries": ";".join(i.origin_country for i in c.items if i.origin_country),
            "inspected": int(inspected),
            "examination": "physical" if inspected else "",
            "finding": int(finding),
            "revenue_recovered": 100.0 if finding else (0.0 if inspected else ""),
            "random_control": 0,
        }
        for c in report.containers
    ]


def test_features_read_the_report_as_an_officer_would() -> None:
    report = two_container_report()
    columns, spans = container_columns([report], ContainerEntities(), None)
    assert spans == [slice(0, 2)]
    m = build_container_matrix(columns, None)
    plain, odd = m[0], m[1]
    assert plain[F["filing_type"]] == 2.0
    assert plain[F["filing_lead_hours"]] == pytest.approx(10.0)  # ten hours before arrival
    assert plain[F["voyage_days"]] == pytest.approx(14.0)
    assert plain[F["transshipment_count"]] == 2.0
    assert plain[F["transshipment_country_code"]] == 26 * (ord("M") - 65) + (ord("Y") - 65)  # MYPKG, the last
    assert plain[F["container_length_ft"]] == 20.0 and odd[F["container_length_ft"]] == 40.0  # 45R1: 40 ft high cube
    assert plain[F["container_type_code"]] != odd[F["container_type_code"]]  # dry against reefer
    assert plain[F["seal_count"]] == 1.0 and odd[F["seal_count"]] == 0.0
    assert odd[F["log_mass_per_package"]] == pytest.approx(math.log(900.0))
    assert plain[F["vague_description_share"]] == 0.0 and odd[F["vague_description_share"]] == 0.5
    # VN is neither China (loading) nor on the route (SG, MY); CN is the loading country
    assert plain[F["origin_off_route_share"]] == 0.0 and odd[F["origin_off_route_share"]] == 0.5
    assert odd[F["main_chapter"]] == 85.0 and odd[F["distinct_chapters"]] == 2.0
    # without a fitted state nothing learned is made up
    assert np.isnan(m[:, F["mass_per_package_zscore"]]).all()
    assert np.isnan(m[:, F["consignee_finding_rate"]]).all()
    assert (m[:, F["consignee_prior_filings"]] == 0.0).all() and np.isnan(m[:, F["consignee_days_known"]]).all()


def test_a_late_pre_loading_filing_has_negative_lead_time() -> None:
    late = cargo_report(filing_time=PLANNED_LOADING + timedelta(hours=3))
    columns, _ = container_columns([late], ContainerEntities(), None)
    assert build_container_matrix(columns, None)[0, F["filing_lead_hours"]] == pytest.approx(-3.0)
    on_time = cargo_report()  # two days ahead of loading
    columns, _ = container_columns([on_time], ContainerEntities(), None)
    assert build_container_matrix(columns, None)[0, F["filing_lead_hours"]] == pytest.approx(48.0)


def test_mass_bands_and_finding_rates_come_from_the_state() -> None:
    report = two_container_report()
    prior = OutcomePrior(0.1, 20.0)
    consignee = report.consignee.id
    outcomes = EntityOutcomes(prior, FILED, {"consignee": {consignee: (5, 4)}})
    state = ContainerFeatureState(
        {"8517": UnitValueBand(math.log(100.0), 0.5, 50)}, UnitValueBand(0.0, 1.0, 99), outcomes
    )
    columns, _ = container_columns([report], ContainerEntities(), outcomes)
    m = build_container_matrix(columns, state)
    assert m[1, F["mass_per_package_zscore"]] == pytest.approx((math.log(900.0) - math.log(100.0)) / 0.5)
    assert m[0, F["mass_per_package_zscore"]] == pytest.approx(math.log(500.0 / 40.0))  # HS 8471: global band
    assert m[0, F["consignee_finding_rate"]] == pytest.approx((4 + 20 * 0.1) / (5 + 20))
    assert m[0, F["consignor_finding_rate"]] == pytest.approx(0.1)  # known key, no inspections: the prior


def test_state_round_trips_and_refuses_other_formats() -> None:
    outcomes = EntityOutcomes(OutcomePrior(0.05), FILED, {"lane": {"CNSHA\x1f8471": (3, 1)}})
    state = ContainerFeatureState({"8471": UnitValueBand(1.0, 0.3, 25)}, None, outcomes)
    assert ContainerFeatureState.from_dict(state.to_dict()) == state
    with pytest.raises(ValueError, match="container feature state"):
        ContainerFeatureState.from_dict({**state.to_dict(), "kind": "declaration"})


def test_history_rows_and_served_reports_give_the_same_matrix(tmp_path: Path) -> None:
    """Three reports of one consignee a week apart: the third, served after the first two were stored,
    gets exactly the row training computes for it from the history file."""
    first = two_container_report(report_id="R1", filing_time=FILED - timedelta(days=14))
    second = cargo_report(report_id="R2", filing_time=FILED - timedelta(days=7), consignor=Party("OTHER"))
    third = two_container_report(report_id="R3", house_transport_document_number="HBL1", version=2)
    rows = [
        *history_rows(first, inspected=True, finding=True),
        *history_rows(second, inspected=True),
        *history_rows(third),
    ]
    path = tmp_path / "cargo.csv"
    write_history(pd.DataFrame(rows), path, CARGO_SCHEMA)
    history = prepare_history(read_history(path, schema=CARGO_SCHEMA), CONTAINER)
    earlier = history[history["report_id"] != "R3"]
    prior = OutcomePrior.fit(earlier, CONTAINER_ENTITIES)
    outcomes = EntityOutcomes.from_frame(earlier, prior, CONTAINER_ENTITIES)
    state = ContainerFeatureState.fit(container_columns_from_frame(earlier), min_count=1).with_outcomes(outcomes)

    trained = CONTAINER.matrix_of(history[history["report_id"] == "R3"], state)

    entities = ContainerEntities()
    entities.record(first)
    entities.record(second)
    columns, _ = container_columns([third], entities, outcomes)
    served = build_container_matrix(columns, state)
    np.testing.assert_array_equal(served, trained)
    # and the history really was read: the consignee was seen twice, inspected twice, with one finding
    assert served[0, F["consignee_prior_filings"]] == 2.0
    assert third.filing_time is not None and first.filing_time is not None
    days = (third.filing_time - first.filing_time).total_seconds() / 86400
    assert served[0, F["consignee_days_known"]] == pytest.approx(days)
    assert served[0, F["consignee_finding_rate"]] == pytest.approx((1 + 20 * prior.rate) / (2 + 20))
    assert served[0, F["has_house_document"]] == 1.0 and served[0, F["report_version"]] == 2.0


def test_container_entity_history_never_looks_ahead(tmp_path: Path) -> None:
    """Rewriting every outcome after a date leaves every earlier row's entity columns as they were."""
    from training.synthetic_cargo import generate_cargo_history

    start = pd.Timestamp("2025-01-01", tz="UTC")
    history = generate_cargo_history(800, seed=11, start=start.date(), days=120)
    cut = start + pd.Timedelta(days=60)
    rewritten = history.copy()
    late = (rewritten["filing_time"] >= cut).to_numpy()
    rewritten.loc[late, "inspected"] = True
    rewritten.loc[late, "examination"] = "physical"
    rewritten.loc[late, "finding"] = ~rewritten.loc[late, "finding"].astype(bool)
    columns = list(CONTAINER_ENTITIES.columns())
    before = add_entity_history(history, CONTAINER_ENTITIES).loc[~late, columns]
    after = add_entity_history(rewritten, CONTAINER_ENTITIES).loc[~late, columns]
    pd.testing.assert_frame_equal(before, after)
    assert before["consignee_prior_inspections"].max() > 0  # the columns do carry history


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("container_number", "CSQU305438", "not an ISO 6346 container number"),
        ("filing_type", "pre-arrival", "must be pre_loading or pre_arrival"),
        ("hs_codes", "8471;12", "HS codes of 6 to 10 digits"),
        ("port_of_loading", "Shanghai", "not a UN/LOCODE"),
        ("planned_arrival_time", "2026-11-01T00:00:00Z", "comes before planned_loading_time"),
        ("examination", "scan", "an examination of a container not inspected"),
        ("origin_countries", "cn;VN", "ISO 3166 alpha-2 codes"),
        ("item_count", 3, "differs from the number of hs_codes"),
        ("packages", 0, "must be at least 1"),
    ],
)
def test_a_bad_cargo_history_names_file_line_and_column(tmp_path: Path, column: str, value: str, message: str) -> None:
    rows = history_rows(two_container_report())
    rows[1][column] = value
    path = tmp_path / "bad.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    with pytest.raises(HistoryError) as raised:
        read_history(path, schema=CARGO_SCHEMA)
    problem = raised.value.problems[0]
    assert (problem.file, problem.line, problem.column) == (str(path), 3, column)
    assert message in problem.message


def test_a_container_given_twice_in_one_report_is_refused(tmp_path: Path) -> None:
    rows = history_rows(two_container_report())
    rows[1]["container_number"] = rows[0]["container_number"]
    path = tmp_path / "twice.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    with pytest.raises(HistoryError, match="appears twice"):
        read_history(path, schema=CARGO_SCHEMA)


def test_a_mapping_is_refused_for_cargo_history(tmp_path: Path) -> None:
    from training.mapping import load_mapping, mapping_path

    path = tmp_path / "cargo.csv"
    pd.DataFrame(history_rows(two_container_report())).to_csv(path, index=False)
    with pytest.raises(HistoryError, match="declaration histories only"):
        read_history(path, load_mapping(mapping_path("kcs")), CARGO_SCHEMA)


def test_the_cargo_history_schema_document_is_current() -> None:
    from training.cargo_history import schema_markdown

    documented = (Path(__file__).parents[2] / "docs" / "cargo_history_schema.md").read_text(encoding="utf-8")
    assert documented == schema_markdown(), (
        "run: .venv/bin/python -m training.cargo_history > docs/cargo_history_schema.md"
    )


def test_planned_times_may_be_blank_or_absent(tmp_path: Path) -> None:
    rows = history_rows(two_container_report())
    rows[0]["planned_loading_time"] = ""
    frame = pd.DataFrame(rows).drop(columns="planned_arrival_time")
    path = tmp_path / "no_times.csv"
    frame.to_csv(path, index=False)
    history = prepare_history(read_history(path, schema=CARGO_SCHEMA), CONTAINER)
    assert history["planned_arrival_time"].isna().all() and history["planned_loading_time"].isna().iloc[0]
    m = CONTAINER.matrix_of(history, None)
    # a pre-arrival report without a planned arrival has no lead time; no voyage without both ends
    assert np.isnan(m[:, F["filing_lead_hours"]]).all() and np.isnan(m[:, F["voyage_days"]]).all()


def test_an_amendment_of_a_stored_report_is_not_in_its_own_history(tmp_path: Path) -> None:
    """Training has one row per report (its newest version); serving has stored version 1 when version 2
    arrives: the amendment must not count its own first version as an earlier filing."""
    other = two_container_report(report_id="R0", filing_time=FILED - timedelta(days=20))
    amended = two_container_report(report_id="R1", version=2)
    first_version = replace(amended, version=1, filing_time=FILED - timedelta(days=3))
    path = tmp_path / "cargo.csv"
    write_history(pd.DataFrame([*history_rows(other), *history_rows(amended)]), path, CARGO_SCHEMA)
    history = prepare_history(read_history(path, schema=CARGO_SCHEMA), CONTAINER)
    trained = CONTAINER.matrix_of(history[history["report_id"] == "R1"], None)

    entities = ContainerEntities()
    entities.record(other)
    entities.record(first_version)  # stored when version 1 was scored
    columns, _ = container_columns([amended], entities, None, counted_already=[True])
    served = build_container_matrix(columns, None)
    np.testing.assert_array_equal(served, trained)
    assert served[0, F["consignee_prior_filings"]] == 1.0

    alone = ContainerEntities()
    alone.record(first_version)
    columns, _ = container_columns([amended], alone, None, counted_already=[True])
    again = build_container_matrix(columns, None)
    assert again[0, F["consignee_prior_filings"]] == 0.0 and np.isnan(again[0, F["consignee_days_known"]])
