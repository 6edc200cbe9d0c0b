"""Cargo rule sets: the cargo context, the shipped default rules, hit rows to containers, load errors."""

from __future__ import annotations

import datetime
import math
import textwrap
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from risk_service.domain.assessment import Channel, RuleHit
from risk_service.domain.cargo.model import CargoItem, CargoReport, Container, FilingType
from risk_service.domain.cargo.rules import (
    CARGO_CONTEXT_SCHEMA,
    CARGO_SUBJECT,
    DEFAULT_CARGO_RULES_PATH,
    CargoFacts,
    cargo_context_schema,
    cargo_contexts,
    containers_of,
    items_of,
    load_cargo_rule_set,
)
from risk_service.domain.declaration import Party
from risk_service.domain.rules import (
    DECLARATION_SUBJECT,
    RuleSet,
    RuleSetError,
    RuleSetHolder,
    load_rule_set,
)
from tests.cargo_builders import CONTAINER_NUMBERS, PLANNED_LOADING, cargo_item, cargo_report, container

DAY = datetime.date(2026, 11, 20)
DEADLINE = 24.0
FEATURES = ("container_mass_per_package", "consignee_prior_reports")


def _clean_report(**overrides: Any) -> CargoReport:
    """Three sealed containers of 2, 1 and 2 laptop items whose masses add up: rows 1-2, 3 and 4-5."""
    containers = (
        container(
            container_number=CONTAINER_NUMBERS[0],
            gross_mass_kg=1000.0,
            items=(cargo_item(item_number=1), cargo_item(item_number=2)),
        ),
        container(container_number=CONTAINER_NUMBERS[1], gross_mass_kg=500.0, items=(cargo_item(),)),
        container(
            container_number=CONTAINER_NUMBERS[2],
            seal_numbers=("SL0099999",),
            gross_mass_kg=1000.0,
            items=(cargo_item(item_number=1), cargo_item(item_number=2, description="Tablet computers, 10 inch")),
        ),
    )
    return cargo_report(**{"containers": containers, **overrides})


def _with_container(report: CargoReport, index: int, **overrides: Any) -> CargoReport:
    containers = list(report.containers)
    containers[index] = replace(containers[index], **overrides)
    return replace(report, containers=tuple(containers))


def _with_item(report: CargoReport, index: int, item: int, **overrides: Any) -> CargoReport:
    items = list(report.containers[index].items)
    items[item] = replace(items[item], **overrides)
    return _with_container(report, index, items=tuple(items))


@pytest.fixture(scope="module")
def default_rules() -> RuleSet:
    return load_cargo_rule_set(DEFAULT_CARGO_RULES_PATH)


def _screen(rule_set: RuleSet, report: CargoReport, facts: CargoFacts | None = None) -> dict[str, RuleHit]:
    contexts = cargo_contexts(report, facts or CargoFacts(), filing_deadline_hours=DEADLINE)
    hits = rule_set.evaluate(contexts, on=DAY)
    assert len({h.rule_id for h in hits}) == len(hits)
    assert rule_set.runtime_error_count == 0
    return {h.rule_id: h for h in hits}


