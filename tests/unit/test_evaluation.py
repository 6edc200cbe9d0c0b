"""Ranking evaluation and its plots: known answers at inspection rates, sklearn parity, input checks."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from training.evaluation import (
    INSPECTION_RATES,
    Evaluation,
    RankingReport,
    evaluate,
    rank_report,
    rate_label,
    selection_size,
)
from training.plots import (
    calibration_plot,
    feature_importance_plot,
    gain_curve_plot,
    precision_recall_plot,
    shap_summary_plot,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _hand_example() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """100 rows, shuffled; findings at score ranks 1, 3 (top 5), 8 (top 10) and 50.

    Revenue 100, 200, 300 and 400 on those rows, plus 0 elsewhere.
    """
    rank_scores = np.linspace(1.0, 0.01, 100)  # rank 1 has the highest score
    rank_findings = np.zeros(100)
    rank_revenue = np.zeros(100)
    for rank, revenue in ((1, 100.0), (3, 200.0), (8, 300.0), (50, 400.0)):
        rank_findings[rank - 1] = 1
        rank_revenue[rank - 1] = revenue
    shuffle = np.random.default_rng(7).permutation(100)
    return rank_scores[shuffle], rank_findings[shuffle], rank_revenue[shuffle]


def test_hand_computed_precision_recall_and_revenue_at_rates() -> None:
    scores, findings, revenue = _hand_example()
    report = rank_report(scores, findings, revenue=revenue)
    assert (report.n_rows, report.n_findings, report.finding_rate) == (100, 4, 0.04)
    expected = {  # rate: (selected, precision, recall, revenue captured)
        0.01: (1, 1.0, 0.25, 0.1),
        0.02: (2, 0.5, 0.25, 0.1),
        0.05: (5, 0.4, 0.5, 0.3),
        0.10: (10, 0.3, 0.75, 0.6),
    }
    assert [r.rate for r in report.at_rates] == list(INSPECTION_RATES)
    for rate, (selected, precision, recall, revenue_share) in expected.items():
        result = report.at(rate)
        assert result.n_selected == selected
        assert result.precision == pytest.approx(precision)
        assert result.recall == pytest.approx(recall)
        assert result.revenue_captured == pytest.approx(revenue_share)


def test_revenue_is_nan_without_a_revenue_column_or_with_zero_total() -> None:
    scores, findings, _ = _hand_example()
    assert all(math.isnan(r.revenue_captured) for r in rank_report(scores, findings).at_rates)
    zero = rank_report(scores, findings, revenue=np.zeros(100))
    assert all(math.isnan(r.revenue_captured) for r in zero.at_rates)


def test_selection_is_floor_of_rate_times_rows_but_at_least_one() -> None:
    assert selection_size(0.01, 250) == 2  # 2.5 rows -> 2
    assert selection_size(0.01, 50) == 1  # 0.5 rows -> still one inspection
    assert selection_size(0.29, 100) == 29  # 0.29 * 100 is 28.999999999999996 in floating point
    assert selection_size(1.0, 7) == 7
    report = rank_report(np.arange(250.0), np.zeros(250), rates=(0.01, 1.0))
    assert [r.n_selected for r in report.at_rates] == [2, 250]


def test_auc_and_average_precision_equal_sklearn_on_random_data() -> None:
    rng = np.random.default_rng(3)
    findings = (rng.random(2_000) < 0.05).astype(int)
    scores = rng.random(2_000) + 0.3 * findings
    report = rank_report(scores, findings)
    assert report.auc == pytest.approx(roc_auc_score(findings, scores), abs=1e-12)
    assert report.average_precision == pytest.approx(average_precision_score(findings, scores), abs=1e-12)
    assert 0.5 < report.auc < 1.0


def test_tied_scores_select_the_earlier_rows_every_time() -> None:
    scores = np.full(100, 0.5)
    findings = np.zeros(100)
    findings[:2] = 1  # the first rows in input order win ties
    first = rank_report(scores, findings)
    assert first.at(0.02).precision == 1.0
    assert first == rank_report(scores.copy(), findings.copy())
    # the same rows at the end of the input are not selected
    assert rank_report(scores, findings[::-1]).at(0.02).precision == 0.0
    # ties among the top scores only: the lower-scored finding cannot sneak in
    scores[50] = 0.9
    assert rank_report(scores, findings).at(0.02).n_selected == 2
    assert rank_report(scores, findings).at(0.02).precision == 0.5


def test_one_class_gives_nan_auc() -> None:
    scores = np.linspace(0.0, 1.0, 50)
    none_found = rank_report(scores, np.zeros(50))
    assert math.isnan(none_found.auc)
    assert math.isnan(none_found.average_precision)
    assert math.isnan(none_found.at(0.10).recall)
    assert none_found.at(0.10).precision == 0.0
    all_found = rank_report(scores, np.ones(50))
    assert math.isnan(all_found.auc)
    assert all_found.average_precision == 1.0
    assert all_found.at(0.10).recall == pytest.approx(5 / 50)


def test_random_control_report_uses_only_the_masked_rows() -> None:
    rng = np.random.default_rng(5)
    scores = rng.random(1_000)
    findings = (rng.random(1_000) < 0.1).astype(int)
    revenue = findings * rng.uniform(10, 100, 1_000)
    control = rng.random(1_000) < 0.2
    evaluation = evaluate(scores, findings, revenue=revenue, random_control=control)
    assert evaluation.overall == rank_report(scores, findings, revenue=revenue)
    assert evaluation.random_control is not None
    assert evaluation.random_control.n_rows == int(control.sum())
    assert evaluation.random_control == rank_report(scores[control], findings[control], revenue=revenue[control])


def test_random_control_report_is_absent_without_control_rows() -> None:
    scores, findings, _ = _hand_example()
    assert evaluate(scores, findings).random_control is None
    no_rows = evaluate(scores, findings, random_control=np.zeros(100, dtype=bool))
    assert no_rows.random_control is None
    assert not any(name.startswith("rc_") for name in no_rows.metrics())


def test_metric_names_are_flat_and_prefixed() -> None:
    scores, findings, revenue = _hand_example()
    control = np.arange(100) % 2 == 0
    metrics = evaluate(scores, findings, revenue=revenue, random_control=control).metrics()
    per_rate = {f"{kind}_at_{pct}pct" for kind in ("precision", "recall", "revenue") for pct in ("1", "2", "5", "10")}
    unprefixed = {"auc", "average_precision", "finding_rate"} | per_rate
    assert set(metrics) == unprefixed | {f"rc_{name}" for name in unprefixed}
    assert metrics["precision_at_5pct"] == pytest.approx(0.4)
    assert metrics["revenue_at_10pct"] == pytest.approx(0.6)
    assert all(isinstance(v, float) for v in metrics.values())


def test_report_metrics_take_a_prefix_and_label_fractional_rates() -> None:
    scores, findings, _ = _hand_example()
    report = rank_report(scores, findings, rates=(0.025, 0.07))
    assert set(report.metrics("valid_")) == {
        "valid_auc",
        "valid_average_precision",
        "valid_finding_rate",
        "valid_precision_at_2.5pct",
        "valid_recall_at_2.5pct",
        "valid_revenue_at_2.5pct",
        "valid_precision_at_7pct",
        "valid_recall_at_7pct",
        "valid_revenue_at_7pct",
    }
    assert [rate_label(r) for r in (0.01, 0.1, 0.5, 1.0, 0.005)] == ["1pct", "10pct", "50pct", "100pct", "0.5pct"]


def test_at_raises_key_error_for_a_rate_not_computed() -> None:
    scores, findings, _ = _hand_example()
    report = rank_report(scores, findings)
    assert report.at(0.1).n_selected == 10
    with pytest.raises(KeyError):
        report.at(0.03)


def test_evaluation_objects_are_frozen() -> None:
    scores, findings, _ = _hand_example()
    evaluation = evaluate(scores, findings)
    assert isinstance(evaluation, Evaluation)
    assert isinstance(evaluation.overall, RankingReport)
    with pytest.raises(AttributeError):
        evaluation.overall.auc = 1.0  # type: ignore[misc]


_GOOD: dict[str, Any] = {"scores": [0.9, 0.1, 0.5], "findings": [1, 0, 0]}


@pytest.mark.parametrize(
    ("changes", "argument"),
    [
        ({"findings": [1, 0]}, "findings"),
        ({"findings": [1, 0, 2]}, "findings"),
        ({"findings": [1, 0, 0.5]}, "findings"),
        ({"findings": [1, 0, float("nan")]}, "findings"),
        ({"findings": ["yes", "no", "no"]}, "findings"),
        ({"scores": [0.9, float("nan"), 0.5]}, "scores"),
        ({"scores": [0.9, float("inf"), 0.5]}, "scores"),
        ({"scores": [], "findings": []}, "scores"),
        ({"scores": [[0.9, 0.1, 0.5]]}, "scores"),
        ({"revenue": [1.0, 2.0]}, "revenue"),
        ({"revenue": [1.0, -2.0, 0.0]}, "revenue"),
        ({"revenue": [1.0, float("nan"), 0.0]}, "revenue"),
        ({"rates": (0.0,)}, "rates"),
        ({"rates": (1.5,)}, "rates"),
        ({"rates": (-0.1,)}, "rates"),
        ({"rates": (float("nan"),)}, "rates"),
        ({"rates": (0.05, 0.05)}, "rates"),
        ({"random_control": [True, False]}, "random_control"),
        ({"random_control": [1, 0, 3]}, "random_control"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(changes: dict[str, Any], argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        evaluate(**{**_GOOD, **changes})
    if "random_control" not in changes:
        with pytest.raises(ValueError, match=argument):
            rank_report(**{**_GOOD, **changes})


# Plots


@pytest.fixture(scope="module")
def scored() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    findings = (rng.random(3_000) < 0.04).astype(int)
    probabilities = np.clip(rng.beta(1, 20, 3_000) + 0.2 * findings, 0.0, 1.0)
    revenue = findings * rng.uniform(50, 5_000, 3_000)
    return probabilities, findings, revenue


def _assert_png(path: Path, folder: Path) -> None:
    assert path.parent == folder
    assert path.suffix == ".png"
    data = path.read_bytes()
    assert len(data) > 1_000
    assert data.startswith(PNG_SIGNATURE)


def test_precision_recall_plot_writes_a_png(tmp_path: Path, scored: tuple[np.ndarray, ...]) -> None:
    probabilities, findings, _ = scored
    _assert_png(precision_recall_plot(probabilities, findings, tmp_path), tmp_path)


def test_precision_recall_plot_without_findings_still_writes_a_png(tmp_path: Path) -> None:
    _assert_png(precision_recall_plot(np.linspace(0, 1, 20), np.zeros(20), tmp_path), tmp_path)


def test_gain_curve_plot_writes_a_png_with_and_without_revenue(tmp_path: Path, scored: tuple[np.ndarray, ...]) -> None:
    probabilities, findings, revenue = scored
    _assert_png(gain_curve_plot(probabilities, findings, tmp_path / "plain"), tmp_path / "plain")
    path = gain_curve_plot(probabilities, findings, tmp_path, revenue=revenue, rates=(0.01, 0.025, 0.5))
    _assert_png(path, tmp_path)


def test_calibration_plot_writes_a_png(tmp_path: Path, scored: tuple[np.ndarray, ...]) -> None:
    probabilities, findings, _ = scored
    _assert_png(calibration_plot(probabilities, findings, tmp_path, bins=8), tmp_path)


def test_calibration_plot_rejects_probabilities_outside_zero_one(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="probabilities"):
        calibration_plot([0.5, 1.5], [0, 1], tmp_path)
    with pytest.raises(ValueError, match="bins"):
        calibration_plot([0.5, 0.5], [0, 1], tmp_path, bins=0)


def test_feature_importance_plot_writes_a_png(tmp_path: Path) -> None:
    names = [f"feature_{i}" for i in range(30)]
    gains = np.random.default_rng(2).exponential(100.0, 30)
    _assert_png(feature_importance_plot(names, gains, tmp_path, top=12), tmp_path)
    with pytest.raises(ValueError, match="gains"):
        feature_importance_plot(names, gains[:5], tmp_path)


def test_shap_summary_plot_writes_a_png_with_missing_feature_values(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    rows, features = 2_000, 6
    matrix = rng.normal(size=(rows, features))
    matrix[:, 2] = rng.integers(0, 3, rows)  # a categorical code
    matrix[:, 4] = 1.0  # a constant column
    matrix[rng.random(rows) < 0.3, 1] = np.nan
    matrix[:, 5] = np.nan  # a column never present
    contributions = np.column_stack([0.1 * (i + 1) * np.nan_to_num(matrix[:, i]) for i in range(features)])
    contributions = np.column_stack([contributions, np.full(rows, -3.0)])  # the bias column
    names = [f"feature_{i}" for i in range(features)]
    path = shap_summary_plot(contributions, matrix, names, tmp_path, top=5)
    _assert_png(path, tmp_path)
    with pytest.raises(ValueError, match="contributions"):
        shap_summary_plot(contributions[:, :-1], matrix, names, tmp_path)
    with pytest.raises(ValueError, match="matrix"):
        shap_summary_plot(contributions, matrix[:10], names, tmp_path)


def test_shap_summary_plot_subsamples_large_inputs(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    rows = 25_000
    matrix = rng.normal(size=(rows, 2))
    contributions = np.column_stack([matrix, np.zeros(rows)])
    _assert_png(shap_summary_plot(contributions, matrix, ["a", "b"], tmp_path), tmp_path)


def test_plots_draw_a_single_row_without_layout_warnings(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a label outside the axes collapses the layout with a warning
        _assert_png(gain_curve_plot([0.3], [1], tmp_path), tmp_path)
        _assert_png(precision_recall_plot([0.3], [1], tmp_path), tmp_path)
        _assert_png(calibration_plot([0.3], [1], tmp_path), tmp_path)
        _assert_png(shap_summary_plot(np.zeros((1, 3)), np.full((1, 2), np.nan), ["a", "b"], tmp_path), tmp_path)
