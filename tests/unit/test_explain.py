"""Model contributions said in words: one sentence per contribution, never an error."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

import features
from risk_service.domain.assessment import FeatureContribution
from risk_service.domain.declaration import Declaration, Party
from risk_service.domain.entity_history import EntityHistory
from risk_service.domain.feature_rows import declaration_columns
from risk_service.domain.permits.model import ItemPermitFacts
from risk_service.domain.review.explain import Explanation, explain
from tests.builders import declaration, item

# A typical model input per feature, as build_feature_matrix would give it for one goods item.
TYPICAL: dict[str, float] = {
    "unit_value_ratio": 0.125,
    "unit_value_zscore": -2.4,
    "unit_value_band_level": 6.0,
    "log_customs_value": math.log1p(3_400_000.0),
    "log_value_per_kg": math.log(18_888.89),
    "log_value_per_unit": math.log(34_000.0),
    "tax_per_value": 0.1,
    "gross_net_ratio": 1.11,
    "hs_chapter": 84.0,
    "hs_heading": 8471.0,
    "hs_digits": 10.0,
    "origin_code": 65.0,  # CN
    "export_code": 65.0,
    "origin_differs_from_export": 0.0,
    "quantity_unit_code": 3.0,  # NAR
    "transport_mode": 1.0,
    "declaration_type": 1.0,
    "aeo_status": 1.0,
    "preference_claimed": 0.0,
    "permit_count": 1.0,
    "permit_balance_used": 0.85,
    "permit_days_to_expiry": 12.0,
    "item_count": 1.0,
    "importer_prior_filings": 37.0,
    "importer_days_known": 420.0,
    "importer_finding_rate": 0.12,
    "declarant_finding_rate": 0.04,
    "hs_origin_finding_rate": 0.3,
    "office_importer_finding_rate": 0.08,
}
GENERIC = "Model input"  # how the fallback sentence starts


def filing() -> Declaration:
    return declaration(items=(item(item_number=1, hs_code="8517120000", origin_country="CN"),))


def said(feature: str, value: float, contribution: float = 0.5, d: Declaration | None = None, number: int = 1) -> str:
    (e,) = explain(d or filing(), [FeatureContribution(feature, value, contribution, number)])
    return e.text


def test_every_feature_has_its_own_template() -> None:
    assert set(TYPICAL) == set(features.FEATURE_NAMES)


@pytest.mark.parametrize("feature", features.FEATURE_NAMES)
@pytest.mark.parametrize("value", [math.nan, "typical"])
def test_every_feature_reads_without_nan(feature: str, value: float | str) -> None:
    v = TYPICAL[feature] if value == "typical" else math.nan
    text = said(feature, v)
    assert text
    assert not text.startswith(GENERIC)
    assert "nan" not in text


def test_one_explanation_per_contribution_in_order() -> None:
    contributions = [
        FeatureContribution("importer_days_known", 3.0, 0.4, 1),
        FeatureContribution("unit_value_ratio", 2.0, -0.1, 1),
        FeatureContribution("no_such_feature", 1.0, 0.2, 1),
    ]
    out = explain(filing(), contributions)
    assert [(e.item_number, e.feature, e.contribution) for e in out] == [
        (c.item_number, c.feature, c.contribution) for c in contributions
    ]
    assert all(isinstance(e, Explanation) for e in out)
    assert explain(filing(), []) == []


def test_unit_value_below_the_reference() -> None:
    assert said("unit_value_ratio", 0.125) == "Value per kg 8.0x below the reference for HS 851712 (raised the risk)"


def test_unit_value_above_the_reference() -> None:
    assert (
        said("unit_value_ratio", 3.0, -0.2) == "Value per kg 3.0x above the reference for HS 851712 (lowered the risk)"
    )
    assert said("unit_value_ratio", 250.0) == "Value per kg 250x above the reference for HS 851712 (raised the risk)"
    assert said("unit_value_ratio", 1.02) == "Value per kg close to the reference for HS 851712 (raised the risk)"


def test_unit_value_names_the_fallback_reference_when_the_band_level_is_known() -> None:
    out = explain(
        filing(),
        [
            FeatureContribution("unit_value_ratio", 0.2, 0.9, 1),
            FeatureContribution("unit_value_band_level", 4.0, 0.1, 1),
        ],
    )
    assert [e.text for e in out] == [
        "Value per kg 5.0x below the reference for HS heading 8517 (raised the risk)",
        "Value per kg compared with the reference for HS heading 8517, too few filings of HS 851712 (raised the risk)",
    ]


def test_missing_unit_value_ratio_says_why() -> None:
    assert said("unit_value_ratio", math.nan) == "No reference value per kg for HS 851712 (raised the risk)"
    no_mass = declaration(items=(item(hs_code="8517120000", net_mass_kg=0.0),))
    assert said("unit_value_ratio", math.nan, d=no_mass) == (
        "No value per kg to compare with the reference for HS 851712: customs value or net mass missing "
        "(raised the risk)"
    )


def test_unit_value_zscore_in_standard_deviations() -> None:
    assert said("unit_value_zscore", -2.44) == (
        "Value per kg 2.4 standard deviations below the reference for HS 851712 (raised the risk)"
    )


def test_finding_rates_are_percentages_of_the_named_entity() -> None:
    assert said("importer_finding_rate", 0.125) == (
        "Past inspections of importer IMP-0001 found irregularities at a smoothed rate of 12% (raised the risk)"
    )
    assert said("hs_origin_finding_rate", 0.031, -0.3) == (
        "Past inspections of HS 851712 goods from CN found irregularities at a smoothed rate of 3.1% (lowered the risk)"
    )
    assert said("office_importer_finding_rate", 0.2) == (
        "Past inspections of importer IMP-0001 at office 020 found irregularities at a smoothed rate of 20% "
        "(raised the risk)"
    )
    assert said("declarant_finding_rate", math.nan) == "Finding rate of declarant BRK-0001 unknown (raised the risk)"


def test_days_known_and_a_new_importer() -> None:
    assert said("importer_days_known", 420.7, -0.2) == "Importer IMP-0001 first filed 420 days ago (lowered the risk)"
    assert said("importer_days_known", 0.3) == "Importer IMP-0001 first filed less than a day ago (raised the risk)"
    assert said("importer_days_known", math.nan) == ("Importer IMP-0001 is new: no earlier filings (raised the risk)")
    anonymous = replace(filing(), importer=Party(""))
    assert said("importer_days_known", math.nan, d=anonymous) == (
        "Importer not named, so no filing history (raised the risk)"
    )


def test_booleans_read_both_ways() -> None:
    assert said("origin_differs_from_export", 1.0, d=replace(filing(), export_country="HK")) == (
        "Origin CN differs from the country of dispatch HK (raised the risk)"
    )
    assert (
        said("origin_differs_from_export", 0.0, -0.1) == "Origin CN is also the country of dispatch (lowered the risk)"
    )
    assert said("preference_claimed", 0.0) == "No tariff preference claimed (raised the risk)"


def test_categorical_codes_are_decoded() -> None:
    assert said("origin_code", 65.0) == "Origin CN (raised the risk)"
    assert said("origin_code", math.nan, d=declaration(items=(item(origin_country="China"),))) == (
        "Country of origin China not a two-letter country code (raised the risk)"
    )
    assert said("hs_chapter", 4.0, -1.0) == "HS chapter 04 (lowered the risk)"
    assert said("hs_chapter", math.nan, d=declaration(items=(item(hs_code="85A7"),))) == (
        "HS code 85A7 not a 4 to 10 digit code (raised the risk)"
    )
    assert said("transport_mode", 4.0) == "Transport by air (raised the risk)"
    assert said("transport_mode", 0.0) == "Transport mode not stated (raised the risk)"
    assert said("transport_mode", 6.0) == "Transport mode code 6 (raised the risk)"
    assert said("quantity_unit_code", 3.0) == "Quantity unit NAR: piece (raised the risk)"
    assert said("aeo_status", 4.0, -0.5) == "Trader is a full AEO (lowered the risk)"


def test_permit_balance_and_expiry() -> None:
    assert said("permit_balance_used", 0.85) == "A cited permit line 85% drawn before this filing (raised the risk)"
    assert said("permit_balance_used", 1.3) == (
        "A cited permit line overdrawn: 130% of it drawn before this filing (raised the risk)"
    )
    assert said("permit_days_to_expiry", -5.5) == "A cited permit expired 5 days before lodgement (raised the risk)"
    assert said("permit_days_to_expiry", 1.0) == "A cited permit expires 1 day after lodgement (raised the risk)"


def test_unknown_feature_gets_a_generic_sentence() -> None:
    assert said("days_since_full_moon", 3.25) == "Model input days_since_full_moon was 3.25 (raised the risk)"
    assert (
        said("days_since_full_moon", math.nan, -0.1)
        == "Model input days_since_full_moon was missing (lowered the risk)"
    )


def test_item_not_in_the_declaration_gets_a_generic_sentence() -> None:
    assert said("unit_value_ratio", 0.125, number=9) == (
        "Model input unit_value_ratio was 0.125 on goods item 9, not in this declaration (raised the risk)"
    )


def test_zero_contribution_states_no_direction() -> None:
    assert said("item_count", 3.0, 0.0) == "Declaration has 3 goods items"


def test_texts_from_the_served_feature_path() -> None:
    """The values build_feature_matrix gives a served item read as the item's facts."""
    d = declaration(
        items=(item(hs_code="8471300000", customs_value=3_400_000.0, net_mass_kg=180.0, permit_references=("P-1",)),)
    )
    reference = math.log(3_400_000.0 / 180.0 * 8)  # the HS6 reference is 8x the item's value per kg
    outcomes = features.EntityOutcomes(features.OutcomePrior(0.1), None, {"importer": {d.importer.id: (20, 6)}})
    state = features.FeatureState(
        {"847130": features.UnitValueBand(reference, 0.5, 40)}, {}, None, min_count=20, min_scale=0.05
    ).with_outcomes(outcomes)
    history = EntityHistory()
    assert d.lodgement_time is not None
    history.record(replace(d, declaration_id="EARLIER", lodgement_time=d.lodgement_time - timedelta(days=30)))
    columns, _ = declaration_columns([d], history, [[ItemPermitFacts(0.5, 10.0)]], outcomes)
    row = features.build_feature_matrix(columns, state)[0]
    contributions = [FeatureContribution(name, float(row[j]), 0.1, 1) for j, name in enumerate(features.FEATURE_NAMES)]
    texts = {e.feature: e.text.removesuffix(" (raised the risk)") for e in explain(d, contributions)}
    assert texts["unit_value_ratio"] == "Value per kg 8.0x below the reference for HS 847130"
    assert texts["unit_value_band_level"] == "Value per kg compared with the reference for HS 847130"
    assert texts["log_customs_value"] == "Customs value 3,400,000"
    assert texts["log_value_per_unit"] == "Customs value 34,000.00 per piece"
    assert texts["tax_per_value"] == "Duties and taxes 10% of the customs value"
    assert texts["hs_heading"] == "HS heading 8471"
    assert texts["origin_code"] == "Origin CN"
    assert texts["export_code"] == "Country of dispatch CN"
    assert texts["declaration_type"] == "Import declaration"
    assert texts["permit_balance_used"] == "A cited permit line 50% drawn before this filing"
    assert texts["permit_days_to_expiry"] == "A cited permit expires 10 days after lodgement"
    assert texts["importer_prior_filings"] == "Importer IMP-0001 filed 1 declaration before"
    assert texts["importer_days_known"] == "Importer IMP-0001 first filed 30 days ago"
    # (6 + 20 * 0.1) / (20 + 20) = 0.2
    assert texts["importer_finding_rate"] == (
        "Past inspections of importer IMP-0001 found irregularities at a smoothed rate of 20%"
    )
    assert not any(t.startswith(GENERIC) or "nan" in t for t in texts.values())


@given(
    feature=st.sampled_from([*features.FEATURE_NAMES, "unknown_feature"]),
    value=st.floats(allow_nan=True, allow_infinity=True),
    contribution=st.floats(allow_nan=True, allow_infinity=True),
    number=st.integers(min_value=-2, max_value=3),
)
def test_any_input_gets_a_sentence(feature: str, value: float, contribution: float, number: int) -> None:
    (e,) = explain(filing(), [FeatureContribution(feature, value, contribution, number)])
    assert e.text
    assert "nan" not in e.text
