"""Cargo report validation names every violating field by its proto path and never raises."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from risk_service.domain.cargo.model import CargoItem, CargoReport, Container, FilingType
from risk_service.domain.cargo.validation import CargoLimits, validate_cargo_batch, validate_cargo_report
from risk_service.domain.declaration import Party, TransportMode
from risk_service.domain.errors import FieldViolation
from tests.cargo_builders import (
    CONTAINER_NUMBERS,
    FILED,
    NOW,
    PLANNED_ARRIVAL,
    PLANNED_LOADING,
    cargo_item,
    cargo_report,
    container,
)

LIMITS = CargoLimits(
    max_containers=3,
    max_items_per_container=3,
    max_seals=2,
    max_transshipment_ports=2,
    max_string_length=64,
    max_id_length=20,
    max_filing_age_days=365,
)


def violations(report: CargoReport, *, now: datetime = NOW) -> list[FieldViolation]:
    return validate_cargo_report(report, LIMITS, now=now)


def only_violation(report: CargoReport, *, now: datetime = NOW) -> FieldViolation:
    found = violations(report, now=now)
    assert len(found) == 1, found
    return found[0]


def two_containers(second: Container) -> CargoReport:
    """A report whose second container is `second`, so paths must carry the right index."""
    return cargo_report(containers=(container(), second))


# --- valid reports -----------------------------------------------------------------------------


def test_a_valid_sea_report_has_no_violations() -> None:
    assert violations(cargo_report()) == []


def test_a_valid_sea_report_passes_the_default_limits() -> None:
    assert validate_cargo_report(cargo_report(), CargoLimits(), now=NOW) == []


def test_a_road_report_needs_no_vessel_or_voyage() -> None:
    report = cargo_report(transport_mode=TransportMode.ROAD, vessel_imo_number="", voyage_number="")
    assert violations(report) == []


def test_a_non_sea_report_may_name_a_valid_vessel() -> None:
    assert violations(cargo_report(transport_mode=TransportMode.RAIL)) == []


@pytest.mark.parametrize("number", CONTAINER_NUMBERS)
def test_valid_iso_6346_container_numbers_pass(number: str) -> None:
    assert violations(cargo_report(containers=(container(container_number=number),))) == []


@pytest.mark.parametrize("number", ["9074729", "9321483"])
def test_valid_imo_numbers_pass_with_or_without_the_imo_prefix(number: str) -> None:
    assert violations(cargo_report(vessel_imo_number=number)) == []


def test_a_container_without_seals_is_not_an_input_error() -> None:
    assert violations(cargo_report(containers=(container(seal_numbers=()),))) == []


def test_a_pre_loading_filing_after_loading_is_not_an_input_error() -> None:
    late = PLANNED_LOADING + timedelta(hours=3)
    report = cargo_report(filing_type=FilingType.PRE_LOADING, filing_time=late)
    assert violations(report, now=late) == []


def test_a_pre_arrival_filing_before_arrival_passes() -> None:
    filed = PLANNED_ARRIVAL - timedelta(days=1)
    report = cargo_report(filing_type=FilingType.PRE_ARRIVAL, filing_time=filed)
    assert violations(report, now=filed) == []


def test_mass_and_package_disagreements_are_left_to_the_rules() -> None:
    # Items heavier and more numerous than their container: each value is valid on its own.
    heavy = container(gross_mass_kg=1.0, packages=1, items=(cargo_item(gross_mass_kg=9_999.0, packages=500),))
    assert violations(cargo_report(containers=(heavy,))) == []


def test_times_in_other_zones_are_compared_as_instants() -> None:
    tokyo = timezone(timedelta(hours=9))
    report = cargo_report(planned_loading_time=PLANNED_LOADING.astimezone(tokyo), filing_time=FILED.astimezone(tokyo))
    assert violations(report) == []


# --- report-level rules ------------------------------------------------------------------------

_THREE_PORTS = tuple(f"SGAA{c}" for c in "ABC")  # valid and distinct; LIMITS allows two


@pytest.mark.parametrize(
    ("overrides", "path", "description"),
    [
        ({"report_id": ""}, "cargo_report.report_id", "is required"),
        ({"report_id": "CR 1"}, "cargo_report.report_id", "may hold only letters, digits"),
        ({"report_id": "X" * 21}, "cargo_report.report_id", "longer than 20 characters"),
        ({"version": 0}, "cargo_report.version", "must be 1 or more"),
        ({"filing_type": FilingType.UNSPECIFIED}, "cargo_report.filing_type", "UNSPECIFIED value is not accepted"),
        ({"filing_type": 9}, "cargo_report.filing_type", "9 is not a known FilingType value"),
        (
            {"transport_mode": TransportMode.UNSPECIFIED},
            "cargo_report.transport_mode",
            "UNSPECIFIED value is not accepted",
        ),
        ({"transport_mode": 6}, "cargo_report.transport_mode", "6 is not a known TransportMode value"),
        ({"filer": Party("")}, "cargo_report.filer.id", "is required"),
        ({"carrier": Party("", "Ocean Lines A/S")}, "cargo_report.carrier.id", "is required"),
        ({"consignor": Party("")}, "cargo_report.consignor.id", "is required"),
        ({"consignee": Party("")}, "cargo_report.consignee.id", "is required"),
        ({"consignee": Party("NL 1")}, "cargo_report.consignee.id", "may hold only letters, digits"),
        ({"consignee": Party("NL1", "Bad\x00Name")}, "cargo_report.consignee.name", "control characters"),
        ({"filer": Party("F1", "n" * 65)}, "cargo_report.filer.name", "longer than 64 characters"),
        ({"notify_party": Party("NP 1")}, "cargo_report.notify_party.id", "may hold only letters, digits"),
        ({"notify_party": Party("", "n" * 65)}, "cargo_report.notify_party.name", "longer than 64 characters"),
        ({"vessel_imo_number": ""}, "cargo_report.vessel_imo_number", "is required when transport_mode is SEA"),
        ({"vessel_imo_number": "9074728"}, "cargo_report.vessel_imo_number", "wrong IMO check digit"),
        ({"vessel_imo_number": "907472"}, "cargo_report.vessel_imo_number", "7 digits"),
        ({"vessel_imo_number": "90747290"}, "cargo_report.vessel_imo_number", "7 digits"),
        ({"vessel_imo_number": "imo 9074729"}, "cargo_report.vessel_imo_number", "7 digits"),
        ({"vessel_imo_number": "IMO-9074729"}, "cargo_report.vessel_imo_number", "7 digits"),
        ({"vessel_imo_number": "IMO 9074729"}, "cargo_report.vessel_imo_number", "without the IMO prefix"),
        (
            {"vessel_imo_number": "\u0669\u0660\u0667\u0664\u0667\u0662\u0669"},
            "cargo_report.vessel_imo_number",
            "7 digits",
        ),
        (
            {"transport_mode": TransportMode.AIR, "vessel_imo_number": "9074728"},
            "cargo_report.vessel_imo_number",
            "wrong IMO check digit",
        ),
        ({"voyage_number": ""}, "cargo_report.voyage_number", "is required when transport_mode is SEA"),
        ({"voyage_number": "046 W"}, "cargo_report.voyage_number", "may hold only letters, digits"),
        (
            {"transport_mode": TransportMode.ROAD, "voyage_number": "046 W"},
            "cargo_report.voyage_number",
            "may hold only letters, digits",
        ),
        ({"master_transport_document_number": ""}, "cargo_report.master_transport_document_number", "is required"),
        (
            {"house_transport_document_number": "HB/1 2"},
            "cargo_report.house_transport_document_number",
            "may hold only letters, digits",
        ),
        ({"port_of_loading": ""}, "cargo_report.port_of_loading", "is required"),
        ({"port_of_loading": "cnsha"}, "cargo_report.port_of_loading", "must be a UN/LOCODE"),
        ({"port_of_loading": "CNSH1"}, "cargo_report.port_of_loading", "must be a UN/LOCODE"),
        ({"port_of_loading": "CNSHAX"}, "cargo_report.port_of_loading", "must be a UN/LOCODE"),
        ({"port_of_loading": "CN SH"}, "cargo_report.port_of_loading", "must be a UN/LOCODE"),
        ({"port_of_loading": "XXSHA"}, "cargo_report.port_of_loading", "XX is not one"),
        ({"port_of_discharge": ""}, "cargo_report.port_of_discharge", "is required"),
        ({"port_of_discharge": "CNSHA"}, "cargo_report.port_of_discharge", "must differ from port_of_loading"),
        ({"transshipment_ports": ("sgsin",)}, "cargo_report.transshipment_ports[0]", "must be a UN/LOCODE"),
        ({"transshipment_ports": ("SGSIN", "")}, "cargo_report.transshipment_ports[1]", "is required"),
        (
            {"transshipment_ports": ("SGSIN", "SGSIN")},
            "cargo_report.transshipment_ports[1]",
            "repeats transshipment_ports[0]",
        ),
        (
            {"transshipment_ports": ("SGSIN", "CNSHA")},
            "cargo_report.transshipment_ports[1]",
            "must differ from port_of_loading",
        ),
        (
            {"transshipment_ports": ("NLRTM",)},
            "cargo_report.transshipment_ports[0]",
            "must differ from port_of_discharge",
        ),
        ({"transshipment_ports": _THREE_PORTS}, "cargo_report.transshipment_ports", "at most 2 are allowed"),
        ({"planned_loading_time": None}, "cargo_report.planned_loading_time", "is required"),
        ({"planned_arrival_time": None}, "cargo_report.planned_arrival_time", "is required"),
        ({"filing_time": None}, "cargo_report.filing_time", "is required"),
        (
            {"planned_loading_time": PLANNED_LOADING.replace(tzinfo=None)},
            "cargo_report.planned_loading_time",
            "must carry a time zone",
        ),
        (
            {"planned_arrival_time": PLANNED_ARRIVAL.replace(tzinfo=None)},
            "cargo_report.planned_arrival_time",
            "must carry a time zone",
        ),
        ({"filing_time": FILED.replace(tzinfo=None)}, "cargo_report.filing_time", "must carry a time zone"),
        (
            {"planned_arrival_time": PLANNED_LOADING},
            "cargo_report.planned_arrival_time",
            "must be after planned_loading_time",
        ),
        (
            {"planned_arrival_time": PLANNED_LOADING - timedelta(days=1)},
            "cargo_report.planned_arrival_time",
            "must be after planned_loading_time",
        ),
        ({"filing_time": NOW + timedelta(days=2)}, "cargo_report.filing_time", "more than a day in the future"),
        ({"filing_time": NOW - timedelta(days=366)}, "cargo_report.filing_time", "more than 365 days in the past"),
        ({"containers": ()}, "cargo_report.containers", "at least one container is required"),
        (
            {"containers": tuple(container(container_number=n) for n in CONTAINER_NUMBERS)},
            "cargo_report.containers",
            "has 4 containers; at most 3 are allowed",
        ),
        (
            {"containers": (container(), container())},
            "cargo_report.containers[1].container_number",
            "repeats containers[0].container_number",
        ),
    ],
)
def test_report_level_rule_names_the_field(overrides: dict[str, Any], path: str, description: str) -> None:
    violation = only_violation(cargo_report(**overrides))
    assert violation.field == path
    assert description in violation.description


def test_a_filing_within_a_day_of_now_is_clock_skew() -> None:
    assert violations(cargo_report(filing_time=NOW + timedelta(hours=23))) == []


@pytest.mark.parametrize("filed", [PLANNED_ARRIVAL, PLANNED_ARRIVAL + timedelta(hours=2)])
def test_a_pre_arrival_filing_at_or_after_arrival_is_a_violation(filed: datetime) -> None:
    report = cargo_report(filing_type=FilingType.PRE_ARRIVAL, filing_time=filed)
    violation = only_violation(report, now=filed + timedelta(hours=1))
    assert violation == FieldViolation(
        "cargo_report.filing_time", "a pre-arrival filing must be made before planned_arrival_time"
    )


# --- container-level rules ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "description"),
    [
        ({"container_number": ""}, "container_number", "is required"),
        ({"container_number": "CSQU3054384"}, "container_number", "wrong ISO 6346 check digit"),
        ({"container_number": "MSCU1234567"}, "container_number", "wrong ISO 6346 check digit"),
        ({"container_number": "csqu3054383"}, "container_number", "4 uppercase letters and 7 digits"),
        ({"container_number": "CSQU 305438 3"}, "container_number", "without spaces"),
        ({"container_number": "CSQU305438"}, "container_number", "4 uppercase letters and 7 digits"),
        ({"container_number": "\u00c9SQU3054383"}, "container_number", "4 uppercase letters and 7 digits"),
        ({"container_number": "CSQX3054383"}, "container_number", "fourth letter"),
        ({"size_type_code": ""}, "size_type_code", "ISO 6346 size and type code"),
        ({"size_type_code": "22g1"}, "size_type_code", "ISO 6346 size and type code"),
        ({"size_type_code": "22G"}, "size_type_code", "ISO 6346 size and type code"),
        ({"size_type_code": "22G1X"}, "size_type_code", "ISO 6346 size and type code"),
        ({"seal_numbers": ("",)}, "seal_numbers[0]", "is required"),
        ({"seal_numbers": ("SL1", "SL 2")}, "seal_numbers[1]", "may hold only letters, digits"),
        ({"seal_numbers": ("SL1", "SL1")}, "seal_numbers[1]", "repeats seal_numbers[0]"),
        ({"seal_numbers": ("S1", "S2", "S3")}, "seal_numbers", "has 3 seals; at most 2 are allowed"),
        ({"gross_mass_kg": 0.0}, "gross_mass_kg", "must be more than 0"),
        ({"gross_mass_kg": -0.0}, "gross_mass_kg", "must be more than 0"),
        ({"gross_mass_kg": -1.0}, "gross_mass_kg", "must not be negative"),
        ({"gross_mass_kg": math.nan}, "gross_mass_kg", "must be a finite number"),
        ({"gross_mass_kg": math.inf}, "gross_mass_kg", "must be a finite number"),
        ({"packages": 0}, "packages", "must be 1 or more"),
        ({"packages": -5}, "packages", "must be 1 or more"),
        ({"items": ()}, "items", "at least one cargo item is required"),
        (
            {"items": tuple(cargo_item(item_number=n) for n in range(1, 5))},
            "items",
            "has 4 items; at most 3 are allowed",
        ),
        ({"items": (cargo_item(), cargo_item())}, "items[1].item_number", "repeats items[0].item_number (1)"),
    ],
)
def test_container_rule_names_the_field(overrides: dict[str, Any], field: str, description: str) -> None:
    second = container(**{"container_number": CONTAINER_NUMBERS[1], **overrides})
    violation = only_violation(two_containers(second))
    assert violation.field == f"cargo_report.containers[1].{field}"
    assert description in violation.description


# --- item-level rules --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "description"),
    [
        ({"item_number": 0}, "item_number", "must be 1 or more"),
        ({"item_number": -1}, "item_number", "must be 1 or more"),
        ({"hs_code": ""}, "hs_code", "must be 6 to 10 digits"),
        ({"hs_code": "84713"}, "hs_code", "must be 6 to 10 digits"),
        ({"hs_code": "84713000001"}, "hs_code", "must be 6 to 10 digits"),
        ({"hs_code": "8471.30"}, "hs_code", "must be 6 to 10 digits"),
        ({"hs_code": "\u0668\u0664\u0667\u0661\u0663\u0660"}, "hs_code", "must be 6 to 10 digits"),
        ({"description": ""}, "description", "is required"),
        ({"description": "   "}, "description", "is required"),
        ({"description": "Laptops\x07"}, "description", "control characters"),
        ({"description": "d" * 65}, "description", "longer than 64 characters"),
        ({"packages": 0}, "packages", "must be 1 or more"),
        ({"gross_mass_kg": 0.0}, "gross_mass_kg", "must be more than 0"),
        ({"gross_mass_kg": -2.5}, "gross_mass_kg", "must not be negative"),
        ({"gross_mass_kg": math.nan}, "gross_mass_kg", "must be a finite number"),
        ({"gross_mass_kg": -math.inf}, "gross_mass_kg", "must be a finite number"),
        ({"origin_country": "XX"}, "origin_country", "ISO 3166-1 alpha-2"),
        ({"origin_country": "cn"}, "origin_country", "ISO 3166-1 alpha-2"),
    ],
)
def test_item_rule_names_the_field(overrides: dict[str, Any], field: str, description: str) -> None:
    items = (cargo_item(), cargo_item(**{"item_number": 2, **overrides}))
    violation = only_violation(two_containers(container(container_number=CONTAINER_NUMBERS[1], items=items)))
    assert violation.field == f"cargo_report.containers[1].items[1].{field}"
    assert description in violation.description


def test_an_item_may_leave_origin_country_empty() -> None:
    report = cargo_report(containers=(container(items=(cargo_item(origin_country=""),)),))
    assert violations(report) == []


def test_item_numbers_may_repeat_across_containers() -> None:
    assert violations(two_containers(container(container_number=CONTAINER_NUMBERS[1]))) == []


def test_seal_numbers_may_repeat_across_containers() -> None:
    second = container(container_number=CONTAINER_NUMBERS[1], seal_numbers=container().seal_numbers)
    assert violations(two_containers(second)) == []


# --- several violations ------------------------------------------------------------------------


def test_every_violation_is_reported() -> None:
    broken_item = cargo_item(hs_code="84", gross_mass_kg=math.nan)
    broken = container(container_number="CSQU3054384", seal_numbers=("S1", "S1"), items=(broken_item,))
    report = cargo_report(
        report_id="",
        version=0,
        filing_type=FilingType.UNSPECIFIED,
        vessel_imo_number="9074728",
        port_of_discharge="CNSHA",
        transshipment_ports=("CNSHA",),
        filing_time=None,
        containers=(container(), broken),
    )
    assert [v.field for v in violations(report)] == [
        "cargo_report.report_id",
        "cargo_report.version",
        "cargo_report.filing_type",
        "cargo_report.vessel_imo_number",
        "cargo_report.port_of_discharge",
        "cargo_report.transshipment_ports[0]",
        "cargo_report.filing_time",
        "cargo_report.containers[1].container_number",
        "cargo_report.containers[1].seal_numbers[1]",
        "cargo_report.containers[1].items[0].hs_code",
        "cargo_report.containers[1].items[0].gross_mass_kg",
    ]


def test_a_value_can_break_more_than_one_rule() -> None:
    # The pre-arrival filing is both a month in the future and after arrival.
    filed = NOW + timedelta(days=30)
    report = cargo_report(filing_type=FilingType.PRE_ARRIVAL, filing_time=filed)
    assert [v.description for v in violations(report)] == [
        "is more than a day in the future",
        "a pre-arrival filing must be made before planned_arrival_time",
    ]


def test_a_path_prefix_is_honoured() -> None:
    found = validate_cargo_report(cargo_report(version=0), LIMITS, path="request.cargo_report", now=NOW)
    assert found == [FieldViolation("request.cargo_report.version", "must be 1 or more")]


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        validate_cargo_report(cargo_report(), LIMITS, now=NOW.replace(tzinfo=None))


# --- batches -----------------------------------------------------------------------------------


def test_a_valid_batch_has_no_violations() -> None:
    reports = [cargo_report(report_id=f"CR-{i}") for i in range(3)]
    assert validate_cargo_batch(reports, LIMITS, max_batch_size=3, now=NOW) == []


def test_batch_paths_name_each_report_by_position() -> None:
    second = container(container_number=CONTAINER_NUMBERS[1], items=(cargo_item(hs_code="12"),))
    reports = [cargo_report(report_id="CR-1"), cargo_report(report_id="CR-2", containers=(container(), second))]
    assert validate_cargo_batch(reports, LIMITS, max_batch_size=5, now=NOW) == [
        FieldViolation("cargo_reports[1].containers[1].items[0].hs_code", "must be 6 to 10 digits")
    ]


def test_an_empty_batch_is_a_violation() -> None:
    assert validate_cargo_batch([], LIMITS, max_batch_size=5, now=NOW) == [
        FieldViolation("cargo_reports", "at least one cargo report is required")
    ]


def test_an_oversized_batch_is_one_violation() -> None:
    reports = [cargo_report(report_id=f"CR-{i}", version=0) for i in range(4)]
    assert validate_cargo_batch(reports, LIMITS, max_batch_size=3, now=NOW) == [
        FieldViolation("cargo_reports", "has 4 cargo reports; at most 3 are allowed")
    ]


def test_the_same_report_id_and_version_twice_in_a_batch_is_a_violation() -> None:
    reports = [cargo_report(report_id="CR-1"), cargo_report(report_id="CR-2"), cargo_report(report_id="CR-1")]
    assert validate_cargo_batch(reports, LIMITS, max_batch_size=5, now=NOW) == [
        FieldViolation("cargo_reports[2].report_id", "repeats cargo_reports[0] (same report_id and version)")
    ]


def test_a_new_version_of_a_report_may_share_a_batch_with_the_old() -> None:
    reports = [cargo_report(report_id="CR-1", version=1), cargo_report(report_id="CR-1", version=2)]
    assert validate_cargo_batch(reports, LIMITS, max_batch_size=5, now=NOW) == []


def test_a_batch_judges_every_report_by_the_clock_given() -> None:
    reports = [cargo_report(filing_time=NOW + timedelta(days=2))]
    assert [v.field for v in validate_cargo_batch(reports, LIMITS, max_batch_size=5, now=NOW)] == [
        "cargo_reports[0].filing_time"
    ]


# --- no input raises ---------------------------------------------------------------------------

_strings = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
    st.sampled_from(["", " ", "\x00", "IMO 9074729", "CSQU3054383", "CNSHA", "22G1", "847130", "CN", "X" * 100_000]),
    st.from_regex(r"[A-Z\u00c0-\u00ff]{3}[UJZRX][0-9]{7}", fullmatch=True),  # near-ISO 6346, non-ASCII letters too
    st.from_regex(r"(IMO ?)?[0-9\u0660-\u0669]{7}", fullmatch=True),
)
_floats = st.floats(allow_nan=True, allow_infinity=True)
_ints = st.integers(min_value=-(2**64), max_value=2**64)
_zones = st.integers(min_value=-1439, max_value=1439).map(lambda m: timezone(timedelta(minutes=m)))
_times = st.one_of(st.none(), st.datetimes(), st.datetimes(timezones=_zones), st.just(FILED))
_parties = st.builds(Party, _strings, _strings)
_items = st.builds(
    CargoItem,
    item_number=_ints,
    hs_code=_strings,
    description=_strings,
    packages=_ints,
    gross_mass_kg=_floats,
    origin_country=_strings,
)
_containers = st.builds(
    Container,
    container_number=_strings,
    size_type_code=_strings,
    seal_numbers=st.lists(_strings, max_size=4).map(tuple),
    gross_mass_kg=_floats,
    packages=_ints,
    items=st.lists(_items, max_size=4).map(tuple),
)
_REPORT_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "report_id": _strings,
    "version": _ints,
    "filing_type": st.one_of(st.sampled_from(FilingType), _ints),
    "filer": _parties,
    "carrier": _parties,
    "transport_mode": st.one_of(st.sampled_from(TransportMode), _ints),
    "vessel_imo_number": _strings,
    "voyage_number": _strings,
    "master_transport_document_number": _strings,
    "house_transport_document_number": _strings,
    "port_of_loading": _strings,
    "transshipment_ports": st.lists(_strings, max_size=4).map(tuple),
    "port_of_discharge": _strings,
    "planned_loading_time": _times,
    "planned_arrival_time": _times,
    "filing_time": _times,
    "consignor": _parties,
    "consignee": _parties,
    "notify_party": _parties,
    "containers": st.lists(_containers, max_size=4).map(tuple),
}
_reports = st.builds(CargoReport, **_REPORT_FIELDS)
_PATH = re.compile(r"cargo_report(\.[a-z_]+(\[[0-9]+\])?)*")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example])
@given(report=_reports)
def test_any_report_gets_violations_and_never_an_exception(report: CargoReport) -> None:
    assert set(_REPORT_FIELDS) == set(CargoReport.__dataclass_fields__)  # every field is exercised
    for violation in violations(report):
        assert _PATH.fullmatch(violation.field), violation
        assert violation.description


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(sorted(_REPORT_FIELDS)), data=st.data())
def test_one_arbitrary_field_in_a_valid_report_never_raises(field: str, data: st.DataObject) -> None:
    # The rest stays valid, so every check runs against the odd value, not just the first to fail.
    report = replace(cargo_report(), **{field: data.draw(_REPORT_FIELDS[field])})
    assert all(_PATH.fullmatch(v.field) for v in violations(report))


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example])
@given(reports=st.lists(_reports, max_size=4))
def test_any_batch_gets_violations_and_never_an_exception(reports: list[CargoReport]) -> None:
    for violation in validate_cargo_batch(reports, LIMITS, max_batch_size=3, now=NOW):
        assert violation.field.startswith("cargo_reports")
        assert violation.description


def test_goods_rows_are_bounded_per_report_and_per_call() -> None:
    """A report of 500 containers of 999 items would take seconds and gigabytes to screen."""
    report = cargo_report()
    big = replace(report, containers=(replace(report.containers[0], items=tuple(
        replace(report.containers[0].items[0], item_number=n) for n in range(1, 31)
    )),))  # fmt: skip
    limits = CargoLimits(max_rows_per_report=20, max_rows_per_call=40)
    (violation,) = validate_cargo_report(big, limits, now=NOW)
    assert violation.field == "cargo_report.containers" and "30 goods items" in violation.description
    small = replace(big, containers=(replace(big.containers[0], items=big.containers[0].items[:15]),))
    batch = [replace(small, report_id=f"R-{n}") for n in range(3)]
    (too_many,) = validate_cargo_batch(batch, limits, max_batch_size=10, now=NOW)
    assert too_many.field == "cargo_reports" and "45 goods items" in too_many.description
