"""Entity history is point in time: no row sees a filing or an outcome from its own moment or later."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from features import ENTITY_COLUMNS, ENTITY_KINDS, EntityOutcomes, OutcomePrior, add_entity_history, entity_keys
from features.entity_history import OUTCOME_DELAY
from training.synthetic import generate_history

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
COLUMNS = ["declaration_id", "item_number", "lodgement_time", "importer_id", "declarant_id", "customs_office",
           "hs_code", "origin_country", "inspected", "finding"]  # fmt: skip


def frame(rows: list[tuple[object, ...]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


def test_counts_only_strictly_earlier_declarations_and_outcomes_known_before() -> None:
    day = timedelta(days=1)
    rows = [
        ("d1", 1, T0, "A", "B1", "OFF", "850440", "CN", True, True),
        ("d1", 2, T0, "A", "B1", "OFF", "850440", "CN", True, False),  # second item of d1, same key
        ("d2", 1, T0 + 2 * day, "A", "B2", "OFF", "850440", "CN", False, False),
        ("d3", 1, T0 + 2 * day, "A", "B1", "OFF", "610910", "VN", True, False),  # same instant as d2
        ("d4", 1, T0 + 5.5 * day, "A", "B1", "OTHER", "850440", "CN", False, False),
        ("d5", 1, T0 + 0.5 * day, "C", "B1", "OFF", "850440", "CN", False, False),  # before d1's result is known
        ("d6", 1, T0 + 9 * day, "", "", "OFF", "85", "CN", False, False),  # no importer, no broker, bad HS
    ]
    # shuffled order must not matter
    out = add_entity_history(frame(rows).iloc[[4, 0, 6, 2, 1, 5, 3]]).set_index(["declaration_id", "item_number"])
    get = out.loc

    # d1 is the first of everything; its two items share its history
    for kind in ENTITY_KINDS:
        assert get[("d1", 1), f"{kind}_prior_filings"] == get[("d1", 2), f"{kind}_prior_filings"] == 0.0
        assert math.isnan(get[("d1", 1), f"{kind}_days_known"])
        assert get[("d1", 1), f"{kind}_prior_inspections"] == 0.0
    # d2 and d3 were lodged at one instant: neither counts the other; both see d1 and its finding
    for d in ("d2", "d3"):
        assert get[(d, 1), "importer_prior_filings"] == 1.0
        assert get[(d, 1), "importer_days_known"] == pytest.approx(2.0)
        assert get[(d, 1), "importer_prior_inspections"] == 1.0 and get[(d, 1), "importer_prior_findings"] == 1.0
    assert get[("d2", 1), "declarant_prior_filings"] == 0.0  # a new broker
    assert math.isnan(get[("d2", 1), "declarant_days_known"])
    assert get[("d3", 1), "hs_origin_prior_filings"] == 0.0  # a new trade lane
    # d4: three earlier declarations by A; the lane saw d1, d2 and d5, of which only d1 was inspected
    assert get[("d4", 1), "importer_prior_filings"] == 3.0
    assert get[("d4", 1), "importer_days_known"] == pytest.approx(5.5)
    assert get[("d4", 1), "importer_prior_inspections"] == 2.0 and get[("d4", 1), "importer_prior_findings"] == 1.0
    assert get[("d4", 1), "hs_origin_prior_filings"] == 3.0
    assert get[("d4", 1), "hs_origin_prior_inspections"] == 1.0 and get[("d4", 1), "hs_origin_prior_findings"] == 1.0
    assert get[("d4", 1), "office_importer_prior_filings"] == 0.0  # A never filed at OTHER before
    # d5 came half a day after d1: d1 counts as a filing, but its result was not known yet
    assert get[("d5", 1), "declarant_prior_filings"] == 1.0
    assert get[("d5", 1), "declarant_prior_inspections"] == 0.0 and get[("d5", 1), "declarant_prior_findings"] == 0.0
    # d6 names no importer or broker and has no HS6: no history to look up for those keys
    for kind in ("importer", "declarant", "hs_origin", "office_importer"):
        assert get[("d6", 1), f"{kind}_prior_filings"] == 0.0
        assert math.isnan(get[("d6", 1), f"{kind}_prior_inspections"])
        assert math.isnan(get[("d6", 1), f"{kind}_prior_findings"])


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    return generate_history(1500, seed=5, start=date(2024, 1, 1), days=90)


def test_every_row_matches_a_brute_force_count_over_the_raw_history(synthetic: pd.DataFrame) -> None:
    out = add_entity_history(synthetic)
    keys = np.array(
        [
            entity_keys(*row)
            for row in synthetic[["importer_id", "declarant_id", "customs_office", "hs_code", "origin_country"]]
            .astype(str)
            .itertuples(index=False)
        ],
        dtype=object,
    )
    decl = synthetic.groupby("declaration_id", sort=False).agg(
        at=("lodgement_time", "first"), inspected=("inspected", "any"), finding=("finding", "any")
    )
    for i in np.random.default_rng(0).choice(len(synthetic), size=150, replace=False):
        at = synthetic["lodgement_time"].iloc[i]
        for k, kind in enumerate(ENTITY_KINDS):
            key = keys[i, k]
            same = decl.loc[pd.unique(synthetic["declaration_id"].to_numpy()[keys[:, k] == key])]
            earlier = same[same["at"] < at]
            known = earlier[earlier["inspected"] & (earlier["at"] + OUTCOME_DELAY < at)]
            row = out.iloc[i]
            assert row[f"{kind}_prior_filings"] == len(earlier), (i, kind)
            if earlier.empty:
                assert math.isnan(row[f"{kind}_days_known"])
            else:
                expected_days = (at - earlier["at"].min()).total_seconds() / 86400
                assert row[f"{kind}_days_known"] == pytest.approx(expected_days)
            assert row[f"{kind}_prior_inspections"] == len(known), (i, kind)
            assert row[f"{kind}_prior_findings"] == known["finding"].sum(), (i, kind)


def test_rewriting_the_future_changes_nothing_before_it(synthetic: pd.DataFrame) -> None:
    """The leakage proof: flip every later outcome, drop half the later filings; earlier rows are unchanged."""
    cut = synthetic["lodgement_time"].quantile(0.6)
    before = add_entity_history(synthetic)
    later = synthetic["lodgement_time"] >= cut
    future = synthetic.copy()
    future.loc[later, "inspected"] = True
    future.loc[later, "finding"] = 1 - future.loc[later, "finding"]
    dropped = future[later].drop_duplicates("declaration_id").sample(frac=0.5, random_state=1)["declaration_id"]
    future = future[~future["declaration_id"].isin(dropped)]
    after = add_entity_history(future)
    earlier_rows = before["lodgement_time"] < cut
    assert earlier_rows.sum() > 1000
    pd.testing.assert_frame_equal(
        before.loc[earlier_rows, list(ENTITY_COLUMNS)], after.loc[after["lodgement_time"] < cut, list(ENTITY_COLUMNS)]
    )
    # ...while the rows after the cut did see the change
    assert not before.loc[~earlier_rows, list(ENTITY_COLUMNS)].equals(
        after.loc[after["lodgement_time"] >= cut, list(ENTITY_COLUMNS)]
    )


def test_an_outcome_counts_from_one_delay_after_lodgement_and_not_a_moment_before() -> None:
    first = ("d1", 1, T0, "A", "B", "OFF", "850440", "CN", True, True)
    at_delay = ("d2", 1, T0 + OUTCOME_DELAY, "A", "B", "OFF", "850440", "CN", False, False)
    after = ("d3", 1, T0 + OUTCOME_DELAY + timedelta(seconds=1), "A", "B", "OFF", "850440", "CN", False, False)
    out = add_entity_history(frame([first, at_delay, after])).set_index("declaration_id")
    assert out.loc["d2", "importer_prior_inspections"] == 0.0
    assert out.loc["d3", "importer_prior_inspections"] == 1.0 and out.loc["d3", "importer_prior_findings"] == 1.0


def test_served_outcomes_count_every_inspection_of_the_frame() -> None:
    rows = [
        ("d1", 1, T0, "A", "B", "OFF", "850440", "CN", True, True),
        ("d1", 2, T0, "A", "B", "OFF", "610910", "VN", True, True),
        ("d2", 1, T0 + timedelta(hours=1), "A", "B", "OFF", "850440", "CN", True, False),
        ("d3", 1, T0 + timedelta(hours=2), "A", "B", "OFF", "850440", "CN", False, False),
    ]
    snapshot = EntityOutcomes.from_frame(frame(rows), OutcomePrior(0.03))
    assert snapshot.as_of == T0 + timedelta(hours=2) + OUTCOME_DELAY
    assert snapshot.lookup("importer", "A") == (2.0, 1.0)  # per declaration, not per item
    assert snapshot.lookup("hs_origin", "610910\x1fVN") == (1.0, 1.0)
    assert snapshot.lookup("declarant", "NEVER-SEEN") == (0.0, 0.0)
    assert all(math.isnan(v) for v in snapshot.lookup("importer", ""))
    restored = EntityOutcomes.from_dict(snapshot.to_dict())
    assert restored == snapshot


def test_outcome_prior_is_the_declaration_finding_rate_and_refuses_nonsense() -> None:
    rows = [
        ("d1", 1, T0, "A", "B", "OFF", "850440", "CN", True, True),
        ("d1", 2, T0, "A", "B", "OFF", "850440", "CN", True, False),
        ("d2", 1, T0, "A", "B", "OFF", "850440", "CN", True, False),
        ("d3", 1, T0, "A", "B", "OFF", "850440", "CN", False, False),
    ]
    assert OutcomePrior.fit(frame(rows)).rate == pytest.approx(0.5)
    with pytest.raises(ValueError, match="rate"):
        OutcomePrior(1.5)
    with pytest.raises(ValueError, match="strength"):
        OutcomePrior(0.1, 0.0)
