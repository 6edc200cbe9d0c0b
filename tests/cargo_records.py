"""Stored cargo records for store tests: a report with an assessment from the default screener."""

from __future__ import annotations

from risk_service.domain.cargo.model import CargoReport
from risk_service.domain.cargo.ports import CargoRecord
from risk_service.domain.cargo.rules import CARGO_SUBJECT, DEFAULT_CARGO_RULES_PATH
from risk_service.domain.cargo.screening import CargoPolicy, CargoScreener
from risk_service.domain.policy import SelectionPolicy
from risk_service.domain.rules import RuleSetHolder
from risk_service.domain.service import content_hash

_SCREENER = CargoScreener(
    RuleSetHolder(DEFAULT_CARGO_RULES_PATH, (), subject=CARGO_SUBJECT),
    CargoPolicy(SelectionPolicy(random_control_rate=0.0), {}),
)


def cargo_record(report: CargoReport) -> CargoRecord:
    (assessment,) = _SCREENER.assess([report])
    return CargoRecord(assessment, report, content_hash(report))
