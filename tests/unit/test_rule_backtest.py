"""Rule backtesting: per-rule and whole-set counts, channels and precision on labelled history."""

from __future__ import annotations

import json
import math
import textwrap
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv
import pytest

import features
from risk_service.domain.assessment import Channel
from risk_service.domain.declaration import AeoStatus, DeclarationType, TransportMode
from risk_service.domain.feature_rows import declaration_columns
from risk_service.domain.rules import DEFAULT_RULES_PATH, RuleSet, load_rule_set
from risk_service.domain.rules.backtest import (
    BacktestReport,
    PointInTimeEntityHistory,
    RuleBacktest,
    backtest,
    backtest_to_dict,
    format_backtest,
)
from risk_service.history_declarations import (
    backtest_history,
    declarations_from_history,
    permit_facts_from_history,
)
from training.history import HISTORY_COLUMNS, read_history
from training.synthetic import generate_history
from training.train import prepare_history

# Six declarations, seven items. D1's items are listed out of order; D3 and D6 were not inspected;
# D4 was a random control; D5 had a finding no rule points at.
HISTORY = """\
declaration_id,item_number,lodgement_time,hs_code,origin_country,customs_value,importer_id,aeo_status,inspected,finding,revenue_recovered,random_control
D1,2,2026-03-01T08:00:00Z,847130,DE,20000,IMP-A,1,1,1,100,0
D1,1,2026-03-01T08:00:00Z,847130,CN,500,IMP-A,1,1,0,,0
D2,1,2026-03-01T09:00:00Z,610910,CN,800,IMP-X,1,1,0,,0
D3,1,2026-03-02T10:00:00Z,610910,CN,900,IMP-B,1,0,,,0
D4,1,2026-03-03T10:00:00Z,870323,DE,50000,IMP-X,4,1,1,2000,1
D5,1,2026-03-04T10:00:00Z,220421,FR,100,IMP-C,1,1,1,,0
D6,1,2026-03-05T10:00:00Z,950300,US,200,IMP-D,1,0,,,0
"""

RULES = """\
version: "bt-1"
rules:
  - id: ORIGIN-CN
    description: "origin CN"
    condition: "item.origin_country == 'CN'"
    weight: 0.15
  - id: HIGH-VALUE
    description: "high value"
    condition: "item.customs_value > 10000"
    weight: 0.3
    min_channel: RED
  - id: IMPORTER-X
    description: "importer X"
    condition: "declaration.importer_id == 'IMP-X'"
    weight: 0.25
  - id: AEO-FULL
    description: "credit"
    condition: "declaration.aeo_status == 'FULL'"
    weight: -0.3
  - id: NEVER
    description: "nothing has this code"
    condition: "item.hs_code == '999999'"
    weight: 0.5
  # Weight 0: these never change a channel, so the set's channels are the same with or without them.
  - id: REPEAT-IMPORTER
    description: "seen before"
    condition: "features.importer_prior_filings >= 1"
    weight: 0.0
  - id: FUTURE-CN
    description: "not live yet"
    condition: "item.origin_country == 'CN'"
    weight: 0.0
    valid_from: 2027-01-01
  - id: SHORT-DESCRIPTION
    description: "the history has no descriptions"
    condition: "len(item.description) < 8"
    weight: 0.0
"""


@pytest.fixture
def rule_set(tmp_path: Path) -> RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(RULES), encoding="utf-8")
    return load_rule_set(path, features.FEATURE_NAMES)


@pytest.fixture
def history(tmp_path: Path) -> pd.DataFrame:
    path = tmp_path / "history.csv"
    path.write_text(HISTORY, encoding="utf-8")
    return read_history(path)


def _rule(report: BacktestReport, rule_id: str) -> RuleBacktest:
    return next(r for r in report.rules if r.rule_id == rule_id)


def _by_channel(green: int = 0, blue: int = 0, yellow: int = 0, red: int = 0) -> dict[Channel, int]:
    return {Channel.GREEN: green, Channel.BLUE: blue, Channel.YELLOW: yellow, Channel.RED: red}


