"""No train/serve skew: a declaration served one by one gets exactly the features training computed."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest

import features
from features.entity_history import OUTCOME_DELAY
from risk_service.domain.declaration import AeoStatus, Declaration, DeclarationType, DutyTax, Party, TransportMode
from risk_service.domain.entity_history import EntityHistory, declaration_keys
from risk_service.domain.feature_rows import declaration_columns
from risk_service.domain.permits.model import ItemPermitFacts
from tests.builders import declaration, declarations_from_history, item
from training.synthetic import generate_history


def permit_facts_from_history(history: Any) -> list[list[ItemPermitFacts]]:
    """What the permit check told serving about each item, read from the history frame in declaration order."""
    return [
        [ItemPermitFacts(float(r.permit_balance_used), float(r.permit_days_to_expiry)) for r in rows.itertuples()]
        for _, rows in history.groupby("declaration_id", sort=False)
    ]


class KnownOutcomes:
    """An independent account of what serving would know of outcomes: each declaration's result,
    for every entity it names, once OUTCOME_DELAY has passed since its lodgement."""

    def __init__(self, prior: features.OutcomePrior) -> None:
        self.prior = prior
        self.pending: list[tuple[datetime, Declaration, bool]] = []
        self.counts: dict[str, dict[str, tuple[int, int]]] = {kind: {} for kind in features.ENTITY_KINDS}

    def inspected(self, d: Declaration, finding: bool) -> None:
        assert d.lodgement_time is not None
        self.pending.append((d.lodgement_time + OUTCOME_DELAY, d, finding))

    def as_of(self, at: datetime) -> features.EntityOutcomes:
        due = [p for p in self.pending if p[0] < at]
        self.pending = [p for p in self.pending if p[0] >= at]
        for _, d, finding in due:
            named = {
                (kind, key)
                for keys in declaration_keys(d)
                for kind, key in zip(features.ENTITY_KINDS, keys, strict=True)
            }
            for kind, key in named:
                if key:
                    n, f = self.counts[kind].get(key, (0, 0))
                    self.counts[kind][key] = (n + 1, f + int(finding))
        return features.EntityOutcomes(self.prior, at, {k: dict(v) for k, v in self.counts.items()})


def test_served_features_equal_training_features_including_entity_history_and_permits() -> None:
    history = features.add_entity_history(generate_history(400, seed=11, start=date(2026, 1, 1), days=120))
    prior = features.OutcomePrior.fit(history)
    state = features.FeatureState.fit(features.columns_from_frame(history)).with_outcomes(
        features.EntityOutcomes(prior, None, {})
    )
    trained = features.build_feature_matrix(features.columns_from_frame(history), state)
    # overdrawn and expired permits are in the sample: their values must survive serving as they are
    assert (history["permit_balance_used"] > 1).any() and (history["permit_days_to_expiry"] < 0).any()
    # every kind of entity has repeat filings and earlier findings to count
    for kind in features.ENTITY_KINDS:
        assert (history[f"{kind}_prior_filings"] > 0).any() and (history[f"{kind}_prior_findings"] > 0).any(), kind

    # Serving sees the filings one at a time, in lodgement order, recording each after it is stored,
    # and learns each outcome a day after its declaration was lodged.
    served = EntityHistory()
    known = KnownOutcomes(prior)
    outcomes = history.groupby("declaration_id", sort=False).agg(
        inspected=("inspected", "any"), finding=("finding", "any")
    )
    rows: list[np.ndarray] = []
    declarations = declarations_from_history(history)
    for filing, facts in zip(declarations, permit_facts_from_history(history), strict=True):
        assert filing.lodgement_time is not None
        columns, _ = declaration_columns([filing], served, [facts], known.as_of(filing.lodgement_time))
        rows.append(features.build_feature_matrix(columns, state))
        served.record(filing)
        outcome = outcomes.loc[filing.declaration_id]
        if outcome["inspected"]:
            known.inspected(filing, bool(outcome["finding"]))
    served_matrix = np.vstack(rows)

    assert served_matrix.shape == trained.shape
    np.testing.assert_allclose(served_matrix, trained, rtol=1e-9, atol=1e-9, equal_nan=True)


def test_a_batch_gives_the_same_rows_as_one_declaration_at_a_time() -> None:
    history = generate_history(60, seed=12, start=date(2026, 1, 1), days=30)
    declarations = declarations_from_history(history)
    facts = permit_facts_from_history(history)
    known = EntityHistory()
    for earlier in declarations[:30]:  # so entity features are not all "new"
        known.record(earlier)
    outcomes = features.EntityOutcomes(features.OutcomePrior(0.05), None, {"importer": {"IMP00001": (3, 1)}})
    assert any(row[0] > 0 for d in declarations for row in known.lookup(d, outcomes))
    batch, spans = declaration_columns(declarations, known, facts, outcomes)
    singles = [declaration_columns([d], known, [f], outcomes)[0] for d, f in zip(declarations, facts, strict=True)]
    for name, column in batch.items():
        joined = np.concatenate([s[name] for s in singles])
        assert list(column) == list(joined) or np.allclose(column, joined, equal_nan=True), name
    assert [s.stop - s.start for s in spans] == [len(d.items) for d in declarations]


def test_each_raw_column_is_read_from_its_own_field() -> None:
    lodged = datetime(2026, 3, 10, tzinfo=UTC)
    filed = declaration(
        type=DeclarationType.TRANSIT,
        lodgement_time=lodged,
        aeo_status=AeoStatus.FULL,
        export_country="HK",
        transport_mode=TransportMode.AIR,
        items=(
            item(
                item_number=1,
                hs_code="3004900000",
                origin_country="VN",
                customs_value=1001.0,
                net_mass_kg=11.0,
                gross_mass_kg=12.5,
                quantity=7.0,
                quantity_unit="PCE",
                preference_claimed="FTA",
                permit_references=("P-1", "P-2"),
                duties_and_taxes=(DutyTax("A00", 3.0), DutyTax("B00", 4.0)),
            ),
            item(item_number=2),
        ),
    )
    history = EntityHistory()
    history.record(replace(filed, declaration_id="EARLIER", lodgement_time=lodged - timedelta(days=4)))
    history.record(
        replace(filed, declaration_id="OTHER-OFFICE", customs_office="ELSEWHERE", declarant=Party("BRK-OTHER"))
    )
    outcomes = features.EntityOutcomes(
        features.OutcomePrior(0.1),
        None,
        {"importer": {filed.importer.id: (2, 1)}, "hs_origin": {"300490\x1fVN": (5, 0)}},
    )
    columns, spans = declaration_columns([filed], history, [[ItemPermitFacts(0.25, -6.0), ItemPermitFacts()]], outcomes)
    first = {name: column[0] for name, column in columns.items()}
    assert first == {
        "hs_code": "3004900000",
        "origin_country": "VN",
        "export_country": "HK",
        "customs_value": 1001.0,
        "net_mass_kg": 11.0,
        "gross_mass_kg": 12.5,
        "quantity": 7.0,
        "quantity_unit": "PCE",
        "duties_and_taxes": 7.0,
        "transport_mode": 4,
        "declaration_type": 3,
        "aeo_status": 4,
        "preference_claimed": 1,
        "permit_count": 2,
        "permit_balance_used": 0.25,
        "permit_days_to_expiry": -6.0,
        "item_count": 2,
        # the importer filed twice before; the office and broker only with the earlier filing
        "importer_prior_filings": 2.0,
        "importer_days_known": 4.0,
        "importer_prior_inspections": 2.0,
        "declarant_prior_filings": 1.0,
        "declarant_days_known": 4.0,
        "declarant_prior_inspections": 0.0,
        "hs_origin_prior_filings": 2.0,
        "hs_origin_days_known": 4.0,
        "hs_origin_prior_inspections": 5.0,
        "office_importer_prior_filings": 1.0,
        "office_importer_days_known": 4.0,
        "office_importer_prior_inspections": 0.0,
        "importer_prior_findings": 1.0,
        "declarant_prior_findings": 0.0,
        "hs_origin_prior_findings": 0.0,
        "office_importer_prior_findings": 0.0,
    }
    assert list(columns) == list(features.RAW_COLUMNS)
    assert {name: column.dtype.kind for name, column in columns.items()} == {
        name: {"str": "O", "float": "f", "int": "i"}[kind] for name, kind in features.RAW_COLUMNS.items()
    }
    assert math.isnan(columns["permit_balance_used"][1]) and math.isnan(columns["permit_days_to_expiry"][1])
    assert spans == [slice(0, 2)]


def test_without_permit_facts_the_permit_columns_are_nan() -> None:
    filed = declaration(items=(item(permit_references=("P-1",)), item(item_number=2)))
    columns, _ = declaration_columns([filed], EntityHistory())
    assert columns["permit_count"].tolist() == [1, 0]
    assert np.isnan(columns["permit_balance_used"]).all() and np.isnan(columns["permit_days_to_expiry"]).all()
    empty, spans = declaration_columns([], EntityHistory(), [])
    assert spans == [] and all(len(column) == 0 for column in empty.values())


def test_permit_facts_must_match_the_declarations_and_their_items() -> None:
    filed = declaration(items=(item(), item(item_number=2)))
    with pytest.raises(ValueError, match="declarations"):
        declaration_columns([filed], EntityHistory(), [])
    with pytest.raises(ValueError, match="items"):
        declaration_columns([filed], EntityHistory(), [[ItemPermitFacts()]])
