"""No train/serve skew: a declaration served one by one gets exactly the features training computed."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest

import features
from risk_service.domain.declaration import AeoStatus, DeclarationType, DutyTax, TransportMode
from risk_service.domain.feature_rows import declaration_columns
from risk_service.domain.importer_history import ImporterHistory
from risk_service.domain.permits.model import ItemPermitFacts
from tests.builders import declaration, declarations_from_history, item
from training.synthetic import generate_history


def permit_facts_from_history(history: Any) -> list[list[ItemPermitFacts]]:
    """What the permit check told serving about each item, read from the history frame in declaration order."""
    return [
        [ItemPermitFacts(float(r.permit_balance_used), float(r.permit_days_to_expiry)) for r in rows.itertuples()]
        for _, rows in history.groupby("declaration_id", sort=False)
    ]


def test_served_features_equal_training_features_including_importer_history_and_permits() -> None:
    history = generate_history(400, seed=11, start=date(2026, 1, 1), days=120)
    state = features.FeatureState.fit(features.columns_from_frame(history))
    trained = features.build_feature_matrix(features.columns_from_frame(history), state)
    # overdrawn and expired permits are in the sample: their values must survive serving as they are
    assert (history["permit_balance_used"] > 1).any() and (history["permit_days_to_expiry"] < 0).any()

    # Serving sees the filings one at a time, in lodgement order, recording each after it is stored.
    served_importers = ImporterHistory()
    rows: list[np.ndarray] = []
    declarations = declarations_from_history(history)
    for filing, facts in zip(declarations, permit_facts_from_history(history), strict=True):
        columns, _ = declaration_columns([filing], served_importers, [facts])
        rows.append(features.build_feature_matrix(columns, state))
        assert filing.lodgement_time is not None
        served_importers.record(filing.importer.id, filing.lodgement_time)
    served = np.vstack(rows)

    assert served.shape == trained.shape
    np.testing.assert_allclose(served, trained, rtol=1e-9, atol=1e-9, equal_nan=True)


def test_a_batch_gives_the_same_rows_as_one_declaration_at_a_time() -> None:
    history = generate_history(60, seed=12, start=date(2026, 1, 1), days=30)
    declarations = declarations_from_history(history)
    facts = permit_facts_from_history(history)
    known = ImporterHistory()
    for earlier in declarations[:30]:  # so importer features are not all "new"
        assert earlier.lodgement_time is not None
        known.record(earlier.importer.id, earlier.lodgement_time)
    assert any(known.lookup(d.importer.id, d.lodgement_time)[0] > 0 for d in declarations)
    batch, spans = declaration_columns(declarations, known, facts)
    singles = [declaration_columns([d], known, [f])[0] for d, f in zip(declarations, facts, strict=True)]
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
    history = ImporterHistory()
    history.record(filed.importer.id, lodged - timedelta(days=4))
    columns, spans = declaration_columns([filed], history, [[ItemPermitFacts(0.25, -6.0), ItemPermitFacts()]])
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
        "importer_prior_filings": 1.0,
        "importer_days_known": 4.0,
    }
    assert list(columns) == list(features.RAW_COLUMNS)
    assert {name: column.dtype.kind for name, column in columns.items()} == {
        name: {"str": "O", "float": "f", "int": "i"}[kind] for name, kind in features.RAW_COLUMNS.items()
    }
    assert math.isnan(columns["permit_balance_used"][1]) and math.isnan(columns["permit_days_to_expiry"][1])
    assert spans == [slice(0, 2)]


def test_without_permit_facts_the_permit_columns_are_nan() -> None:
    filed = declaration(items=(item(permit_references=("P-1",)), item(item_number=2)))
    columns, _ = declaration_columns([filed], ImporterHistory())
    assert columns["permit_count"].tolist() == [1, 0]
    assert np.isnan(columns["permit_balance_used"]).all() and np.isnan(columns["permit_days_to_expiry"]).all()
    empty, spans = declaration_columns([], ImporterHistory(), [])
    assert spans == [] and all(len(column) == 0 for column in empty.values())


def test_permit_facts_must_match_the_declarations_and_their_items() -> None:
    filed = declaration(items=(item(), item(item_number=2)))
    with pytest.raises(ValueError, match="declarations"):
        declaration_columns([filed], ImporterHistory(), [])
    with pytest.raises(ValueError, match="items"):
        declaration_columns([filed], ImporterHistory(), [[ItemPermitFacts()]])