def test_history_rows_become_declarations_with_items_in_order_and_outcomes(history: pd.DataFrame) -> None:
    cases = declarations_from_history(history)

    assert [d.declaration_id for d, _ in cases] == ["D1", "D2", "D3", "D4", "D5", "D6"]
    d1, o1 = cases[0]
    assert [(i.item_number, i.origin_country) for i in d1.items] == [(1, "CN"), (2, "DE")]
    assert d1.origin_country == ""  # the items disagree
    assert cases[1][0].origin_country == "CN"
    assert (o1.inspected, o1.finding, o1.revenue_recovered, o1.random_control) == (True, True, 100.0, False)
    _, o3 = cases[2]
    assert not o3.inspected and not o3.finding and math.isnan(o3.revenue_recovered)
    d4, o4 = cases[3]
    assert d4.aeo_status is AeoStatus.FULL and o4.random_control and o4.revenue_recovered == 2000.0
    # Columns the file leaves out take the schema's defaults; fields it cannot carry are neutral.
    assert d4.type is DeclarationType.IMPORT and d4.transport_mode is TransportMode.UNSPECIFIED
    assert d4.items[0].description == "" and math.isnan(d4.invoice_amount)
    assert d4.lodgement_time is not None and d4.lodgement_time.isoformat() == "2026-03-03T10:00:00+00:00"
    assert [len(f) for f in permit_facts_from_history(history)] == [2, 1, 1, 1, 1, 1]


def test_each_rule_reports_hits_channels_and_precision(rule_set: RuleSet, history: pd.DataFrame) -> None:
    report = backtest_history(rule_set, history)

    origin = _rule(report, "ORIGIN-CN")
    assert (origin.hits, origin.labelled, origin.findings) == (3, 2, 1)  # D3 is hit but not inspected
    assert origin.precision == 0.5
    assert origin.channel_alone is Channel.BLUE  # 0.15 alone
    assert origin.hits_by_channel == _by_channel(blue=1, yellow=1, red=1)  # D3, D2, D1
    assert origin.revenue_recovered == 100.0

    high = _rule(report, "HIGH-VALUE")
    assert (high.hits, high.labelled, high.findings, high.precision) == (2, 2, 2, 1.0)
    assert high.channel_alone is Channel.RED and high.hits_by_channel == _by_channel(red=2)
    assert high.revenue_recovered == 2100.0

    importer = _rule(report, "IMPORTER-X")
    assert (importer.hits, importer.labelled, importer.findings, importer.precision) == (2, 2, 1, 0.5)
    assert importer.channel_alone is Channel.YELLOW and importer.hits_by_channel == _by_channel(yellow=1, red=1)

    credit = _rule(report, "AEO-FULL")
    assert (credit.hits, credit.channel_alone) == (1, Channel.GREEN)

    # Point-in-time importer history: D4 is IMP-X's second filing, D2 its first.
    assert _rule(report, "REPEAT-IMPORTER").hits == 1


def test_a_rule_that_hits_nothing_reports_zero_and_nan_precision(rule_set: RuleSet, history: pd.DataFrame) -> None:
    report = backtest_history(rule_set, history)

    never = _rule(report, "NEVER")
    assert (never.hits, never.labelled, never.findings, never.active) == (0, 0, 0, 6)
    assert math.isnan(never.precision) and math.isnan(never.revenue_recovered)
    assert never.hits_by_channel == _by_channel()
    rule_json = next(r for r in backtest_to_dict(report)["rules"] if r["rule_id"] == "NEVER")
    assert rule_json["precision"] is None


def test_the_whole_set_reports_channels_precision_and_recall(rule_set: RuleSet, history: pd.DataFrame) -> None:
    report = backtest_history(rule_set, history)

    assert (report.declarations, report.items, report.labelled, report.findings) == (6, 7, 4, 3)
    channels = {c.channel: c for c in report.channels}
    assert {c: channels[c].declarations for c in channels} == _by_channel(green=2, blue=1, yellow=1, red=2)
    assert (channels[Channel.GREEN].labelled, channels[Channel.GREEN].findings) == (1, 1)  # D5, missed
    assert math.isnan(channels[Channel.BLUE].precision)  # D3 was not inspected
    assert channels[Channel.YELLOW].precision == 0.0
    assert channels[Channel.RED].precision == 1.0
    assert (channels[Channel.RED].control_labelled, channels[Channel.RED].control_findings) == (1, 1)
    assert report.recall == pytest.approx(2 / 3)  # D1 and D4 of D1, D4, D5
    assert report.rule_set_version == "bt-1" and report.feature_state_fitted


def test_rules_are_evaluated_on_lodgement_dates_unless_a_day_is_given(rule_set: RuleSet, history: pd.DataFrame) -> None:
    as_lodged = backtest_history(rule_set, history)
    ahead = backtest_history(rule_set, history, on=date(2027, 1, 1))

    assert (_rule(as_lodged, "FUTURE-CN").active, _rule(as_lodged, "FUTURE-CN").hits) == (0, 0)
    assert (_rule(ahead, "FUTURE-CN").active, _rule(ahead, "FUTURE-CN").hits) == (6, 3)
    assert ahead.evaluated_on == date(2027, 1, 1)
    assert [c.declarations for c in ahead.channels] == [c.declarations for c in as_lodged.channels]


