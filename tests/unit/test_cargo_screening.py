"""Cargo screening decisions: channels to outcomes, do-not-load, random scans, re-assessment."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np

from features.cargo import CONTAINER_FEATURE_NAMES
from risk_service.domain.assessment import Channel, RuleHit
from risk_service.domain.cargo.model import ContainerOutcome, FilingType, PreLoadingOutcome
from risk_service.domain.cargo.rules import CARGO_SUBJECT, DEFAULT_CARGO_RULES_PATH
from risk_service.domain.cargo.screening import CargoPolicy, CargoScreener
from risk_service.domain.declaration import Party, TransportMode
from risk_service.domain.model_handle import ModelHandle
from risk_service.domain.policy import SelectionPolicy
from risk_service.domain.rules import RuleSetHolder
from tests.cargo_builders import CONTAINER_NUMBERS, PLANNED_LOADING, cargo_report, container

RULES = RuleSetHolder(DEFAULT_CARGO_RULES_PATH, (), subject=CARGO_SUBJECT)
WATCHLISTED = "NL000000000003"


def screener(random_rate: float = 0.0) -> CargoScreener:
    policy = CargoPolicy(
        selection=SelectionPolicy(
            0.65, 0.45, 0.3, random_control_rate=random_rate, random_control_channel=Channel.YELLOW
        ),
        filing_deadline_hours={TransportMode.SEA: 24.0},
        do_not_load_rules=frozenset({"CARGO-WATCHLIST-CONSIGNEE"}),
        do_not_load_score=0.95,
    )
    return CargoScreener(RULES, policy)


def two_containers(**overrides: object):  # type: ignore[no-untyped-def]
    boxes = tuple(container(container_number=n, seal_numbers=(f"S{i}",)) for i, n in enumerate(CONTAINER_NUMBERS[:2]))
    return cargo_report(**{"containers": boxes, **overrides})


def test_a_clean_report_is_complete_and_every_container_released() -> None:
    (a,) = screener().assess([two_containers()])
    assert a.pre_loading_outcome == PreLoadingOutcome.ASSESSMENT_COMPLETE and a.is_mildest
    assert [c.outcome for c in a.containers] == [ContainerOutcome.NO_ACTION] * 2
    assert a.summary.no_action == 2 and a.risk_score == 0.0


def test_a_do_not_load_rule_holds_the_report_back_but_red_alone_asks_for_screening() -> None:
    (held,) = screener().assess([two_containers(consignee=Party(WATCHLISTED))])
    assert held.pre_loading_outcome == PreLoadingOutcome.DO_NOT_LOAD
    red_hit = RuleHit("ANALYST-RED", "red", (), 0.0, Channel.RED)
    (screened,) = screener().assess([two_containers()], extra_hits=[[red_hit]])
    assert screened.pre_loading_outcome == PreLoadingOutcome.REQUEST_FOR_SCREENING
    yellow_hit = replace(red_hit, min_channel=Channel.YELLOW)
    (asked,) = screener().assess([two_containers()], extra_hits=[[yellow_hit]])
    assert asked.pre_loading_outcome == PreLoadingOutcome.REQUEST_FOR_INFORMATION


def test_random_scans_happen_on_arrival_only_and_are_marked_as_such() -> None:
    arriving = two_containers(filing_type=FilingType.PRE_ARRIVAL, filing_time=PLANNED_LOADING)
    (a,) = screener(random_rate=1.0).assess([arriving])
    assert all(c.outcome == ContainerOutcome.SCAN and c.random_control for c in a.containers)
    assert a.is_mildest  # a random scan is not a risk result: an amendment after it is not suspicious
    # a container its data already send to a scan is targeted, whatever the draw adds
    yellow = RuleHit("ANALYST-YELLOW", "y", (), 0.0, Channel.YELLOW)
    (targeted,) = screener(random_rate=1.0).assess([arriving], extra_hits=[[yellow]])
    assert not any(c.random_control for c in targeted.containers) and not targeted.is_mildest
    (loading,) = screener(random_rate=1.0).assess([two_containers()])
    assert loading.pre_loading_outcome == PreLoadingOutcome.ASSESSMENT_COMPLETE
    assert not any(c.random_control for c in loading.containers)


def test_reassessment_replaces_consistency_reasons_and_keeps_the_rest() -> None:
    s = screener()
    report = two_containers(filing_time=PLANNED_LOADING - timedelta(hours=5))  # filed late
    (first,) = s.assess([report])
    assert {h.rule_id for h in first.rule_hits} == {"CARGO-LATE-FILING"}
    mass = RuleHit("CONSISTENCY_GROSS_MASS", "300 kg vs 500 kg", (), 0.3, Channel.YELLOW)
    again = s.reassess(report, first, [mass])
    assert {h.rule_id for h in again.rule_hits} == {"CARGO-LATE-FILING", "CONSISTENCY_GROSS_MASS"}
    assert again.assessment_id != first.assessment_id and again.risk_score > first.risk_score
    cleared = s.reassess(report, again, [])
    assert {h.rule_id for h in cleared.rule_hits} == {"CARGO-LATE-FILING"}
    assert cleared.risk_score == first.risk_score and cleared.pre_loading_outcome == first.pre_loading_outcome


class _CertainModel:
    """A container model sure of a finding on every container: contributions name one feature."""

    feature_names = CONTAINER_FEATURE_NAMES
    feature_state = None

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        return np.full(matrix.shape[0], 0.99)

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        out = np.zeros((matrix.shape[0], len(CONTAINER_FEATURE_NAMES) + 1))
        out[:, CONTAINER_FEATURE_NAMES.index("seal_count")] = 2.5
        return out


class _Source:
    name = "container-risk"

    def resolve(self) -> str:
        return "7"

    def load(self, version: str) -> _CertainModel:
        return _CertainModel()


def test_the_model_opens_containers_but_never_holds_cargo_back() -> None:
    """A finding predicted on arrival is no threat to the ship: DO_NOT_LOAD stays with the rules."""
    models = ModelHandle(_Source())
    assert models.refresh()
    scored = replace(screener(), models=models)
    (a,) = scored.assess([two_containers()])
    assert all(c.model_score == 0.99 and c.risk_score >= 0.95 for c in a.containers)
    assert a.pre_loading_outcome == PreLoadingOutcome.REQUEST_FOR_SCREENING
    assert (a.model_name, a.model_version) == ("container-risk", "7")
    assert all(c.contributions and c.contributions[0].feature == "seal_count" for c in a.containers)
    (held,) = scored.assess([two_containers(consignee=Party(WATCHLISTED))])
    assert held.pre_loading_outcome == PreLoadingOutcome.DO_NOT_LOAD  # the watch list still does
