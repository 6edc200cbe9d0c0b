"""What features learn from history: HS reference bands of log value per kg, and entity outcomes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from features.codes import parse_hs
from features.entity_history import EntityOutcomes

FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)  # 1: bands only, from before entity outcomes
_MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation


@dataclass(frozen=True, slots=True)
class UnitValueBand:
    """Median and robust scale of log(customs value / net kg) for one HS level."""

    median: float
    scale: float
    count: int


class FeatureState:
    """HS6 bands, HS4 fallback bands and a global band, fitted on the training window only; and the
    entity outcomes (inspections and findings per importer, broker, trade lane) serving reads finding
    rates from, as known when the model was trained. None when the model predates them.
    """

    def __init__(
        self,
        hs6: Mapping[str, UnitValueBand],
        hs4: Mapping[str, UnitValueBand],
        global_band: UnitValueBand | None,
        *,
        min_count: int,
        min_scale: float,
        outcomes: EntityOutcomes | None = None,
    ) -> None:
        self.hs6 = dict(hs6)
        self.hs4 = dict(hs4)
        self.global_band = global_band
        self.min_count = min_count
        self.min_scale = min_scale
        self.outcomes = outcomes

    def with_outcomes(self, outcomes: EntityOutcomes | None) -> FeatureState:
        return FeatureState(
            self.hs6, self.hs4, self.global_band, min_count=self.min_count, min_scale=self.min_scale, outcomes=outcomes
        )

    @classmethod
    def fit(cls, columns: Mapping[str, np.ndarray], *, min_count: int = 20, min_scale: float = 0.05) -> FeatureState:
        """Bands from rows with a positive value and mass; a level needs at least `min_count` rows."""
        value = np.asarray(columns["customs_value"], dtype=np.float64)
        mass = np.asarray(columns["net_mass_kg"], dtype=np.float64)
        ok = np.isfinite(value) & np.isfinite(mass) & (value > 0) & (mass > 0)
        idx = np.flatnonzero(ok)
        log_vpk = np.log(value[idx]) - np.log(mass[idx])
        finite = np.isfinite(log_vpk)
        idx, log_vpk = idx[finite], log_vpk[finite]
        by_hs6: dict[str, list[float]] = {}
        by_hs4: dict[str, list[float]] = {}
        hs_codes = columns["hs_code"]
        for i, v in zip(idx.tolist(), log_vpk.tolist(), strict=True):
            hs = parse_hs(hs_codes[i])
            if hs is None:
                continue
            by_hs4.setdefault(hs.hs4, []).append(v)
            if hs.hs6 is not None:
                by_hs6.setdefault(hs.hs6, []).append(v)

        def bands(groups: dict[str, list[float]]) -> dict[str, UnitValueBand]:
            return {
                key: robust_band(np.asarray(vals), min_scale)
                for key, vals in sorted(groups.items())
                if len(vals) >= min_count
            }

        global_band = robust_band(log_vpk, min_scale) if log_vpk.size >= 1 else None
        return cls(bands(by_hs6), bands(by_hs4), global_band, min_count=min_count, min_scale=min_scale)

    def to_dict(self) -> dict[str, Any]:
        def enc(b: UnitValueBand) -> list[float | int]:
            return [b.median, b.scale, b.count]

        return {
            "format_version": FORMAT_VERSION,
            "min_count": self.min_count,
            "min_scale": self.min_scale,
            "global": enc(self.global_band) if self.global_band else None,
            "hs6": {k: enc(b) for k, b in self.hs6.items()},
            "hs4": {k: enc(b) for k, b in self.hs4.items()},
            "entity_outcomes": self.outcomes.to_dict() if self.outcomes is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureState:
        if data.get("format_version") not in _READABLE_VERSIONS:
            raise ValueError(f"unsupported feature state format {data.get('format_version')!r}")

        def dec(v: Any) -> UnitValueBand:
            return UnitValueBand(float(v[0]), float(v[1]), int(v[2]))

        return cls(
            {str(k): dec(v) for k, v in data["hs6"].items()},
            {str(k): dec(v) for k, v in data["hs4"].items()},
            dec(data["global"]) if data.get("global") is not None else None,
            min_count=int(data["min_count"]),
            min_scale=float(data["min_scale"]),
            outcomes=EntityOutcomes.from_dict(data["entity_outcomes"]) if data.get("entity_outcomes") else None,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FeatureState):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        known = "no entity outcomes" if self.outcomes is None else f"entity outcomes as of {self.outcomes.as_of}"
        return f"FeatureState(hs6={len(self.hs6)} bands, hs4={len(self.hs4)} bands, global={self.global_band}, {known})"


def robust_band(values: np.ndarray, min_scale: float = 0.05) -> UnitValueBand:
    """Median and MAD-based scale (floored at min_scale) of a non-empty array."""
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median))) * _MAD_TO_SIGMA
    if not mad > 0:  # many identical values: fall back to the standard deviation
        mad = float(np.std(values))
    scale = mad if math.isfinite(mad) and mad > min_scale else min_scale
    return UnitValueBand(median, scale, int(values.size))
