"""The shipped default rule set: each rule fires on its case and nothing fires on a clean filing."""

from __future__ import annotations

import datetime

import numpy as np
import pytest

from risk_service.domain.assessment import Channel, RuleHit
from risk_service.domain.declaration import (
    AeoStatus,
    Declaration,
    DeclarationType,
    Party,
)
from risk_service.domain.rules import DEFAULT_RULES_PATH, RuleSet, RuleSetHolder, item_contexts, load_rule_set
from tests.builders import rule_declaration, rule_item

FEATURES = ("unit_value_ratio", "log_value_per_kg", "importer_prior_filings", "importer_days_known", "hs_digits")
DAY = datetime.date(2026, 11, 20)
CLEAN_FEATURES = {"unit_value_ratio": 1.0, "log_value_per_kg": 6.0, "importer_prior_filings": 40.0}


_item = rule_item
_declaration = rule_declaration


@pytest.fixture(scope="module")
def default_rules() -> RuleSet:
    return load_rule_set(DEFAULT_RULES_PATH, FEATURES)


def _screen(rule_set: RuleSet, declaration: Declaration, **features: float) -> dict[str, RuleHit]:
    values = {**CLEAN_FEATURES, **features}
    rows = np.full((len(declaration.items), len(FEATURES)), np.nan)
    for name, value in values.items():
        rows[:, FEATURES.index(name)] = value
    hits = rule_set.evaluate(item_contexts(declaration, FEATURES, rows), on=DAY)
    assert len({h.rule_id for h in hits}) == len(hits)
    return {h.rule_id: h for h in hits}


def test_default_rule_set_loads_with_version_and_lists(default_rules: RuleSet) -> None:
    assert default_rules.version == "2026.11.1"
    assert "GB000000000001" in default_rules.lists["watchlisted_parties"]
    assert "CN 8517" in default_rules.lists["high_risk_origin_commodities"]


def test_clean_declaration_gets_no_hits(default_rules: RuleSet) -> None:
    assert _screen(default_rules, _declaration(_item(1), _item(2))) == {}


def test_very_low_unit_value_hits_with_red_min_channel(default_rules: RuleSet) -> None:
    hits = _screen(default_rules, _declaration(), unit_value_ratio=0.05)
    assert set(hits) == {"UV-VERY-LOW"}
    assert hits["UV-VERY-LOW"].min_channel is Channel.RED
    assert hits["UV-VERY-LOW"].message.startswith("Declared unit value is 0.05x the reference band for HS 8517130000")
    assert hits["UV-VERY-LOW"].fields == ("features.unit_value_ratio",)


def test_low_unit_value_hits_with_yellow_min_channel(default_rules: RuleSet) -> None:
    hits = _screen(default_rules, _declaration(), unit_value_ratio=0.2)
    assert set(hits) == {"UV-LOW"}
    assert hits["UV-LOW"].min_channel is Channel.YELLOW


def test_unit_value_far_above_the_band_is_a_weaker_hit(default_rules: RuleSet) -> None:
    hits = _screen(default_rules, _declaration(), unit_value_ratio=15.0)
    assert set(hits) == {"UV-HIGH"}
    low = next(r for r in default_rules.rules if r.id == "UV-LOW")
    assert 0 < hits["UV-HIGH"].weight < low.weight
    assert hits["UV-HIGH"].min_channel is None


def test_missing_unit_value_ratio_fires_no_valuation_rule(default_rules: RuleSet) -> None:
    assert _screen(default_rules, _declaration(), unit_value_ratio=float("nan")) == {}


def test_high_risk_origin_and_commodity_pair_hits_the_right_item(default_rules: RuleSet) -> None:
    declaration = _declaration(_item(1), _item(2, origin_country="CN"), export_country="CN")
    hits = _screen(default_rules, declaration)
    assert set(hits) == {"ORIGIN-HS-PAIR"}
    assert hits["ORIGIN-HS-PAIR"].item_numbers == (2,)
    assert hits["ORIGIN-HS-PAIR"].fields == ("declaration.items[1].origin_country", "declaration.items[1].hs_code")