def _write(directory: Path, text: str, name: str = "rules.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def _one_rule(directory: Path, condition: str, description: str = "hit") -> Path:
    return _write(
        directory,
        f"""
        version: "t1"
        rules:
          - id: R1
            description: {description!r}
            condition: {condition!r}
            weight: 0.3
        """,
    )


# --- the context ---------------------------------------------------------------------------------


def test_one_context_per_item_row_in_container_then_item_order() -> None:
    contexts = cargo_contexts(_clean_report(), CargoFacts(), filing_deadline_hours=DEADLINE)
    assert [(c["container.container_number"], c["item.item_number"]) for c in contexts] == [
        (CONTAINER_NUMBERS[0], 1),
        (CONTAINER_NUMBERS[0], 2),
        (CONTAINER_NUMBERS[1], 1),
        (CONTAINER_NUMBERS[2], 1),
        (CONTAINER_NUMBERS[2], 2),
    ]


def test_context_values_have_the_schema_types() -> None:
    rows = np.arange(6, dtype=float).reshape(3, 2)
    contexts = cargo_contexts(
        _clean_report(), CargoFacts(), filing_deadline_hours=DEADLINE, feature_names=FEATURES, feature_rows=rows
    )
    schema = cargo_context_schema(FEATURES)
    for context in contexts:
        visible = {k: v for k, v in context.items() if not k.startswith("_")}
        assert set(visible) == {k for k in schema if not k.startswith("hits.")}
        for name, value in visible.items():
            assert type(value) is schema[name], name


def test_report_values_are_derived_from_the_report() -> None:
    report = _clean_report(
        transshipment_ports=("SGSIN", "LKCMB"),
        house_transport_document_number="HBL0001",
        notify_party=Party("NL999", "Agent"),
    )
    (first, *_) = cargo_contexts(report, CargoFacts(), filing_deadline_hours=DEADLINE)
    assert first["report.filing_type"] == "PRE_LOADING"
    assert first["report.transport_mode"] == "SEA"
    assert first["report.route"] == "CNSHA>SGSIN>LKCMB>NLRTM"
    assert first["report.transshipment_ports"] == "SGSIN>LKCMB"
    assert first["report.transshipment_count"] == 2
    assert first["report.container_count"] == 3
    assert first["report.hours_before_loading"] == 48.0
    assert first["report.hours_before_arrival"] == 48.0 + 14 * 24
    assert first["report.filing_deadline_hours"] == DEADLINE
    assert first["report.consignor_id"] == "CN9876543210987"
    assert first["report.notify_party_id"] == "NL999"
    assert first["report.house_transport_document_number"] == "HBL0001"


def test_container_values_describe_the_rows_container() -> None:
    report = _with_container(_clean_report(), 2, seal_numbers=("S1", " "), gross_mass_kg=1100.0, packages=80)
    contexts = cargo_contexts(report, CargoFacts(), filing_deadline_hours=DEADLINE)
    last = contexts[-1]
    assert last["container.seal_count"] == 1  # a blank seal number is no seal
    assert last["container.item_count"] == 2
    assert last["container.packages"] == 80
    assert last["container.items_gross_mass_kg"] == 1000.0
    assert last["container.mass_gap_ratio"] == pytest.approx(100.0 / 1100.0)
    assert last["item.hs_chapter"] == "84"
    assert contexts[0]["container.mass_gap_ratio"] == 0.0


def test_mass_gap_ratio_is_missing_for_a_container_without_mass(default_rules: RuleSet) -> None:
    report = _with_container(_clean_report(), 1, gross_mass_kg=0.0)
    contexts = cargo_contexts(report, CargoFacts(), filing_deadline_hours=DEADLINE)
    assert math.isnan(contexts[2]["container.mass_gap_ratio"])  # type: ignore[arg-type]
    assert _screen(default_rules, report) == {}


@pytest.mark.parametrize(
    ("origin", "on_route"),
    [("CN", 1.0), ("cn", 1.0), ("SG", 1.0), ("NL", 0.0), ("VN", 0.0)],
)
def test_origin_on_route_is_the_loading_or_a_transshipment_country(origin: str, on_route: float) -> None:
    report = _with_item(_clean_report(), 0, 0, origin_country=origin)
    (first, *_) = cargo_contexts(report, CargoFacts(), filing_deadline_hours=DEADLINE)
    assert first["item.origin_on_route"] == on_route


def test_origin_on_route_is_missing_without_an_origin_or_a_route() -> None:
    no_origin = _with_item(_clean_report(), 0, 0, origin_country=" ")
    no_route = _clean_report(port_of_loading="", transshipment_ports=())
    for report in (no_origin, no_route):
        (first, *_) = cargo_contexts(report, CargoFacts(), filing_deadline_hours=DEADLINE)
        assert math.isnan(first["item.origin_on_route"])  # type: ignore[arg-type]


def test_facts_are_passed_to_every_row() -> None:
    facts = CargoFacts(amended_after_risk_result=True, master_house_mismatches=2, consistency_mismatches=3)
    for context in cargo_contexts(_clean_report(), facts, filing_deadline_hours=DEADLINE):
        assert context["report.amended_after_risk_result"] is True
        assert context["report.master_house_mismatches"] == 2
        assert context["report.consistency_mismatches"] == 3


def test_facts_default_to_nothing_known() -> None:
    assert CargoFacts() == CargoFacts(
        amended_after_risk_result=False, master_house_mismatches=0, consistency_mismatches=0
    )


@pytest.mark.parametrize(
    ("version", "filed", "amended"),
    [
        (2, PLANNED_LOADING, True),  # at loading counts
        (3, PLANNED_LOADING + timedelta(hours=5), True),
        (2, PLANNED_LOADING - timedelta(minutes=1), False),
        (1, PLANNED_LOADING + timedelta(hours=5), False),  # the first filing is no amendment
        (2, None, False),  # unknown is not known to follow loading
    ],
)
def test_amended_after_loading(version: int, filed: datetime.datetime | None, amended: bool) -> None:
    report = _clean_report(version=version, filing_time=filed)
    (first, *_) = cargo_contexts(report, CargoFacts(), filing_deadline_hours=DEADLINE)
    assert first["report.amended_after_loading"] is amended


def test_missing_times_give_nan_hours_and_fire_no_timing_rule(default_rules: RuleSet) -> None:
    for missing in ("filing_time", "planned_loading_time", "planned_arrival_time"):
        report = _clean_report(**{missing: None}, version=2)
        (first, *_) = cargo_contexts(report, CargoFacts(), filing_deadline_hours=DEADLINE)
        if missing != "planned_arrival_time":
            assert math.isnan(first["report.hours_before_loading"])  # type: ignore[arg-type]
        assert _screen(default_rules, report) == {}


def test_naive_and_aware_times_mix_as_utc() -> None:
    naive_filing = PLANNED_LOADING.replace(tzinfo=None) - timedelta(hours=30)
    (first, *_) = cargo_contexts(_clean_report(filing_time=naive_filing), CargoFacts(), filing_deadline_hours=DEADLINE)
    assert first["report.hours_before_loading"] == 30.0


def test_feature_rows_are_per_container() -> None:
    rows = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    contexts = cargo_contexts(
        _clean_report(), CargoFacts(), filing_deadline_hours=DEADLINE, feature_names=FEATURES, feature_rows=rows
    )
    assert [c["features.consignee_prior_reports"] for c in contexts] == [10.0, 10.0, 20.0, 30.0, 30.0]
    without = cargo_contexts(_clean_report(), CargoFacts(), filing_deadline_hours=DEADLINE, feature_names=FEATURES)
    assert all(math.isnan(c["features.container_mass_per_package"]) for c in without)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shape"):
        cargo_contexts(
            _clean_report(),
            CargoFacts(),
            filing_deadline_hours=DEADLINE,
            feature_names=FEATURES,
            feature_rows=np.zeros((5, 2)),
        )


def test_context_names_cannot_reach_the_row_bookkeeping(tmp_path: Path) -> None:
    with pytest.raises(RuleSetError, match="unknown name"):
        load_cargo_rule_set(_one_rule(tmp_path, "item.item_number > 0", description="row {_row}"))


# --- the default cargo rule set ------------------------------------------------------------------


def test_default_cargo_rule_set_loads_with_lists(default_rules: RuleSet) -> None:
    assert default_rules.version == "2026.11.1"
    assert default_rules.subject is CARGO_SUBJECT
    assert "GB000000000001" in default_rules.lists["watchlisted_parties"]  # shared with declarations
    assert "ZZZU0000010" in default_rules.lists["watchlisted_containers"]
    assert "ZZZZ2026000001" in default_rules.lists["watchlisted_transport_documents"]
    assert "AEJEA" in default_rules.lists["risky_transshipment_ports"]
    assert all(-1.0 <= r.weight <= 1.0 for r in default_rules.rules)


def test_clean_report_gets_no_hits(default_rules: RuleSet) -> None:
    assert _screen(default_rules, _clean_report()) == {}
    assert _screen(default_rules, _clean_report(filing_type=FilingType.PRE_ARRIVAL, version=2)) == {}


_LATE = PLANNED_LOADING - timedelta(hours=10)
_AFTER = PLANNED_LOADING + timedelta(hours=2)
_Case = Callable[[], tuple[CargoReport, CargoFacts]]

# rule id -> (a report and facts built to fire it alone, the containers its hit concerns, min_channel)
_CASES: dict[str, tuple[_Case, tuple[str, ...], Channel | None]] = {
    "CARGO-LATE-FILING": (lambda: (_clean_report(filing_time=_LATE), CargoFacts()), (), Channel.YELLOW),
    "CARGO-FILED-AFTER-LOADING": (lambda: (_clean_report(filing_time=_AFTER), CargoFacts()), (), Channel.YELLOW),
    "CARGO-DESC-VAGUE": (
        lambda: (_with_item(_clean_report(), 1, 0, description="GENERAL CARGO"), CargoFacts()),
        (CONTAINER_NUMBERS[1],),
        Channel.YELLOW,
    ),
    "CARGO-DESC-SHORT": (
        lambda: (_with_item(_clean_report(), 2, 1, description="TOYS"), CargoFacts()),
        (CONTAINER_NUMBERS[2],),
        None,
    ),
    "CARGO-ROUTE-RISKY-TRANSSHIPMENT": (
        lambda: (_clean_report(transshipment_ports=("SGSIN", "AEJEA")), CargoFacts()),
        (),
        Channel.YELLOW,
    ),
    "CARGO-ROUTE-ORIGIN-OFF-ROUTE": (
        lambda: (_with_item(_clean_report(), 0, 1, origin_country="VN"), CargoFacts()),
        (CONTAINER_NUMBERS[0],),
        None,
    ),
    "CARGO-ROUTE-MANY-TRANSSHIPMENTS": (
        lambda: (_clean_report(transshipment_ports=("SGSIN", "LKCMB", "EGPSD")), CargoFacts()),
        (),
        None,
    ),
    "CARGO-WATCHLIST-CONSIGNOR": (
        lambda: (_clean_report(consignor=Party("GB000000000001")), CargoFacts()),
        (),
        Channel.RED,
    ),
    "CARGO-WATCHLIST-CONSIGNEE": (
        lambda: (_clean_report(consignee=Party("DE000000000002")), CargoFacts()),
        (),
        Channel.RED,
    ),
    "CARGO-WATCHLIST-NOTIFY-PARTY": (
        lambda: (_clean_report(notify_party=Party("NL000000000003")), CargoFacts()),
        (),
        Channel.RED,
    ),
    "CARGO-WATCHLIST-CONTAINER": (
        lambda: (_with_container(_clean_report(), 1, container_number="ZZZU0000026"), CargoFacts()),
        ("ZZZU0000026",),
        Channel.RED,
    ),
    "CARGO-WATCHLIST-TRANSPORT-DOCUMENT": (
        lambda: (_clean_report(house_transport_document_number="ZZZZ2026000001"), CargoFacts()),
        (),
        Channel.RED,
    ),
    "CARGO-SEAL-MISSING": (
        lambda: (_with_container(_clean_report(), 2, seal_numbers=()), CargoFacts()),
        (CONTAINER_NUMBERS[2],),
        Channel.YELLOW,
    ),
    "CARGO-MASS-GAP": (
        lambda: (_with_container(_clean_report(), 0, gross_mass_kg=1200.0), CargoFacts()),
        (CONTAINER_NUMBERS[0],),
        Channel.YELLOW,
    ),
    "CARGO-MASTER-HOUSE-MISMATCH": (
        lambda: (
            _clean_report(house_transport_document_number="HBL0001"),
            CargoFacts(master_house_mismatches=2),
        ),
        (),
        Channel.YELLOW,
    ),
    "CARGO-AMENDED-AFTER-LOADING": (
        lambda: (
            _clean_report(filing_type=FilingType.PRE_ARRIVAL, version=2, filing_time=PLANNED_LOADING + timedelta(1)),
            CargoFacts(),
        ),
        (),
        None,
    ),
    "CARGO-AMENDED-AFTER-RISK-RESULT": (
        lambda: (_clean_report(version=2), CargoFacts(amended_after_risk_result=True)),
        (),
        None,
    ),
}


def test_every_default_rule_has_a_case(default_rules: RuleSet) -> None:
    assert set(_CASES) | {"CARGO-WEAK-SIGNALS"} == {r.id for r in default_rules.rules}


@pytest.mark.parametrize("rule_id", sorted(_CASES))
def test_default_rule_fires_alone_on_its_case(default_rules: RuleSet, rule_id: str) -> None:
    build, containers, channel = _CASES[rule_id]
    report, facts = build()
    hits = _screen(default_rules, report, facts)
    assert set(hits) == {rule_id}
    hit = hits[rule_id]
    assert containers_of(hit, report) == containers
    assert hit.min_channel is channel
    assert "{" not in hit.message and "?" not in hit.message


def test_weak_signals_accumulate(default_rules: RuleSet) -> None:
    report = _with_item(_clean_report(transshipment_ports=("SGSIN", "LKCMB", "EGPSD")), 0, 0, description="TOYS")
    report = _with_item(report, 2, 0, origin_country="VN")
    hits = _screen(default_rules, report)
    assert set(hits) == {
        "CARGO-DESC-SHORT",
        "CARGO-ROUTE-ORIGIN-OFF-ROUTE",
        "CARGO-ROUTE-MANY-TRANSSHIPMENTS",
        "CARGO-WEAK-SIGNALS",
    }
    assert hits["CARGO-WEAK-SIGNALS"].message == "3 weak risk indicators together."
    assert hits["CARGO-WEAK-SIGNALS"].min_channel is Channel.YELLOW
    assert containers_of(hits["CARGO-WEAK-SIGNALS"], report) == ()


def test_late_filing_message_and_fields(default_rules: RuleSet) -> None:
    hit = _screen(default_rules, _clean_report(filing_time=_LATE))["CARGO-LATE-FILING"]
    assert hit.message == "Pre-loading report filed 10.0 h before planned loading; the SEA deadline is 24 h."
    assert hit.fields == (
        "cargo_report.filing_type",
        "cargo_report.planned_loading_time",
        "cargo_report.filing_time",
        "report.filing_deadline_hours",  # a setting, not a report field
    )
    assert hit.item_numbers == ()


def test_late_filing_is_only_for_pre_loading_reports(default_rules: RuleSet) -> None:
    report = _clean_report(filing_type=FilingType.PRE_ARRIVAL, filing_time=_AFTER)
    assert _screen(default_rules, report) == {}


def test_origin_returning_home_is_not_off_route(default_rules: RuleSet) -> None:
    report = _with_item(_clean_report(), 0, 0, origin_country="NL")  # discharged at NLRTM
    assert _screen(default_rules, report) == {}


def test_vague_description_matches_whole_words_any_case(default_rules: RuleSet) -> None:
    for description in ("fak", "Said to contain", "Gifts for staff", "SPARE-PARTS"):
        hits = _screen(default_rules, _with_item(_clean_report(), 0, 0, description=description))
        assert set(hits) == {"CARGO-DESC-VAGUE"}, description
    assert _screen(default_rules, _with_item(_clean_report(), 0, 0, description="Samplers, analogue")) == {}


# --- hits: rows, containers and field paths ------------------------------------------------------


def test_row_hit_item_numbers_are_row_numbers_across_the_report(default_rules: RuleSet) -> None:
    report = _with_item(_clean_report(), 2, 1, description="SAMPLES")  # container 3, item 2: row 5
    report = _with_item(report, 0, 1, description="FAK")  # container 1, item 2: row 2
    hit = _screen(default_rules, report)["CARGO-DESC-VAGUE"]
    assert hit.item_numbers == (2, 5)
    assert containers_of(hit, report) == (CONTAINER_NUMBERS[0], CONTAINER_NUMBERS[2])
    assert items_of(hit, report) == ((CONTAINER_NUMBERS[0], 2), (CONTAINER_NUMBERS[2], 2))
    assert hit.fields == (
        "cargo_report.containers[0].items[1].description",
        "cargo_report.containers[2].items[1].description",
    )
    assert hit.message == "Goods description 'FAK' is too vague to screen or examine against."


def test_container_hit_names_every_row_of_the_container(default_rules: RuleSet) -> None:
    report = _with_container(_clean_report(), 2, seal_numbers=())
    hit = _screen(default_rules, report)["CARGO-SEAL-MISSING"]
    assert hit.item_numbers == (4, 5)
    assert containers_of(hit, report) == (CONTAINER_NUMBERS[2],)
    assert hit.fields == ("cargo_report.containers[2].seal_numbers", "cargo_report.containers[2].items")


def test_mass_gap_fields_and_message(default_rules: RuleSet) -> None:
    report = _with_container(_clean_report(), 1, gross_mass_kg=400.0)
    hit = _screen(default_rules, report)["CARGO-MASS-GAP"]
    assert hit.item_numbers == (3,)
    assert hit.fields == ("cargo_report.containers[1].gross_mass_kg", "cargo_report.containers[1].items")
    assert hit.message == f"Container {CONTAINER_NUMBERS[1]} gross mass 400 kg differs from its items' 500 kg by 25%."


def test_report_level_hit_concerns_every_container(default_rules: RuleSet) -> None:
    report = _clean_report(consignee=Party("DE000000000002"))
    hit = _screen(default_rules, report)["CARGO-WATCHLIST-CONSIGNEE"]
    assert hit.item_numbers == ()
    assert containers_of(hit, report) == ()
    assert items_of(hit, report) == ()
    assert hit.fields == ("cargo_report.consignee.id",)


def test_risky_transshipment_message_shows_the_route(default_rules: RuleSet) -> None:
    report = _clean_report(transshipment_ports=("AEJEA",))
    hit = _screen(default_rules, report)["CARGO-ROUTE-RISKY-TRANSSHIPMENT"]
    assert hit.message == "Route CNSHA>AEJEA>NLRTM is transshipped through a listed port."
    assert hit.fields == ("cargo_report.transshipment_ports",)


def test_off_route_fields(default_rules: RuleSet) -> None:
    report = _with_item(_clean_report(), 1, 0, origin_country="VN")
    hit = _screen(default_rules, report)["CARGO-ROUTE-ORIGIN-OFF-ROUTE"]
    assert hit.item_numbers == (3,)
    assert hit.fields == (
        "cargo_report.containers[1].items[0].origin_country",
        "cargo_report.port_of_loading",
        "cargo_report.transshipment_ports",
        "cargo_report.port_of_discharge",
    )


def test_containers_of_refuses_a_row_the_report_does_not_have() -> None:
    hit = RuleHit("R1", "hit", (), 0.3, None, item_numbers=(6,))
    with pytest.raises(ValueError, match="row 6"):
        containers_of(hit, _clean_report())


def test_feature_rule_hits_the_rows_of_its_container(tmp_path: Path) -> None:
    rule_set = load_cargo_rule_set(
        _one_rule(tmp_path, "features.consignee_prior_reports == 0", "new {features.consignee_prior_reports:.0f}"),
        FEATURES,
    )
    rows = np.array([[1.0, 5.0], [1.0, 0.0], [1.0, np.nan]])
    contexts = cargo_contexts(
        _clean_report(), CargoFacts(), filing_deadline_hours=DEADLINE, feature_names=FEATURES, feature_rows=rows
    )
    (hit,) = rule_set.evaluate(contexts, on=DAY)
    assert hit.item_numbers == (3,)
    assert hit.fields == ("features.consignee_prior_reports",)
    assert hit.message == "new 0"


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("report.port_of_loading == 'CNSHA'", ("cargo_report.port_of_loading",)),
        ("report.filer_id == 'CN1234567890123'", ("cargo_report.filer.id",)),
        ("report.container_count == 3", ("cargo_report.containers",)),
        ("report.amended_after_risk_result", ("report.amended_after_risk_result",)),
        ("report.vessel_imo_number == '9074729'", ("cargo_report.vessel_imo_number",)),
        ("container.size_type_code == '22G1' and container.packages > 0", None),
        ("item.hs_chapter == '84' and item.packages == 40", None),
    ],
)
def test_field_paths(tmp_path: Path, condition: str, expected: tuple[str, ...] | None) -> None:
    report = _clean_report()
    facts = CargoFacts(amended_after_risk_result=True)
    rule_set = load_cargo_rule_set(_one_rule(tmp_path, condition))
    (hit,) = rule_set.evaluate(cargo_contexts(report, facts, filing_deadline_hours=DEADLINE), on=DAY)
    if expected is not None:
        assert hit.fields == expected
        return
    assert hit.item_numbers == (1, 2, 3, 4, 5)
    if condition.startswith("container."):
        assert hit.fields == tuple(
            f"cargo_report.containers[{c}].{name}" for c in range(3) for name in ("size_type_code", "packages")
        )
    else:
        assert hit.fields[:2] == (
            "cargo_report.containers[0].items[0].hs_code",
            "cargo_report.containers[0].items[0].packages",
        )
        assert hit.fields[-1] == "cargo_report.containers[2].items[1].packages"


