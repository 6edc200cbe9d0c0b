"""Selection policy: thresholds, precedence, deterministic random control, score combination."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from risk_service.domain.assessment import Channel, RuleHit
from risk_service.domain.policy import SelectionPolicy, combine_scores

NO_CONTROL = SelectionPolicy(random_control_rate=0.0)


def hit(weight: float = 0.1, min_channel: Channel | None = None) -> RuleHit:
    return RuleHit("R", "msg", (), weight, min_channel)


@pytest.mark.parametrize(
    ("score", "channel"),
    [
        (0.0, Channel.GREEN),
        (0.099, Channel.GREEN),
        (0.1, Channel.BLUE),
        (0.2, Channel.YELLOW),
        (0.5, Channel.RED),
        (1.0, Channel.RED),
    ],
)
def test_score_thresholds_pick_the_channel(score: float, channel: Channel) -> None:
    assert NO_CONTROL.decide("D", 1, score, [])[0] is channel


def test_rule_minimum_channel_raises_but_never_lowers() -> None:
    assert NO_CONTROL.decide("D", 1, 0.0, [hit(min_channel=Channel.YELLOW)])[0] is Channel.YELLOW
    assert NO_CONTROL.decide("D", 1, 0.9, [hit(min_channel=Channel.BLUE)])[0] is Channel.RED


def test_precedence_red_over_yellow_over_blue() -> None:
    hits = [hit(min_channel=Channel.BLUE), hit(min_channel=Channel.RED), hit(min_channel=Channel.YELLOW)]
    assert NO_CONTROL.decide("D", 1, 0.0, hits)[0] is Channel.RED


def test_random_control_is_deterministic_per_id_and_version() -> None:
    policy = SelectionPolicy(random_control_rate=0.3)
    draws = [policy.is_random_control(f"D{i}", 1) for i in range(200)]
    assert draws == [policy.is_random_control(f"D{i}", 1) for i in range(200)]
    assert any(draws) and not all(draws)


def test_random_control_rate_is_respected() -> None:
    policy = SelectionPolicy(random_control_rate=0.05)
    share = sum(policy.is_random_control(f"D{i}", 1) for i in range(20_000)) / 20_000
    assert 0.04 < share < 0.06


def test_random_control_raises_channel_and_is_marked() -> None:
    policy = SelectionPolicy(random_control_rate=1.0, random_control_channel=Channel.RED)
    assert policy.decide("D", 1, 0.0, []) == (Channel.RED, True)


def test_salt_changes_the_draw() -> None:
    a = SelectionPolicy(random_control_rate=0.5, random_control_salt="a")
    b = SelectionPolicy(random_control_rate=0.5, random_control_salt="b")
    assert [a.is_random_control(f"D{i}", 1) for i in range(64)] != [b.is_random_control(f"D{i}", 1) for i in range(64)]


def test_credit_lowers_score_but_not_a_rule_minimum() -> None:
    score = combine_scores(0.6, [-0.5])
    assert score == pytest.approx(0.3)
    hits = [hit(weight=-0.5), hit(weight=0.0, min_channel=Channel.YELLOW)]
    assert NO_CONTROL.decide("D", 1, score, hits)[0] is Channel.YELLOW


def test_aeo_credit_does_not_exempt_from_random_control() -> None:
    policy = SelectionPolicy(random_control_rate=1.0)
    score = combine_scores(0.0, [-0.9])
    assert policy.decide("D", 1, score, [hit(weight=-0.9)]) == (Channel.RED, True)


def test_rules_only_score_uses_weights_alone() -> None:
    assert combine_scores(None, []) == 0.0
    assert combine_scores(None, [0.5, 0.5]) == pytest.approx(0.75)


@given(
    st.one_of(st.none(), st.floats(0, 1)),
    st.lists(st.floats(-1, 1), max_size=20),
)
def test_combined_score_stays_in_unit_interval(model: float | None, weights: list[float]) -> None:
    assert 0.0 <= combine_scores(model, weights) <= 1.0