def test_high_risk_pair_exported_from_another_country_is_transshipment(default_rules: RuleSet) -> None:
    declaration = _declaration(_item(1, origin_country="VN", hs_code="6403991000"), export_country="MY")
    hits = _screen(default_rules, declaration)
    assert set(hits) == {"ORIGIN-HS-PAIR", "TRANSSHIPMENT"}
    assert hits["TRANSSHIPMENT"].min_channel is Channel.YELLOW
    assert "exported from MY" in hits["TRANSSHIPMENT"].message


@pytest.mark.parametrize(
    ("party", "rule_id"),
    [("importer", "WATCHLIST-IMPORTER"), ("exporter", "WATCHLIST-EXPORTER"), ("declarant", "WATCHLIST-DECLARANT")],
)
def test_watchlisted_party_hits_with_red_min_channel(default_rules: RuleSet, party: str, rule_id: str) -> None:
    declaration = _declaration(_item(1), _item(2), **{party: Party("GB000000000001", "Listed Ltd")})
    hits = _screen(default_rules, declaration)
    assert set(hits) == {rule_id}
    assert hits[rule_id].min_channel is Channel.RED
    assert hits[rule_id].item_numbers == ()
    assert hits[rule_id].fields == (f"declaration.{party}.id",)
    assert "GB000000000001" in hits[rule_id].message


def test_new_importer_without_history_hits_with_moderate_weight(default_rules: RuleSet) -> None:
    hits = _screen(default_rules, _declaration(), importer_prior_filings=0.0)
    assert set(hits) == {"IMPORTER-NEW"}
    assert 0 < hits["IMPORTER-NEW"].weight < 0.3


@pytest.mark.parametrize(
    ("status", "rule_id", "weight"),
    [
        (AeoStatus.CUSTOMS_SIMPLIFICATIONS, "AEO-CREDIT-AEOC", -0.1),
        (AeoStatus.SECURITY_AND_SAFETY, "AEO-CREDIT-AEOS", -0.2),
        (AeoStatus.FULL, "AEO-CREDIT-AEOF", -0.3),
    ],
)
def test_each_aeo_tier_gets_its_own_credit_without_a_channel(
    default_rules: RuleSet, status: AeoStatus, rule_id: str, weight: float
) -> None:
    hits = _screen(default_rules, _declaration(aeo_status=status))
    assert set(hits) == {rule_id}
    assert hits[rule_id].weight == pytest.approx(weight)
    assert hits[rule_id].min_channel is None
    assert hits[rule_id].item_numbers == ()
    assert hits[rule_id].fields == ("declaration.aeo_status",)


def test_aeo_credits_grow_with_the_tier_and_never_set_a_channel(default_rules: RuleSet) -> None:
    credits = {r.id: r for r in default_rules.rules if r.id.startswith("AEO-")}
    weights = [credits[i].weight for i in ("AEO-CREDIT-AEOC", "AEO-CREDIT-AEOS", "AEO-CREDIT-AEOF")]
    assert -1 < weights[2] < weights[1] < weights[0] < 0
    assert all(r.min_channel is None for r in credits.values())


def test_aeo_credit_does_not_hide_a_risk_hit(default_rules: RuleSet) -> None:
    declaration = _declaration(aeo_status=AeoStatus.FULL, importer=Party("GB000000000001"))
    hits = _screen(default_rules, declaration)
    assert set(hits) == {"AEO-CREDIT-AEOF", "WATCHLIST-IMPORTER"}
    assert hits["WATCHLIST-IMPORTER"].min_channel is Channel.RED


def test_no_aeo_status_gets_no_credit(default_rules: RuleSet) -> None:
    assert _screen(default_rules, _declaration(aeo_status=AeoStatus.NONE)) == {}


