"""The outcome of screening: channel, scores, rule hits and model contributions."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class Channel(enum.IntEnum):
    """Ordered by precedence: a higher value wins when sources disagree."""

    UNSPECIFIED = 0
    GREEN = 1
    BLUE = 2
    YELLOW = 3
    RED = 4


class ModelStatus(enum.IntEnum):
    UNSPECIFIED = 0
    SCORED = 1
    UNAVAILABLE = 2


@dataclass(frozen=True, slots=True)
class RuleHit:
    rule_id: str
    message: str
    fields: tuple[str, ...]
    weight: float
    min_channel: Channel | None
    item_numbers: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class FeatureContribution:
    feature: str
    value: float
    contribution: float
    item_number: int


@dataclass(frozen=True, slots=True)
class Assessment:
    assessment_id: str
    declaration_id: str
    declaration_version: int
    channel: Channel
    risk_score: float
    model_score: float | None
    rule_hits: tuple[RuleHit, ...]
    contributions: tuple[FeatureContribution, ...]
    random_control: bool
    model_status: ModelStatus
    model_name: str
    model_version: str
    rule_set_version: str
    assessment_time: datetime
    controlled_goods_version: str = ""  # version of the controlled goods table permits were checked against
