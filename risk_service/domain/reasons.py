"""Built-in checks (permits, cross-document consistency) report rule hits with a channel and weight per reason code."""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

from risk_service.domain.assessment import Channel

ReasonSetting = tuple[Channel | None, float]  # (minimum channel, score weight)


class ReasonConfig:
    """min_channel and weight of each reason code's hit: the defaults, with overrides from settings."""

    what = "check"  # named in errors

    def __init__(self, defaults: Mapping[str, ReasonSetting], overrides: Mapping[str, ReasonSetting] | None = None):
        overrides = overrides or {}
        unknown = sorted(set(overrides) - set(defaults))
        if unknown:
            raise ValueError(f"unknown {self.what} reason code(s): {', '.join(unknown)}")
        for reason, (_, weight) in overrides.items():
            if not (math.isfinite(weight) and -1.0 <= weight <= 1.0):
                raise ValueError(f"weight of {reason} must be in [-1, 1], got {weight}")
        self.reasons: Mapping[str, ReasonSetting] = MappingProxyType({**defaults, **overrides})

    def min_channel(self, reason: str) -> Channel | None:
        return self.reasons.get(reason, (None, 0.0))[0]

    def weight(self, reason: str) -> float:
        return self.reasons.get(reason, (None, 0.0))[1]