@pytest.mark.parametrize(
    "description",
    [
        "FAK",
        "Freight  ALL kinds",
        "general cargo, 12 pallets",
        "Spare parts for pumps",
        "consolidated shipment",
        "SAMPLES",
    ],
)
def test_vague_goods_description_hits(default_rules: RuleSet, description: str) -> None:
    hits = _screen(default_rules, _declaration(_item(1), _item(2, description=description)))
    assert set(hits) == {"DESC-VAGUE"}
    assert hits["DESC-VAGUE"].item_numbers == (2,)


@pytest.mark.parametrize("description", ["Counterparts of gaskets, rubber", "Goodsell brand cotton T-shirts"])
def test_vague_terms_inside_other_words_do_not_hit(default_rules: RuleSet, description: str) -> None:
    assert _screen(default_rules, _declaration(_item(1, description=description))) == {}


def test_very_short_description_hits(default_rules: RuleSet) -> None:
    hits = _screen(default_rules, _declaration(_item(1, description="Shoes")))
    assert set(hits) == {"DESC-SHORT"}


def test_hs_code_shorter_than_the_tariff_needs_hits_on_imports_only(default_rules: RuleSet) -> None:
    item = _item(1, hs_code="85171300")
    assert set(_screen(default_rules, _declaration(item))) == {"HS-IMPRECISE"}
    assert _screen(default_rules, _declaration(item, type=DeclarationType.EXPORT)) == {}


def test_three_weak_signals_accumulate_to_a_yellow_minimum(default_rules: RuleSet) -> None:
    declaration = _declaration(_item(1, hs_code="85171300", description="General cargo"))
    hits = _screen(default_rules, declaration, importer_prior_filings=0.0)
    assert set(hits) == {"IMPORTER-NEW", "DESC-VAGUE", "HS-IMPRECISE", "WEAK-SIGNALS"}
    assert hits["WEAK-SIGNALS"].min_channel is Channel.YELLOW
    assert hits["WEAK-SIGNALS"].message == "3 weak risk indicators together."


def test_two_weak_signals_do_not_accumulate(default_rules: RuleSet) -> None:
    declaration = _declaration(_item(1, description="General cargo"))
    assert set(_screen(default_rules, declaration, importer_prior_filings=0.0)) == {"IMPORTER-NEW", "DESC-VAGUE"}


def test_every_default_rule_is_exercised_by_a_test(default_rules: RuleSet) -> None:
    tested = {
        "UV-VERY-LOW",
        "UV-LOW",
        "UV-HIGH",
        "ORIGIN-HS-PAIR",
        "TRANSSHIPMENT",
        "WATCHLIST-IMPORTER",
        "WATCHLIST-EXPORTER",
        "WATCHLIST-DECLARANT",
        "IMPORTER-NEW",
        "AEO-CREDIT-AEOC",
        "AEO-CREDIT-AEOS",
        "AEO-CREDIT-AEOF",
        "DESC-VAGUE",
        "DESC-SHORT",
        "HS-IMPRECISE",
        "WEAK-SIGNALS",
    }
    assert {r.id for r in default_rules.rules} == tested
    assert all(r.enabled and -1 <= r.weight <= 1 for r in default_rules.rules)


def test_default_rules_without_feature_rows_still_screen_parties(default_rules: RuleSet) -> None:
    declaration = _declaration(importer=Party("GB000000000001"))
    hits = default_rules.evaluate(item_contexts(declaration, FEATURES, None), on=DAY)
    assert [h.rule_id for h in hits] == ["WATCHLIST-IMPORTER"]
    assert default_rules.runtime_error_count == 0


def test_holder_serves_the_default_rule_set() -> None:
    holder = RuleSetHolder(DEFAULT_RULES_PATH, FEATURES)
    assert holder.current.version == "2026.11.1"
    assert holder.reload_if_changed() is False
