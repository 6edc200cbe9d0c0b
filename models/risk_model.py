"""The model artifact: a LightGBM booster with its calibrator, feature state and feature schema."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import lightgbm as lgb
import numpy as np

from features.kinds import DECLARATION, FeatureKind, feature_kind
from models.calibration import Calibrator
from models.fast_predict import SingleRowPredictor

ARTIFACT_FORMAT_VERSION = 1


class ModelSchemaError(Exception):
    """The model was trained on other features than the ones this code builds."""


class RiskModel:
    """Scores feature matrices built by features.build_feature_matrix.

    Everything besides the booster lives in one JSON document (`to_artifact`) that is stored
    with the booster, so a model version loads with nothing else.
    """

    def __init__(
        self,
        booster: lgb.Booster,
        calibrator: Calibrator,
        feature_state: Any,
        feature_names: Sequence[str],
        *,
        kind: FeatureKind = DECLARATION,
        name: str = "",
        version: str | None = None,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self.booster = booster
        self.calibrator = calibrator
        self.feature_state = feature_state  # the kind's: FeatureState or ContainerFeatureState
        self.kind = kind
        self.feature_names: tuple[str, ...] = tuple(feature_names)
        self.name = name
        self.version = version
        self.metrics: dict[str, float] = dict(metrics or {})
        self.params: dict[str, Any] = dict(params or {})
        self._single_row = SingleRowPredictor(booster)
        # Screening runs on the event loop and on a worker thread; LightGBM's predict types share
        # booster state (iteration range, depth for contributions), so calls are serialised.
        self._lock = threading.Lock()
        booster_names = tuple(booster.feature_name())
        if booster_names != self.feature_names:
            raise ModelSchemaError(
                f"booster features {list(booster_names)} differ from the artifact's {list(self.feature_names)}"
            )

    def raw_scores(self, matrix: np.ndarray) -> np.ndarray:
        """Uncalibrated booster probabilities; single-threaded (a second OpenMP thread only spins here)."""
        m = _as_matrix(matrix)
        with self._lock:
            if m.shape[0] == 1:  # the unary hot path: LightGBM's fast single-row API
                return np.array([self._single_row.predict(m[0])], dtype=np.float64)
            return np.asarray(self.booster.predict(m, num_threads=1), dtype=np.float64)

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        """Calibrated probability of a finding, shape (rows,), in [0, 1]."""
        return self.calibrator.apply(self.raw_scores(matrix))

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """SHAP values in log-odds, shape (rows, features + 1); the last column is the bias.

        About 50 predictions' worth of work a row: call it only for rows an officer will read.
        """
        with self._lock:
            out = self.booster.predict(_as_matrix(matrix), pred_contrib=True, num_threads=1)
        return np.asarray(out, dtype=np.float64)

    def check_schema(self, expected_feature_names: Sequence[str]) -> None:
        """Raises ModelSchemaError unless the model takes exactly these features in this order."""
        expected = tuple(expected_feature_names)
        if expected != self.feature_names:
            missing = [f for f in expected if f not in self.feature_names]
            extra = [f for f in self.feature_names if f not in expected]
            raise ModelSchemaError(
                f"model {self.name or '?'} version {self.version or '?'} has another feature schema "
                f"(missing {missing}, unexpected {extra}, order differs: {not missing and not extra})"
            )

    def to_artifact(self) -> dict[str, Any]:
        """The JSON document stored next to the booster."""
        return {
            "format_version": ARTIFACT_FORMAT_VERSION,
            "kind": self.kind.name,
            "name": self.name,
            "feature_names": list(self.feature_names),
            "calibrator": self.calibrator.to_dict(),
            "feature_state": self.feature_state.to_dict(),
            "metrics": self.metrics,
            "params": self.params,
        }

    def artifact_json(self) -> str:
        return json.dumps(self.to_artifact(), sort_keys=True, allow_nan=True)

    @classmethod
    def from_artifact(cls, booster: lgb.Booster, data: Mapping[str, Any], *, version: str | None = None) -> RiskModel:
        if data.get("format_version") != ARTIFACT_FORMAT_VERSION:
            raise ModelSchemaError(f"unsupported model artifact format {data.get('format_version')!r}")
        try:
            kind = feature_kind(str(data.get("kind", "declaration")))  # artifacts before cargo have no kind
        except ValueError as err:
            raise ModelSchemaError(str(err)) from None
        return cls(
            booster,
            Calibrator.from_dict(data["calibrator"]),
            kind.state_from_dict(data["feature_state"]),
            data["feature_names"],
            kind=kind,
            name=str(data.get("name", "")),
            version=version,
            metrics={k: float(v) for k, v in data.get("metrics", {}).items()},
            params=dict(data.get("params", {})),
        )

    def __repr__(self) -> str:
        return (
            f"RiskModel(kind={self.kind.name}, name={self.name!r}, version={self.version!r}, "
            f"features={len(self.feature_names)}, "
            f"trees={self.booster.num_trees()}, {self.calibrator!r})"
        )


def _as_matrix(matrix: np.ndarray) -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float64)
    return m.reshape(1, -1) if m.ndim == 1 else m
