"""Features: values on hand-made rows, training/serving parity, NaN safety, state round trip."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features import (
    CATEGORICAL_FEATURES,
    ENTITY_COLUMNS,
    FEATURE_INDEX,
    FEATURE_NAMES,
    RAW_COLUMNS,
    EntityOutcomes,
    FeatureState,
    OutcomePrior,
    build_feature_matrix,
    columns_from_frame,
)
from features.schema import ENTITY_RATE_FEATURES

F = FEATURE_INDEX
LOG_VPK = 2.0  # reference log value per kg of HS 851712 in the fitted state


def item(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "hs_code": "8517120000",
        "origin_country": "CN",
        "export_country": "CN",
        "customs_value": 1000.0,
        "net_mass_kg": 10.0,
        "gross_mass_kg": 12.0,
        "quantity": 4.0,
        "quantity_unit": "NAR",
        "duties_and_taxes": 150.0,
        "transport_mode": 4,
        "declaration_type": 1,
        "aeo_status": 1,
        "preference_claimed": 0,
        "permit_count": 0,
        "permit_balance_used": math.nan,
        "permit_days_to_expiry": math.nan,
        "item_count": 3,
        **{name: 0.0 for name in ENTITY_COLUMNS},
        "importer_prior_filings": 12.0,
        "importer_days_known": 40.5,
        "importer_prior_inspections": 4.0,
        "importer_prior_findings": 1.0,
    }
    row.update(overrides)
    return row


def serving_columns(rows: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """What the serving adapter builds: object arrays of str, float64 and int64 arrays."""
    dtypes = {"str": object, "float": np.float64, "int": np.int64}
    return {k: np.array([r[k] for r in rows], dtype=dtypes[kind]) for k, kind in RAW_COLUMNS.items()}


@pytest.fixture(scope="module")
def state() -> FeatureState:
    # 25 rows of HS 851712 at exactly e^2 per kg; 30 rows of 8517 at e^4 spread over HS6 codes
    # too small for their own band; 20 rows of chapter 01 make the global band wider.
    rows = [item(customs_value=10 * math.exp(LOG_VPK), hs_code="851712") for _ in range(25)]
    rows += [item(customs_value=10 * math.exp(4.0), hs_code=f"8517{60 + i % 10}") for i in range(30)]
    rows += [item(customs_value=10 * math.exp(i / 10), hs_code="010121") for i in range(20)]
    return FeatureState.fit(serving_columns(rows)).with_outcomes(EntityOutcomes(PRIOR, None, {}))


PRIOR = OutcomePrior(rate=0.05, strength=20.0)


def features_of(row: Mapping[str, Any], state: FeatureState | None) -> dict[str, float]:
    m = build_feature_matrix(serving_columns([row]), state)
    assert m.shape == (1, len(FEATURE_NAMES))
    return dict(zip(FEATURE_NAMES, m[0].tolist(), strict=True))


def test_value_features_of_a_plain_item(state: FeatureState) -> None:
    f = features_of(item(), state)
    assert f["log_customs_value"] == pytest.approx(math.log1p(1000.0))
    assert f["log_value_per_kg"] == pytest.approx(math.log(100.0))
    assert f["log_value_per_unit"] == pytest.approx(math.log(250.0))
    assert f["tax_per_value"] == pytest.approx(0.15)
    assert f["gross_net_ratio"] == pytest.approx(1.2)


def test_codes_are_parsed_without_a_vocabulary(state: FeatureState) -> None:
    f = features_of(item(hs_code="8517.12.00", origin_country="vn", export_country="CN", quantity_unit="xyz"), state)
    assert (f["hs_chapter"], f["hs_heading"], f["hs_digits"]) == (85.0, 8517.0, 8.0)
    assert f["origin_code"] == 26 * ord("V") - 26 * 65 + ord("N") - 65
    assert f["export_code"] == 26 * 2 + 13
    assert f["origin_differs_from_export"] == 1.0
    assert f["quantity_unit_code"] == 15.0  # other unit
    same = features_of(item(), state)
    assert same["origin_differs_from_export"] == 0.0
    assert same["quantity_unit_code"] == 3.0  # NAR


def test_passthrough_columns_keep_their_values(state: FeatureState) -> None:
    f = features_of(item(), state)
    assert f["transport_mode"] == 4.0
    assert f["item_count"] == 3.0
    assert f["importer_prior_filings"] == 12.0
    assert f["importer_days_known"] == 40.5
    # the calendar-bound counts stay raw columns, not features (see features.schema)
    for name in ("declarant_prior_filings", "importer_prior_inspections", "hs_origin_days_known"):
        assert name in RAW_COLUMNS and name not in FEATURE_NAMES
    assert math.isnan(features_of(item(importer_days_known=math.nan), state)["importer_days_known"])


def test_finding_rates_are_smoothed_toward_the_prior_of_the_state(state: FeatureState) -> None:
    f = features_of(item(), state)
    assert f["importer_finding_rate"] == pytest.approx((1.0 + 20.0 * 0.05) / (4.0 + 20.0))
    assert f["declarant_finding_rate"] == pytest.approx(0.05)  # nothing inspected yet: the prior
    repeat = features_of(item(importer_prior_inspections=200.0, importer_prior_findings=100.0), state)
    assert repeat["importer_finding_rate"] == pytest.approx(101.0 / 220.0)  # many inspections outweigh it
    unknown = features_of(item(hs_origin_prior_inspections=math.nan, hs_origin_prior_findings=math.nan), state)
    assert math.isnan(unknown["hs_origin_finding_rate"])  # no key, nothing to look up
    no_outcomes = features_of(item(), state.with_outcomes(None))
    assert all(math.isnan(no_outcomes[name]) for name in ENTITY_RATE_FEATURES)


def test_permit_facts_pass_through_and_stay_nan_without_a_permit(state: FeatureState) -> None:
    f = features_of(item(permit_count=2, permit_balance_used=0.75, permit_days_to_expiry=12.5), state)
    assert (f["permit_count"], f["permit_balance_used"], f["permit_days_to_expiry"]) == (2.0, 0.75, 12.5)
    none = features_of(item(), state)
    assert none["permit_count"] == 0.0
    assert math.isnan(none["permit_balance_used"]) and math.isnan(none["permit_days_to_expiry"])


def test_overdrawn_and_expired_permits_keep_their_values(state: FeatureState) -> None:
    # Past the balance (share above 1) and past expiry (negative days) are the signals themselves.
    f = features_of(item(permit_count=1, permit_balance_used=1.4, permit_days_to_expiry=-20.25), state)
    assert f["permit_balance_used"] == 1.4
    assert f["permit_days_to_expiry"] == -20.25


def test_permit_features_follow_permit_count_in_the_passed_through_block() -> None:
    start = F["permit_count"]
    assert FEATURE_NAMES[start : start + 3] == ("permit_count", "permit_balance_used", "permit_days_to_expiry")
    raw = list(RAW_COLUMNS)
    assert raw[raw.index("permit_count") : raw.index("permit_count") + 3] == list(FEATURE_NAMES[start : start + 3])
    assert RAW_COLUMNS["permit_balance_used"] == RAW_COLUMNS["permit_days_to_expiry"] == "float"


def test_unit_value_against_the_hs6_band(state: FeatureState) -> None:
    # value per kg half the HS6 median: ratio 0.5; the band's scale is the floor (all equal)
    f = features_of(item(customs_value=10 * math.exp(LOG_VPK) / 2, hs_code="8517120090"), state)
    assert f["unit_value_ratio"] == pytest.approx(0.5)
    assert f["unit_value_zscore"] == pytest.approx(math.log(0.5) / state.min_scale)
    assert f["unit_value_band_level"] == 6.0


def test_unit_value_falls_back_to_hs4_then_global(state: FeatureState) -> None:
    hs4 = state.hs4["8517"]
    f = features_of(item(hs_code="851799"), state)
    assert f["unit_value_band_level"] == 4.0
    assert f["unit_value_ratio"] == pytest.approx(math.exp(math.log(100.0) - hs4.median))
    g = features_of(item(hs_code="9401100000"), state)
    assert g["unit_value_band_level"] == 0.0
    assert state.global_band is not None
    assert g["unit_value_zscore"] == pytest.approx(
        (math.log(100.0) - state.global_band.median) / state.global_band.scale
    )


def test_band_features_are_nan_without_a_state() -> None:
    f = features_of(item(), None)
    for name in ("unit_value_ratio", "unit_value_zscore", "unit_value_band_level"):
        assert math.isnan(f[name])
    assert f["log_value_per_kg"] == pytest.approx(math.log(100.0))


@pytest.mark.parametrize(
    ("overrides", "nan_features"),
    [
        ({"net_mass_kg": 0.0}, ("log_value_per_kg", "gross_net_ratio", "unit_value_ratio", "unit_value_band_level")),
        ({"quantity": 0.0}, ("log_value_per_unit",)),
        ({"customs_value": 0.0}, ("log_value_per_kg", "tax_per_value", "unit_value_zscore")),
        ({"customs_value": -5.0}, ("log_customs_value", "log_value_per_kg")),
        ({"net_mass_kg": math.inf}, ("log_value_per_kg",)),
        ({"hs_code": "85X7"}, ("hs_chapter", "hs_heading", "hs_digits")),
        ({"origin_country": ""}, ("origin_code", "origin_differs_from_export")),
        ({"transport_mode": -1}, ("transport_mode",)),
        ({"permit_balance_used": -0.5}, ("permit_balance_used",)),
        ({"permit_days_to_expiry": math.inf}, ("permit_days_to_expiry",)),
        ({"permit_days_to_expiry": -math.inf}, ("permit_days_to_expiry",)),
    ],
)
def test_bad_or_zero_inputs_give_nan_not_errors(
    state: FeatureState, overrides: dict[str, Any], nan_features: tuple[str, ...]
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = features_of(item(**overrides), state)
    for name in nan_features:
        assert math.isnan(f[name]), name
    assert all(math.isnan(v) or math.isfinite(v) for v in f.values())


def test_zero_value_is_a_value_not_missing(state: FeatureState) -> None:
    assert features_of(item(customs_value=0.0), state)["log_customs_value"] == 0.0


def test_training_frame_and_serving_arrays_give_identical_matrices(state: FeatureState) -> None:
    rows = [
        item(),
        item(
            hs_code="851799",
            origin_country="VN",
            export_country="CN",
            preference_claimed=1,
            permit_count=2,
            permit_balance_used=0.3,
            permit_days_to_expiry=-3.5,
        ),
        item(net_mass_kg=0.0, quantity=0.0, importer_days_known=math.nan, importer_prior_filings=0.0),
        item(permit_count=1, permit_days_to_expiry=45.0),
        item(hs_code="7208100000", quantity_unit="KGM", customs_value=0.0, transport_mode=1, aeo_status=4),
    ]
    served = build_feature_matrix(serving_columns(rows), state)
    frame = pd.DataFrame.from_records(rows)
    frame["declaration_id"] = ["a", "a", "b", "b", "c"]  # extra columns are ignored
    trained = build_feature_matrix(columns_from_frame(frame), state)
    np.testing.assert_array_equal(served, trained)
    assert served.dtype == np.float64 and served.flags.c_contiguous
    # a row scored alone equals the same row inside a batch
    for i, row in enumerate(rows):
        np.testing.assert_array_equal(build_feature_matrix(serving_columns([row]), state)[0], served[i])


def test_columns_from_frame_reads_missing_values_as_missing() -> None:
    frame = pd.DataFrame.from_records([item(), item()])
    frame.loc[1, "hs_code"] = None
    frame["permit_count"] = pd.array([1, None], dtype="Int64")
    frame["permit_days_to_expiry"] = [None, "soon"]
    cols = columns_from_frame(frame)
    assert cols["hs_code"].tolist() == ["8517120000", ""]
    assert cols["transport_mode"].dtype == np.int64
    assert math.isnan(cols["permit_count"][1])
    assert cols["permit_days_to_expiry"].dtype == np.float64 and np.isnan(cols["permit_days_to_expiry"]).all()
    m = build_feature_matrix(cols, None)
    assert math.isnan(m[1, F["hs_chapter"]]) and math.isnan(m[1, F["permit_count"]])
    assert np.isnan(m[:, F["permit_days_to_expiry"]]).all()


def test_state_json_round_trip(state: FeatureState) -> None:
    served = state.with_outcomes(
        EntityOutcomes(PRIOR, datetime(2026, 5, 1, tzinfo=UTC), {"importer": {"IMP-1": (3, 2)}})
    )
    restored = FeatureState.from_dict(json.loads(json.dumps(served.to_dict())))
    assert restored == served and restored.outcomes == served.outcomes
    old = {**state.to_dict(), "format_version": 1}  # a model saved before entity outcomes
    del old["entity_outcomes"]
    assert FeatureState.from_dict(old).outcomes is None
    rows = serving_columns([item(), item(hs_code="851799"), item(hs_code="0101210000")])
    np.testing.assert_array_equal(build_feature_matrix(rows, restored), build_feature_matrix(rows, state))


def test_state_needs_min_count_rows_for_a_band() -> None:
    rows = [item(hs_code="851712")] * 19
    s = FeatureState.fit(serving_columns(rows))
    assert "851712" not in s.hs6 and "8517" not in s.hs4
    assert s.global_band is not None and s.global_band.count == 19


def test_empty_input_gives_an_empty_matrix(state: FeatureState) -> None:
    assert build_feature_matrix(serving_columns([]), state).shape == (0, len(FEATURE_NAMES))


def test_missing_raw_column_is_named() -> None:
    cols = serving_columns([item()])
    del cols["customs_value"]
    with pytest.raises(KeyError, match="customs_value"):
        build_feature_matrix(cols, None)


def test_categoricals_are_features() -> None:
    assert set(CATEGORICAL_FEATURES) <= set(FEATURE_NAMES)
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)


_floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 1e-320, 1e308]))
_ints = st.integers(min_value=-(2**40), max_value=2**40)
_strings = st.one_of(st.text(max_size=12), st.sampled_from(["8517120000", "85", "CN", "", "KGM", "８５１７"]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                k: (_strings if kind == "str" else _floats if kind == "float" else _ints)
                for k, kind in RAW_COLUMNS.items()
            }
        ),
        min_size=1,
        max_size=5,
    )
)
def test_any_inputs_give_finite_or_nan_features(rows: list[dict[str, Any]]) -> None:
    # state fitted on these very rows too, so degenerate bands are exercised
    cols = serving_columns(rows)
    fitted = FeatureState.fit(cols, min_count=1).with_outcomes(EntityOutcomes(PRIOR, None, {}))
    for s in (None, fitted):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            m = build_feature_matrix(cols, s)
        assert m.shape == (len(rows), len(FEATURE_NAMES))
        assert not np.isinf(m).any()
    restored = FeatureState.from_dict(json.loads(json.dumps(fitted.to_dict())))
    np.testing.assert_array_equal(build_feature_matrix(cols, restored), build_feature_matrix(cols, fitted))
