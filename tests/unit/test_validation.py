"""Declaration validation names every violating field by its path."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from risk_service.domain.declaration import AeoStatus, DeclarationType, DutyTax, Party, TransportMode
from risk_service.domain.validation import ValidationLimits, validate_batch, validate_declaration
from tests.builders import declaration, item

LIMITS = ValidationLimits(max_items=5, max_string_length=64, max_id_length=20)


def fields(d, **kw):  # type: ignore[no-untyped-def]
    return {v.field for v in validate_declaration(d, LIMITS, **kw)}


def test_a_clean_declaration_has_no_violations() -> None:
    assert validate_declaration(declaration(), LIMITS) == []


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"declaration_id": ""}, "declaration.declaration_id"),
        ({"declaration_id": "X" * 21}, "declaration.declaration_id"),
        ({"declaration_id": "has space"}, "declaration.declaration_id"),
        ({"version": 0}, "declaration.version"),
        ({"type": DeclarationType.UNSPECIFIED}, "declaration.type"),
        ({"lodgement_time": None}, "declaration.lodgement_time"),
        ({"lodgement_time": datetime(2999, 1, 1, tzinfo=UTC)}, "declaration.lodgement_time"),
        ({"lodgement_time": datetime(1, 1, 1, tzinfo=UTC)}, "declaration.lodgement_time"),
        ({"lodgement_time": datetime(1970, 1, 1, tzinfo=UTC)}, "declaration.lodgement_time"),
        ({"customs_office": ""}, "declaration.customs_office"),
        ({"declarant": Party("")}, "declaration.declarant.id"),
        ({"importer": Party("")}, "declaration.importer.id"),
        ({"importer": Party("IMP", "n" * 65)}, "declaration.importer.name"),
        ({"aeo_status": AeoStatus.UNSPECIFIED}, "declaration.aeo_status"),
        ({"export_country": "XX"}, "declaration.export_country"),
        ({"origin_country": "cn"}, "declaration.origin_country"),
        ({"destination_country": ""}, "declaration.destination_country"),
        ({"transport_mode": TransportMode.UNSPECIFIED}, "declaration.transport_mode"),
        ({"container_numbers": ("BAD",)}, "declaration.container_numbers[0]"),
        ({"incoterm": "FOO"}, "declaration.incoterm"),
        ({"invoice_currency": "XYZ"}, "declaration.invoice_currency"),
        ({"invoice_amount": -1.0}, "declaration.invoice_amount"),
        ({"invoice_amount": math.inf}, "declaration.invoice_amount"),
        ({"items": ()}, "declaration.items"),
        ({"items": tuple(item(item_number=i) for i in range(1, 7))}, "declaration.items"),
    ],
)
def test_declaration_level_violations_name_the_field(overrides: dict, path: str) -> None:  # type: ignore[type-arg]
    assert path in fields(declaration(**overrides))


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"hs_code": "12345"}, "hs_code"),
        ({"hs_code": "12345678901"}, "hs_code"),
        ({"hs_code": "8471.30"}, "hs_code"),
        ({"description": " "}, "description"),
        ({"description": "x" * 65}, "description"),
        ({"description": "bad\x00byte"}, "description"),
        ({"quantity": math.nan}, "quantity"),
        ({"quantity_unit": "kilograms"}, "quantity_unit"),
        ({"net_mass_kg": -5.0}, "net_mass_kg"),
        ({"gross_mass_kg": 10.0, "net_mass_kg": 20.0}, "gross_mass_kg"),
        ({"customs_value": -math.inf}, "customs_value"),
        ({"origin_country": "ZZ"}, "origin_country"),
        ({"item_number": 0}, "item_number"),
        ({"permit_references": ("",)}, "permit_references[0]"),
        ({"duties_and_taxes": (DutyTax("A00", -1.0),)}, "duties_and_taxes[0].amount"),
    ],
)
def test_item_violations_name_the_item_and_field(overrides: dict, path: str) -> None:  # type: ignore[type-arg]
    d = declaration(items=(item(), item(item_number=2), item(**{"item_number": 3, **overrides})))
    assert f"declaration.items[2].{path}" in fields(d)


def test_duplicate_item_numbers_are_refused() -> None:
    d = declaration(items=(item(item_number=1), item(item_number=1)))
    assert fields(d) == {"declaration.items[1].item_number"}


def test_every_violation_is_reported_not_just_the_first() -> None:
    d = declaration(declaration_id="", invoice_currency="???", items=(item(hs_code="1", origin_country="QQ"),))
    assert fields(d) >= {
        "declaration.declaration_id",
        "declaration.invoice_currency",
        "declaration.items[0].hs_code",
        "declaration.items[0].origin_country",
    }


def test_export_requires_exporter_not_importer() -> None:
    d = declaration(type=DeclarationType.EXPORT, importer=Party(""), exporter=Party(""))
    assert fields(d) == {"declaration.exporter.id"}


def test_batch_paths_carry_the_position_and_repeats_are_refused() -> None:
    good = declaration()
    bad = declaration(items=(item(hs_code="x"),))
    violations = {v.field for v in validate_batch([good, bad, replace(good)], LIMITS)}
    assert violations == {"declarations[1].items[0].hs_code", "declarations[2].declaration_id"}
