"""Selection policy: turns a risk score and rule hits into a channel, apart from how scores are made."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from risk_service.domain.assessment import Channel, RuleHit

_TWO_TO_64 = float(2**64)


@dataclass(frozen=True, slots=True)
class SelectionPolicy:
    red_threshold: float = 0.5
    yellow_threshold: float = 0.2
    blue_threshold: float = 0.1
    random_control_rate: float = 0.01
    random_control_channel: Channel = Channel.RED
    random_control_salt: str = "risk-control-v1"

    def channel_for_score(self, risk_score: float) -> Channel:
        if risk_score >= self.red_threshold:
            return Channel.RED
        if risk_score >= self.yellow_threshold:
            return Channel.YELLOW
        if risk_score >= self.blue_threshold:
            return Channel.BLUE
        return Channel.GREEN

    def is_random_control(self, declaration_id: str, version: int) -> bool:
        """A deterministic draw per declaration id and version, so a retry gets the same answer.

        The draw ignores score and AEO status: control selections must be an unbiased sample.
        """
        if self.random_control_rate <= 0:
            return False
        digest = hashlib.blake2b(
            f"{self.random_control_salt}\x1f{declaration_id}\x1f{version}".encode(), digest_size=8
        ).digest()
        return int.from_bytes(digest, "big") / _TWO_TO_64 < self.random_control_rate

    def decide(
        self, declaration_id: str, version: int, risk_score: float, rule_hits: Sequence[RuleHit]
    ) -> tuple[Channel, bool]:
        """Channel by precedence RED > YELLOW > BLUE > GREEN over score, rule minimums and control draw."""
        channel = self.channel_for_score(risk_score)
        for hit in rule_hits:
            if hit.min_channel is not None and hit.min_channel > channel:
                channel = hit.min_channel
        control = self.is_random_control(declaration_id, version)
        if control and self.random_control_channel > channel:
            channel = self.random_control_channel
        return channel, control


def combine_scores(model_score: float | None, rule_weights: Sequence[float]) -> float:
    """Overall risk in 0..1: noisy-OR of the model probability and positive rule weights, then credits.

    A positive weight is read as the chance that the indicator alone leads to a finding; a
    negative weight (a credit such as AEO status) scales the combined risk down by that share.
    """
    keep = 1.0 if model_score is None else 1.0 - model_score
    credit = 1.0
    for weight in rule_weights:
        if weight > 0:
            keep *= 1.0 - weight
        elif weight < 0:
            credit *= 1.0 + weight
    return min(1.0, max(0.0, (1.0 - keep) * credit))
