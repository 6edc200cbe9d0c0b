"""Permit validation names every violating field by its proto path."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from risk_service.domain.permits.model import PermitStatus, PermitType
from risk_service.domain.permits.validation import MAX_ALLOWED_ENTRIES, validate_permit
from risk_service.domain.validation import ValidationLimits
from tests.permit_builders import VALID_FROM, goods_line, permit

LIMITS = ValidationLimits(max_items=5, max_string_length=64, max_id_length=20)


def _fields(**overrides: Any) -> set[str]:
    return {v.field for v in validate_permit(permit(**overrides), LIMITS)}


def test_a_clean_permit_has_no_violations() -> None:
    assert validate_permit(permit(), LIMITS) == []


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"permit_id": ""}, "permit.permit_id"),
        ({"permit_id": "P" * 21}, "permit.permit_id"),
        ({"permit_id": "has space"}, "permit.permit_id"),
        ({"issuing_agency": ""}, "permit.issuing_agency"),
        ({"holder_id": "H" * 21}, "permit.holder_id"),
        ({"type": PermitType.UNSPECIFIED}, "permit.type"),
        ({"type": 42}, "permit.type"),
        ({"status": PermitStatus.UNSPECIFIED}, "permit.status"),
        ({"goods_lines": ()}, "permit.goods_lines"),
        (
            {"goods_lines": tuple(goods_line(line_number=n, hs_prefix=f"84{n:02d}") for n in range(1, 7))},
            "permit.goods_lines",
        ),
        ({"valid_from": None}, "permit.valid_from_time"),
        ({"valid_to": None}, "permit.valid_to_time"),
        ({"valid_to": VALID_FROM}, "permit.valid_to_time"),
        ({"allowed_origin_countries": ("CN", "XX")}, "permit.allowed_origin_countries[1]"),
        ({"allowed_origin_countries": ("cn",)}, "permit.allowed_origin_countries[0]"),
        ({"allowed_origin_countries": ("CN",) * (MAX_ALLOWED_ENTRIES + 1)}, "permit.allowed_origin_countries"),
        ({"allowed_customs_offices": ("020", "")}, "permit.allowed_customs_offices[1]"),
        ({"allowed_customs_offices": ("O" * 21,)}, "permit.allowed_customs_offices[0]"),
        ({"allowed_customs_offices": ("020",) * (MAX_ALLOWED_ENTRIES + 1)}, "permit.allowed_customs_offices"),
        ({"end_use": "e" * 65}, "permit.end_use"),
    ],
)
def test_permit_level_violations_name_the_field(overrides: dict[str, Any], path: str) -> None:
    assert path in _fields(**overrides)


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"line_number": 0}, "permit.goods_lines[0].line_number"),
        ({"hs_prefix": "8"}, "permit.goods_lines[0].hs_prefix"),
        ({"hs_prefix": "84713000001"}, "permit.goods_lines[0].hs_prefix"),
        ({"hs_prefix": "84.71"}, "permit.goods_lines[0].hs_prefix"),
        ({"unit": ""}, "permit.goods_lines[0].unit"),
        ({"unit": "BOX"}, "permit.goods_lines[0].unit"),
        ({"authorised_quantity": -1.0}, "permit.goods_lines[0].authorised_quantity"),
        ({"authorised_quantity": math.nan}, "permit.goods_lines[0].authorised_quantity"),
        ({"authorised_value": math.inf}, "permit.goods_lines[0].authorised_value"),
        ({"authorised_value": -5.0}, "permit.goods_lines[0].authorised_value"),
        ({"description": "d" * 65}, "permit.goods_lines[0].description"),
    ],
)
def test_goods_line_violations_name_the_field(overrides: dict[str, Any], path: str) -> None:
    assert path in _fields(goods_lines=(goods_line(**overrides),))


def test_duplicate_line_numbers_are_refused_on_the_later_line() -> None:
    lines = (goods_line(), goods_line(hs_prefix="8517"), goods_line(line_number=2, hs_prefix="8518"))
    violations = validate_permit(permit(goods_lines=lines), LIMITS)
    assert [v.field for v in violations] == ["permit.goods_lines[1].line_number"]
    assert "duplicates line number 1" in violations[0].description


def test_duplicate_hs_prefixes_are_refused() -> None:
    lines = (goods_line(), goods_line(line_number=2))
    assert _fields(goods_lines=lines) == {"permit.goods_lines[1].hs_prefix"}


def test_a_line_limiting_only_value_needs_no_unit() -> None:
    line = goods_line(unit="", authorised_quantity=None, authorised_value=5_000_000.0)
    assert validate_permit(permit(goods_lines=(line,)), LIMITS) == []


def test_unspecified_status_is_allowed_when_the_registry_sets_it() -> None:
    unset = permit(status=PermitStatus.UNSPECIFIED)
    assert validate_permit(unset, LIMITS, allow_unspecified_status=True) == []
    assert [v.field for v in validate_permit(unset, LIMITS)] == ["permit.status"]


def test_paths_start_with_the_given_prefix() -> None:
    violations = validate_permit(permit(permit_id=""), LIMITS, path="permits[3]")
    assert [v.field for v in violations] == ["permits[3].permit_id"]


def test_a_naive_validity_time_is_compared_as_utc_rather_than_raising() -> None:
    naive_end = datetime(2025, 12, 31)
    assert _fields(valid_to=naive_end) == {"permit.valid_to_time"}
    assert validate_permit(replace(permit(), valid_from=datetime(2026, 1, 1)), LIMITS) == []
