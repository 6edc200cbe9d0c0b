"""Unit conversion between UN/ECE Recommendation 20 codes, by table."""

from __future__ import annotations

import math

import pytest

from risk_service.domain.permits.units import MASS, UNITS, convert, dimension, is_known_unit


@pytest.mark.parametrize(
    ("quantity", "source", "target", "expected"),
    [
        (1.0, "TNE", "KGM", 1000.0),
        (120.0, "KGM", "TNE", 0.12),
        (2500.0, "GRM", "KGM", 2.5),
        (3.0, "MTQ", "LTR", 3000.0),
        (750.0, "MLT", "LTR", 0.75),
        (2.0, "DZN", "PCE", 24.0),
        (5.0, "PR", "NAR", 10.0),
        (5.0, "NPR", "C62", 10.0),
        (10.0, "H87", "PR", 5.0),
        (7.0, "NAR", "PCE", 7.0),
    ],
)
def test_units_of_one_dimension_convert_by_the_table(
    quantity: float, source: str, target: str, expected: float
) -> None:
    result = convert(quantity, source, target)
    assert result is not None
    assert result == pytest.approx(expected)


def test_conversions_of_whole_factors_are_exact() -> None:
    assert convert(120.0, "KGM", "TNE") == 0.12
    assert convert(1.0, "TNE", "GRM") == 1_000_000.0


@pytest.mark.parametrize(
    ("source", "target"),
    [("KGM", "LTR"), ("NAR", "KGM"), ("LTR", "PCE"), ("BX", "NAR"), ("KGM", "XYZ"), ("", "KGM"), ("KGM", "")],
)
def test_units_of_different_dimensions_or_unknown_units_do_not_convert(source: str, target: str) -> None:
    assert convert(1.0, source, target) is None


def test_a_unit_converts_to_itself_even_when_the_table_does_not_know_it() -> None:
    assert convert(4.0, "BX", "BX") == 4.0


@pytest.mark.parametrize("quantity", [math.nan, math.inf, -math.inf])
def test_a_quantity_that_is_not_finite_does_not_convert(quantity: float) -> None:
    assert convert(quantity, "KGM", "KGM") is None
    assert convert(quantity, "KGM", "TNE") is None


def test_known_units_are_the_table_and_case_sensitive() -> None:
    assert all(is_known_unit(code) for code in UNITS)
    assert not is_known_unit("kgm")
    assert not is_known_unit("")
    assert dimension("TNE") == MASS
    assert dimension("BX") is None