def test_rules_reading_fields_the_history_lacks_are_marked_and_skipped(
    rule_set: RuleSet, history: pd.DataFrame
) -> None:
    skipped = _rule(backtest_history(rule_set, history), "SHORT-DESCRIPTION")
    assert skipped.skipped and skipped.missing_names == ("item.description",)
    assert (skipped.active, skipped.hits) == (0, 0)

    # Evaluated anyway, it fires on every blank description: why skipping is the default.
    evaluated = _rule(backtest_history(rule_set, history, skip_missing=False), "SHORT-DESCRIPTION")
    assert not evaluated.skipped and evaluated.missing_names == ("item.description",)
    assert evaluated.hits == 6


def test_the_domain_backtest_needs_no_history_file(rule_set: RuleSet, history: pd.DataFrame) -> None:
    report = backtest(rule_set, declarations_from_history(history), disabled=["ORIGIN-CN"])

    assert _rule(report, "ORIGIN-CN").skipped and _rule(report, "ORIGIN-CN").hits == 0
    assert _rule(report, "HIGH-VALUE").hits == 2
    with pytest.raises(ValueError, match="NO-SUCH-RULE"):
        backtest(rule_set, declarations_from_history(history), disabled=["NO-SUCH-RULE"])


def test_the_table_lists_rules_by_id_and_json_has_no_nan(rule_set: RuleSet, history: pd.DataFrame) -> None:
    report = backtest_history(rule_set, history)
    text = format_backtest(report)

    listed = [line.split()[0].rstrip("*") for line in text.splitlines() if line.split()[:1] and line[0].isupper()]
    rule_rows = [name for name in listed if name in {r.rule_id for r in report.rules}]
    assert rule_rows == sorted(rule_rows) and len(rule_rows) == len(report.rules)
    assert "NEVER" in text and "Recall: 66.7% of findings sent to YELLOW or RED." in text
    assert "Rules only" in text  # model scores are not part of it, and the report says so
    data = json.loads(json.dumps(backtest_to_dict(report), allow_nan=False))
    assert data["channels"][0] == {
        "channel": "GREEN",
        "declarations": 2,
        "labelled": 1,
        "findings": 1,
        "precision": 1.0,
        "revenue_recovered": None,
        "control_labelled": 0,
        "control_findings": 0,
        "control_precision": None,
    }


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    frame = generate_history(2000, seed=5, start=date(2026, 1, 1), days=60)
    return frame[[c.name for c in HISTORY_COLUMNS if c.name in frame.columns]]


def test_the_default_rules_on_synthetic_history_add_up(synthetic: pd.DataFrame) -> None:
    rule_set = load_rule_set(DEFAULT_RULES_PATH, features.FEATURE_NAMES)
    report = backtest_history(rule_set, synthetic)

    assert report.declarations == synthetic["declaration_id"].nunique() == 2000
    assert sum(c.declarations for c in report.channels) == report.declarations
    assert sum(c.labelled for c in report.channels) == report.labelled > 0
    assert sum(c.findings for c in report.channels) == report.findings > 0
    assert any(r.labelled > 0 for r in report.rules)
    for r in report.rules:
        assert sum(r.hits_by_channel.values()) == r.hits >= r.labelled >= r.findings
        assert r.errors == 0
    assert 0.0 <= report.recall <= 1.0


def test_backtest_features_equal_training_features(synthetic: pd.DataFrame) -> None:
    columns = features.columns_from_frame(prepare_history(synthetic))
    outcomes = features.EntityOutcomes(features.OutcomePrior.fit(synthetic), None, {})
    state = features.FeatureState.fit(columns).with_outcomes(outcomes)
    trained = features.build_feature_matrix(columns, state)
    assert (columns["importer_prior_findings"] > 0).any() and (columns["declarant_prior_findings"] > 0).any()

    cases = declarations_from_history(synthetic)
    declarations = [d for d, _ in cases]
    served, _ = declaration_columns(declarations, PointInTimeEntityHistory(cases), permit_facts_from_history(synthetic))
    np.testing.assert_allclose(
        features.build_feature_matrix(served, state), trained, rtol=1e-9, atol=1e-9, equal_nan=True
    )
