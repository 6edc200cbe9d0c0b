"""The one feature code path: raw item columns (from a history frame or a served request) to a matrix."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from features.codes import country_code, parse_hs, unit_code
from features.schema import (
    ENTITY_COLUMNS,
    ENTITY_COUNT_FEATURES,
    ENTITY_FINDING_COLUMNS,
    ENTITY_KINDS,
    ENTITY_RATE_FEATURES,
    FEATURE_INDEX,
    FEATURE_NAMES,
    RAW_COLUMNS,
)
from features.state import FeatureState

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

NAN = math.nan
_F = FEATURE_INDEX
_N_FEATURES = len(FEATURE_NAMES)
_NUMERIC_COLUMNS = tuple(k for k, kind in RAW_COLUMNS.items() if kind != "str")
# Copied as they are; contiguous in both RAW_COLUMNS and FEATURE_NAMES. The entity history after
# them is picked (ENTITY_COUNT_FEATURES) and its findings become finding rates.
_ENTITY_START = _NUMERIC_COLUMNS.index(ENTITY_COLUMNS[0])
_PASS_THROUGH = _NUMERIC_COLUMNS[5:_ENTITY_START]
_COUNT_ROWS = [_NUMERIC_COLUMNS.index(name) for name in ENTITY_COUNT_FEATURES]
_COUNT_START = FEATURE_INDEX[ENTITY_COUNT_FEATURES[0]]
_INSPECTION_ROWS = [_NUMERIC_COLUMNS.index(f"{kind}_prior_inspections") for kind in ENTITY_KINDS]
_FINDING_ROWS = [_NUMERIC_COLUMNS.index(name) for name in ENTITY_FINDING_COLUMNS]
_RATE_START = FEATURE_INDEX[ENTITY_RATE_FEATURES[0]]
# Days to expiry turn negative once a cited permit has expired, which is the signal itself; the
# sweep that reads other negative numbers as missing skips it.
_SIGNED_ROW = _NUMERIC_COLUMNS.index("permit_days_to_expiry")
_PASS_START = _F[_PASS_THROUGH[0]]
_CODED_START = _F["hs_chapter"]
assert _NUMERIC_COLUMNS[:5] == ("customs_value", "net_mass_kg", "gross_mass_kg", "quantity", "duties_and_taxes")
assert _NUMERIC_COLUMNS[_ENTITY_START:] == ENTITY_COLUMNS
assert FEATURE_NAMES[_PASS_START : _PASS_START + len(_PASS_THROUGH)] == _PASS_THROUGH
assert FEATURE_NAMES[_COUNT_START:_RATE_START] == ENTITY_COUNT_FEATURES
assert FEATURE_NAMES[_RATE_START:] == ENTITY_RATE_FEATURES
assert FEATURE_NAMES[_CODED_START : _CODED_START + 7] == (
    "hs_chapter",
    "hs_heading",
    "hs_digits",
    "origin_code",
    "export_code",
    "origin_differs_from_export",
    "quantity_unit_code",
)
assert FEATURE_NAMES[:3] == ("unit_value_ratio", "unit_value_zscore", "unit_value_band_level")


def build_feature_matrix(columns: Mapping[str, np.ndarray], state: FeatureState | None) -> np.ndarray:
    """float64 matrix (rows, len(FEATURE_NAMES)), C-contiguous; NaN where an input is missing or meaningless.

    Every raw number must be finite and non-negative (permit_days_to_expiry only finite); anything
    else reads as missing. The work is vectorised numpy plus one cached parse and dict lookup per
    row for codes and HS bands, so it is cheap for one row on the request path (a few dozen numpy
    calls, no per-feature branches) and for a million rows in training. It fills the transposed
    matrix (one feature per row) because whole-row writes are the cheap ones. Without a state the
    HS band features and the entity finding rates are NaN.
    """
    try:
        hs_codes = columns["hs_code"]
        origins = columns["origin_country"]
        exports = columns["export_country"]
        units = columns["quantity_unit"]
        num = np.array([columns[name] for name in _NUMERIC_COLUMNS], dtype=np.float64)
    except KeyError:
        missing = [k for k in RAW_COLUMNS if k not in columns]
        raise KeyError(f"missing raw columns: {', '.join(missing)}") from None
    n = len(hs_codes)
    out = np.full((_N_FEATURES, n), NAN)
    if n == 0:
        return np.ascontiguousarray(out.T)
    if num.shape != (len(_NUMERIC_COLUMNS), n):
        raise ValueError("raw columns differ in length")

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        signed = num[_SIGNED_ROW].copy()  # an infinity in it is swept from `out` at the end
        num[~np.isfinite(np.sqrt(num))] = NAN  # negative, infinite or NaN -> missing
        num[_SIGNED_ROW] = signed
        value, net, gross, quantity, duties = num[:5]
        log_value = np.log(value)  # -inf for zero, made NaN by the sweep below
        log_vpk = log_value - np.log(net)
        out[_F["log_customs_value"]] = np.log1p(value)
        out[_F["log_value_per_kg"]] = log_vpk
        out[_F["log_value_per_unit"]] = log_value - np.log(quantity)
        out[_F["tax_per_value"]] = duties / value
        out[_F["gross_net_ratio"]] = gross / net
        out[_PASS_START : _PASS_START + len(_PASS_THROUGH)] = num[5:_ENTITY_START]
        out[_COUNT_START:_RATE_START] = num[_COUNT_ROWS]
        outcomes = state.outcomes if state is not None else None
        if outcomes is not None:  # smoothed toward the prior, so a single inspection does not read as 0 % or 100 %
            m, p0 = outcomes.prior.strength, outcomes.prior.rate
            out[_RATE_START:] = (num[_FINDING_ROWS] + m * p0) / (num[_INSPECTION_ROWS] + m)

        coded = out[_CODED_START : _CODED_START + 7]
        for i in range(n):
            o = country_code(origins[i])
            e = country_code(exports[i])
            coded[3, i] = o
            coded[4, i] = e
            if o == o and e == e:  # neither is NaN
                coded[5, i] = float(o != e)
            coded[6, i] = unit_code(units[i])
            hs = parse_hs(hs_codes[i])
            if hs is not None:
                coded[0, i] = hs.chapter
                coded[1, i] = hs.heading
                coded[2, i] = hs.digits
        if state is not None:
            _band_features(out, log_vpk, hs_codes, state)
        out[~np.isfinite(out)] = NAN
    return np.ascontiguousarray(out.T)


def _band_features(out: np.ndarray, log_vpk: np.ndarray, hs_codes: np.ndarray, state: FeatureState) -> None:
    """unit_value_ratio / _zscore / _band_level against the item's HS6 band, else HS4, else global.

    Scalar per row: it already needs a dict lookup per row, and numpy calls on tiny arrays cost
    more than the arithmetic.
    """
    hs6_bands, hs4_bands, global_band = state.hs6, state.hs4, state.global_band
    ratio, zscore, level = out[0], out[1], out[2]
    for i, lv in enumerate(log_vpk.tolist()):
        if not math.isfinite(lv):
            continue
        hs = parse_hs(hs_codes[i])
        b = None
        lvl = 0.0
        if hs is not None:
            if hs.hs6 is not None:
                b = hs6_bands.get(hs.hs6)
                lvl = 6.0
            if b is None:
                b = hs4_bands.get(hs.hs4)
                lvl = 4.0
        if b is None:
            b = global_band
            lvl = 0.0
        if b is None:
            continue
        deviation = lv - b.median
        ratio[i] = math.exp(deviation) if deviation < 700.0 else NAN
        zscore[i] = deviation / b.scale
        level[i] = lvl


def columns_from_frame(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Training side: the RAW_COLUMNS of a history frame as arrays of the kinds serving passes.

    Strings become an object array with '' for missing; floats float64; ints int64, or float64
    with NaN when a value is missing or not integral.
    """
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

    missing = [k for k in RAW_COLUMNS if k not in df.columns]
    if missing:
        raise KeyError(f"missing raw columns: {', '.join(missing)}")
    out: dict[str, np.ndarray] = {}
    for name, kind in RAW_COLUMNS.items():
        s = df[name]
        if kind == "str":
            out[name] = np.array([v if isinstance(v, str) else "" for v in s.to_numpy(dtype=object)], dtype=object)
            continue
        values = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=NAN)
        if kind == "int" and np.isfinite(values).all() and np.array_equal(values, np.round(values)):
            out[name] = values.astype(np.int64)
        else:
            out[name] = values
    return out
