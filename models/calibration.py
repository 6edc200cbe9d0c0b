"""Probability calibration: fitted with scikit-learn in training, applied with numpy alone in serving."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

CalibrationMethod = Literal["identity", "sigmoid", "isotonic"]
_EPS = 1e-7


class Calibrator:
    """Maps raw booster probabilities to calibrated ones.

    sigmoid: Platt scaling on the logit of the raw score, p = 1 / (1 + exp(-(a * logit(s) + b))).
    It is strictly monotone, so it keeps the model's ranking (and AUC) and stays smooth on a
    small validation window; it is the default. isotonic: the step function of an
    IsotonicRegression, stored as its thresholds and applied with np.interp (what sklearn does).
    identity: no change, used when the labels cannot support a fit.
    """

    def __init__(
        self,
        method: CalibrationMethod = "identity",
        *,
        a: float = 1.0,
        b: float = 0.0,
        x: np.ndarray | None = None,
        y: np.ndarray | None = None,
    ) -> None:
        self.method: CalibrationMethod = method
        self.a = float(a)
        self.b = float(b)
        self._exp_minus_b = math.exp(-self.b)
        self.x = np.asarray(x if x is not None else [], dtype=np.float64)
        self.y = np.asarray(y if y is not None else [], dtype=np.float64)
        if method == "isotonic" and (self.x.size == 0 or self.x.shape != self.y.shape):
            raise ValueError("isotonic calibration needs matching, non-empty thresholds")

    def apply(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities in [0, 1]; NaN scores stay NaN."""
        s = np.asarray(scores, dtype=np.float64)
        if self.method == "identity":
            return np.minimum(np.maximum(s, 0.0), 1.0)
        if self.method == "isotonic":
            return np.interp(s, self.x, self.y)
        # sigmoid(a * logit(s) + b) written as odds^a / (odds^a + e^-b): few numpy calls, since
        # on one row each call costs more than its arithmetic (np.clip alone costs several).
        clipped = np.minimum(np.maximum(s, _EPS), 1.0 - _EPS)
        odds = (clipped / (1.0 - clipped)) ** self.a
        return odds / (odds + self._exp_minus_b)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"method": self.method}
        if self.method == "sigmoid":
            data.update(a=self.a, b=self.b)
        elif self.method == "isotonic":
            data.update(x=self.x.tolist(), y=self.y.tolist())
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibrator:
        method = data["method"]
        if method == "identity":
            return cls("identity")
        if method == "sigmoid":
            return cls("sigmoid", a=float(data["a"]), b=float(data["b"]))
        if method == "isotonic":
            return cls("isotonic", x=np.asarray(data["x"], dtype=np.float64), y=np.asarray(data["y"], dtype=np.float64))
        raise ValueError(f"unknown calibration method {method!r}")

    def __repr__(self) -> str:
        if self.method == "sigmoid":
            return f"Calibrator(sigmoid, a={self.a:.4g}, b={self.b:.4g})"
        if self.method == "isotonic":
            return f"Calibrator(isotonic, {self.x.size} thresholds)"
        return "Calibrator(identity)"


def fit_calibrator(scores: np.ndarray, labels: np.ndarray, method: CalibrationMethod = "sigmoid") -> Calibrator:
    """Fits on held-out scores (the validation window); identity when both classes are not present."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    ok = np.isfinite(s) & np.isfinite(y)
    s, y = s[ok], y[ok]
    if method == "identity" or s.size == 0 or np.unique(y).size < 2:
        return Calibrator("identity")
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)
        return Calibrator("isotonic", x=np.asarray(iso.X_thresholds_), y=np.asarray(iso.y_thresholds_))
    from sklearn.linear_model import LogisticRegression

    clipped = np.clip(s, _EPS, 1.0 - _EPS)
    z = np.log(clipped / (1.0 - clipped)).reshape(-1, 1)
    lr = LogisticRegression(C=1e4).fit(z, y)
    return Calibrator("sigmoid", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))