# --- loading against the right subject -----------------------------------------------------------


def test_cargo_rule_set_refuses_a_declaration_name_with_file_and_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        version: "t1"
        rules:
          - id: OK
            description: "fine"
            condition: "report.consignee_id == 'X'"
            weight: 0.1
          - id: DECL
            description: "importer {declaration.importer_id}"
            condition: "declaration.importer_id == 'X'"
            weight: 0.1
        """,
    )
    with pytest.raises(RuleSetError) as raised:
        load_cargo_rule_set(path)
    assert [str(e) for e in raised.value.errors] == [
        f"{path}:9: rule DECL: unknown name 'declaration.importer_id'",
        f"{path}:8: rule DECL: unknown name 'declaration.importer_id' in description placeholder",
    ]


def test_declaration_rule_set_refuses_a_cargo_name(tmp_path: Path) -> None:
    path = _one_rule(tmp_path, "container.seal_count == 0")
    with pytest.raises(RuleSetError) as raised:
        load_rule_set(path, ())
    (error,) = raised.value.errors
    assert (error.file, error.line, error.rule_id) == (str(path), 5, "R1")
    assert error.message == "unknown name 'container.seal_count'"


def test_declaration_names_still_load_as_declarations(tmp_path: Path) -> None:
    rule_set = load_rule_set(_one_rule(tmp_path, "declaration.importer_id == 'X'"), ())
    assert rule_set.subject is DECLARATION_SUBJECT
    assert rule_set.rules[0].item_level is False


def test_cargo_schema_and_subject() -> None:
    assert CARGO_SUBJECT.schema is CARGO_CONTEXT_SCHEMA
    assert not any(name.startswith("declaration.") for name in CARGO_CONTEXT_SCHEMA)
    assert CARGO_SUBJECT.is_row_level("container.seal_count")
    assert CARGO_SUBJECT.is_row_level("features.x")
    assert not CARGO_SUBJECT.is_row_level("report.route")
    assert CARGO_CONTEXT_SCHEMA["report.amended_after_loading"] is bool
    assert CARGO_CONTEXT_SCHEMA["item.origin_on_route"] is float


def test_holder_keeps_the_cargo_subject_across_reloads(tmp_path: Path) -> None:
    path = _one_rule(tmp_path, "report.consignee_id == 'X'")
    holder = RuleSetHolder(path, (), subject=CARGO_SUBJECT)
    assert holder.current.subject is CARGO_SUBJECT
    path.write_text(path.read_text().replace("'X'", "'Y'").replace('"t1"', '"t2"'), encoding="utf-8")
    assert holder.reload() is True
    assert holder.current.version == "t2"
    assert holder.current.subject is CARGO_SUBJECT
    _one_rule(tmp_path, "declaration.importer_id == 'X'")
    assert holder.reload() is False
    assert holder.last_error is not None


# --- properties ----------------------------------------------------------------------------------

_times = st.one_of(
    st.none(),
    st.datetimes(min_value=datetime.datetime(2000, 1, 1), max_value=datetime.datetime(2100, 1, 1)),
    st.datetimes(
        min_value=datetime.datetime(2000, 1, 1), max_value=datetime.datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
)
_masses = st.floats(allow_nan=True, allow_infinity=True)
_text = st.text(max_size=12)
_items = st.builds(
    CargoItem,
    item_number=st.integers(-5, 5),
    hs_code=_text,
    description=_text,
    packages=st.integers(-5, 1000),
    gross_mass_kg=_masses,
    origin_country=_text,
)
_containers = st.builds(
    Container,
    container_number=_text,
    size_type_code=_text,
    seal_numbers=st.lists(_text, max_size=2).map(tuple),
    gross_mass_kg=_masses,
    packages=st.integers(-5, 1000),
    items=st.lists(_items, max_size=3).map(tuple),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    containers=st.lists(_containers, max_size=3).map(tuple),
    filing_time=_times,
    planned_loading_time=_times,
    planned_arrival_time=_times,
    ports=st.lists(_text, max_size=3),
    version=st.integers(-2, 5),
    deadline=st.floats(allow_nan=True),
)
def test_any_report_gets_contexts_and_an_evaluation_without_errors(
    default_rules: RuleSet,
    containers: tuple[Container, ...],
    filing_time: datetime.datetime | None,
    planned_loading_time: datetime.datetime | None,
    planned_arrival_time: datetime.datetime | None,
    ports: list[str],
    version: int,
    deadline: float,
) -> None:
    report = cargo_report(
        containers=containers,
        filing_time=filing_time,
        planned_loading_time=planned_loading_time,
        planned_arrival_time=planned_arrival_time,
        transshipment_ports=tuple(ports),
        version=version,
    )
    errors_before = default_rules.runtime_error_count
    contexts = cargo_contexts(report, CargoFacts(), filing_deadline_hours=deadline)
    assert len(contexts) == sum(len(c.items) for c in containers)
    hits = default_rules.evaluate(contexts, on=DAY)
    assert default_rules.runtime_error_count == errors_before
    for hit in hits:
        assert len(containers_of(hit, report)) <= len(containers)
