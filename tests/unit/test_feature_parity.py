"""No train/serve skew: a declaration served one by one gets exactly the features training computed."""

from __future__ import annotations

from datetime import date

import numpy as np

import features
from risk_service.domain.feature_rows import declaration_columns
from risk_service.domain.importer_history import ImporterHistory
from tests.builders import declarations_from_history
from training.synthetic import generate_history


def test_served_features_equal_training_features_including_importer_history() -> None:
    history = generate_history(400, seed=11, start=date(2026, 1, 1), days=120)
    state = features.FeatureState.fit(features.columns_from_frame(history))
    trained = features.build_feature_matrix(features.columns_from_frame(history), state)

    # Serving sees the filings one at a time, in lodgement order, recording each after it is stored.
    served_importers = ImporterHistory()
    rows: list[np.ndarray] = []
    for declaration in declarations_from_history(history):
        columns, _ = declaration_columns([declaration], served_importers)
        rows.append(features.build_feature_matrix(columns, state))
        assert declaration.lodgement_time is not None
        served_importers.record(declaration.importer.id, declaration.lodgement_time)
    served = np.vstack(rows)

    assert served.shape == trained.shape
    np.testing.assert_allclose(served, trained, rtol=1e-9, atol=1e-9, equal_nan=True)


def test_a_batch_gives_the_same_rows_as_one_declaration_at_a_time() -> None:
    history = generate_history(60, seed=12, start=date(2026, 1, 1), days=30)
    declarations = declarations_from_history(history)
    known = ImporterHistory()
    for earlier in declarations[:30]:  # so importer features are not all "new"
        assert earlier.lodgement_time is not None
        known.record(earlier.importer.id, earlier.lodgement_time)
    assert any(known.lookup(d.importer.id, d.lodgement_time)[0] > 0 for d in declarations)
    batch, spans = declaration_columns(declarations, known)
    singles = [declaration_columns([d], known)[0] for d in declarations]
    for name, column in batch.items():
        joined = np.concatenate([s[name] for s in singles])
        assert list(column) == list(joined) or np.allclose(column, joined, equal_nan=True), name
    assert [s.stop - s.start for s in spans] == [len(d.items) for d in declarations]
