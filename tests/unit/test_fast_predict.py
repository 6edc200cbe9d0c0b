"""The single-row fast path predicts exactly what Booster.predict does."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from models.fast_predict import SingleRowPredictor


@pytest.fixture(scope="module")
def booster() -> lgb.Booster:
    rng = np.random.default_rng(0)
    x = rng.random((2000, 12))
    x[::5, 3] = np.nan
    x[:, 7] = rng.integers(0, 20, 2000)
    y = (x[:, 0] + rng.random(2000) * 0.5 > 1).astype(int)
    data = lgb.Dataset(x, y, categorical_feature=[7])
    return lgb.train({"objective": "binary", "verbose": -1, "num_threads": 1, "seed": 0}, data, 60)


def test_fast_single_row_matches_booster_predict(booster: lgb.Booster) -> None:
    rng = np.random.default_rng(1)
    rows = rng.random((300, 12))
    rows[::3, 3] = np.nan
    rows[:, 7] = rng.integers(0, 25, 300)  # includes categories never seen in training
    fast = SingleRowPredictor(booster)
    expected = booster.predict(rows, num_threads=1)
    assert np.array_equal(np.array([fast.predict(r) for r in rows]), expected)


def test_wrong_width_is_refused(booster: lgb.Booster) -> None:
    with pytest.raises(ValueError, match="expected 12 features"):
        SingleRowPredictor(booster).predict(np.zeros(5))
