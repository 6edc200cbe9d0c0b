"""Evaluation plots of a trained risk model, written as PNG files for the training run's artifacts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, brier_score_loss, precision_recall_curve

from training.evaluation import INSPECTION_RATES, _findings, _rates, _revenue, _scores, rate_label, selection_size

SHAP_MAX_ROWS = 20_000  # rows drawn in the SHAP summary; beyond this the picture does not change
SHAP_SEED = 0
_GAIN_CURVE_POINTS = 2_000  # vertices per gain curve panel, however many rows there are
_MISSING_COLOUR = "#b0b0b0"
_DPI = 110


@contextmanager
def _figure(width: float, height: float) -> Iterator[Figure]:
    # A bare Figure on an Agg canvas: no pyplot, so no global backend switch and no figure registry
    # that keeps figures alive between calls.
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    try:
        yield fig
    finally:
        fig.clear()


def _save(fig: Figure, out_dir: str | Path, filename: str) -> Path:
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    fig.savefig(path, format="png", dpi=_DPI)
    return path


def _note(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4")


def precision_recall_plot(scores: ArrayLike, findings: ArrayLike, out_dir: str | Path) -> Path:
    """Precision against recall over all score thresholds, with the finding rate as the no-skill line."""
    s = _scores(scores)
    y = _findings(findings, len(s))
    with _figure(6.0, 5.0) as fig:
        ax = fig.add_subplot()
        if y.sum() > 0:
            precision, recall, _ = precision_recall_curve(y, s)
            ap = float(average_precision_score(y, s))
            ax.plot(recall, precision, drawstyle="steps-post", label=f"model (AP {ap:.3f})")
            ax.axhline(float(y.mean()), color="0.5", linestyle="--", label=f"random ({y.mean():.3f})")
            ax.legend(loc="upper right")
        else:  # a window or a control sample without findings: still write the file the run expects
            _note(ax, "no findings: precision-recall undefined")
        ax.set(xlim=(0.0, 1.0), ylim=(0.0, 1.02), xlabel="recall", ylabel="precision")
        ax.set_title("Precision-recall")
        return _save(fig, out_dir, "precision_recall.png")


def gain_curve_plot(
    scores: ArrayLike,
    findings: ArrayLike,
    out_dir: str | Path,
    *,
    revenue: ArrayLike | None = None,
    rates: Sequence[float] = INSPECTION_RATES,
) -> Path:
    """Share of findings (and of recovered revenue) captured against share of rows inspected.

    Rows are ordered as in training.evaluation.rank_report. The right panel zooms on the low
    inspection rates a customs administration can afford, where the left one is unreadable.
    """
    s = _scores(scores)
    y = _findings(findings, len(s))
    rev = None if revenue is None else _revenue(revenue, len(s))
    checked = _rates(rates)
    n = len(s)
    order = np.argsort(-s, kind="stable")
    curves: list[tuple[str, np.ndarray]] = []
    if y.sum() > 0:
        curves.append(("findings", np.concatenate(([0.0], np.cumsum(y[order]) / y.sum()))))
    if rev is not None and rev.sum() > 0:
        curves.append(("revenue", np.concatenate(([0.0], np.cumsum(rev[order]) / rev.sum()))))

    zoom = min(1.0, 2.0 * max(checked, default=0.05))
    with _figure(11.0, 5.0) as fig:
        for ax, upper in zip(fig.subplots(1, 2), (1.0, zoom), strict=True):
            # Row counts 0..k on an even grid, so a million rows still draw as a few thousand vertices.
            k_max = max(1, round(upper * n))
            k = np.unique(np.linspace(0, k_max, min(k_max, _GAIN_CURVE_POINTS) + 1).round().astype(np.int64))
            for label, curve in curves:
                ax.plot(k / n, curve[k], label=label)
            ax.plot([0.0, upper], [0.0, upper], color="0.5", linestyle="--", label="random")
            for rate in checked:
                at = selection_size(rate, n) / n  # the share actually inspected: at least one row
                if at <= upper:
                    ax.axvline(at, color="0.75", linewidth=0.8)
                    if upper < 1.0 or zoom == 1.0:  # on the full axis the low rates' labels would overlap
                        ax.text(at, 1.0, rate_label(rate), rotation=90, va="top", ha="right", fontsize=8, color="0.4")
            if not curves:
                _note(ax, "no findings or revenue")
            ax.set(xlim=(0.0, upper), ylim=(0.0, 1.02), xlabel="share of rows inspected", ylabel="share captured")
            ax.set_title("all rows" if upper == 1.0 else f"top-scored {upper:.0%} of rows")
            ax.legend(loc="lower right")
        fig.suptitle("Gain curve: findings and revenue captured by inspecting the top-scored rows")
        return _save(fig, out_dir, "gain_curve.png")


def calibration_plot(probabilities: ArrayLike, findings: ArrayLike, out_dir: str | Path, *, bins: int = 10) -> Path:
    """Observed finding rate against mean predicted probability in quantile bins, with the score histogram.

    Quantile bins, because findings are rare and almost all probabilities are small: equal-width
    bins would leave the top bins nearly empty.
    """
    p = _scores(probabilities, "probabilities")
    if (p < 0).any() or (p > 1).any():
        raise ValueError("probabilities must be in [0, 1]")
    y = _findings(findings, len(p))
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    observed, predicted = calibration_curve(y, p, n_bins=bins, strategy="quantile")
    brier = float(brier_score_loss(y, p))
    with _figure(6.0, 6.5) as fig:
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
        upper = max(float(p.max()), float(np.max(observed, initial=0.0)), 1e-3) * 1.05
        top.plot([0.0, upper], [0.0, upper], color="0.5", linestyle="--", label="perfectly calibrated")
        top.plot(predicted, observed, marker="o", label=f"model (Brier {brier:.4f})")
        top.set(xlim=(0.0, upper), ylim=(0.0, upper), ylabel="observed finding rate")
        top.set_title(f"Calibration ({bins} quantile bins)")
        top.legend(loc="upper left")
        bottom.hist(p, bins=50, range=(0.0, upper), color="0.5")
        bottom.set(yscale="log", xlabel="predicted probability of a finding", ylabel="rows")
        return _save(fig, out_dir, "calibration.png")


def feature_importance_plot(names: Sequence[str], gains: ArrayLike, out_dir: str | Path, *, top: int = 20) -> Path:
    """The `top` features by total split gain (`Booster.feature_importance("gain")`), largest first."""
    g = np.asarray(gains, dtype=np.float64)
    if g.ndim != 1 or len(g) != len(names):
        raise ValueError(f"gains must be one-dimensional with one value per name ({len(names)}), got shape {g.shape}")
    if not np.isfinite(g).all():
        raise ValueError("gains must be finite")
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    order = np.argsort(-g, kind="stable")[:top][::-1]  # barh draws bottom up: largest last, so on top
    shown = len(order)
    with _figure(7.0, 1.0 + 0.3 * max(shown, 3)) as fig:
        ax = fig.add_subplot()
        ax.barh(np.arange(shown), g[order], color="tab:blue")
        ax.set_yticks(np.arange(shown), [names[i] for i in order])
        ax.set(xlabel="total split gain", ylabel="feature")
        ax.set_title(f"Feature importance (gain), top {shown} of {len(names)}")
        return _save(fig, out_dir, "feature_importance.png")


def shap_summary_plot(
    contributions: ArrayLike,
    matrix: ArrayLike,
    names: Sequence[str],
    out_dir: str | Path,
    *,
    top: int = 20,
) -> Path:
    """A beeswarm summary of SHAP values, one row per feature ordered by mean |SHAP|.

    `contributions` is LightGBM's `predict(..., pred_contrib=True)` output: exact TreeSHAP values
    in log-odds with the bias as the last column, so no `shap` package is needed. Points are
    coloured by the rank of the feature's value among the column's distinct values (categorical
    codes included, as shap does); missing values are grey. At most SHAP_MAX_ROWS rows are
    drawn, sampled with a fixed seed; the feature order uses all rows.
    """
    c = np.asarray(contributions, dtype=np.float64)
    x = np.asarray(matrix, dtype=np.float64)
    n_features = len(names)
    if c.ndim != 2 or c.shape[1] != n_features + 1 or c.shape[0] == 0:
        raise ValueError(
            f"contributions must have shape (rows, {n_features} features + 1 bias) with rows > 0, got {c.shape}"
        )
    if not np.isfinite(c).all():
        raise ValueError("contributions must be finite")
    if x.shape != (c.shape[0], n_features):
        raise ValueError(f"matrix must have shape {(c.shape[0], n_features)} like contributions, got {x.shape}")
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    shap_values = c[:, :n_features]
    order = np.argsort(-np.abs(shap_values).mean(axis=0), kind="stable")[:top]
    if len(c) > SHAP_MAX_ROWS:
        rows = np.sort(np.random.default_rng(SHAP_SEED).choice(len(c), SHAP_MAX_ROWS, replace=False))
        shap_values, x = shap_values[rows], x[rows]

    rng = np.random.default_rng(SHAP_SEED)
    cmap = colormaps["coolwarm"]
    shown = len(order)
    with _figure(8.0, 1.2 + 0.4 * max(shown, 3)) as fig:
        ax = fig.add_subplot()
        for position, feature in enumerate(order):
            y_row = shown - 1 - position  # largest mean |SHAP| at the top
            values = shap_values[:, feature]
            offsets = _swarm_offsets(values, rng)
            colour_rank = _value_rank(x[:, feature])
            missing = np.isnan(colour_rank)
            ax.scatter(values[missing], y_row + offsets[missing], s=6, c=_MISSING_COLOUR, linewidths=0, rasterized=True)
            ax.scatter(
                values[~missing],
                y_row + offsets[~missing],
                s=6,
                c=colour_rank[~missing],
                cmap=cmap,
                vmin=0.0,
                vmax=1.0,
                linewidths=0,
                rasterized=True,
            )
        ax.axvline(0.0, color="0.5", linewidth=0.8)
        ax.set_yticks(np.arange(shown), [names[i] for i in order[::-1]])
        ax.set_ylim(-0.6, shown - 0.4)
        ax.set(xlabel="SHAP value (impact on log-odds of a finding)", ylabel="feature")
        ax.set_title(f"SHAP summary, top {shown} of {n_features} features ({len(shap_values):,} rows)")
        bar = fig.colorbar(ScalarMappable(norm=Normalize(0.0, 1.0), cmap=cmap), ax=ax, ticks=[0.0, 1.0], aspect=40)
        bar.ax.set_yticklabels(["low", "high"])
        bar.set_label("feature value (rank in column; grey: missing)")
        return _save(fig, out_dir, "shap_summary.png")


def _swarm_offsets(values: np.ndarray, rng: np.random.Generator, bins: int = 100, width: float = 0.4) -> np.ndarray:
    """Vertical offsets that stack points sharing an x bin alternately above and below the row's line."""
    lo, hi = float(values.min()), float(values.max())
    if hi == lo:
        bin_of = np.zeros(len(values), dtype=np.int64)
    else:
        bin_of = np.minimum(((values - lo) / (hi - lo) * bins).astype(np.int64), bins - 1)
    # A random order inside each bin, so the layers carry no pattern from the input order.
    order = np.lexsort((rng.permutation(len(values)), bin_of))
    sorted_bins = bin_of[order]
    starts = np.searchsorted(sorted_bins, sorted_bins, side="left")
    layer = np.arange(len(values)) - starts  # 0, 1, 2, ... within each bin
    sign = np.where(layer % 2 == 0, 1.0, -1.0)
    offset_sorted = sign * ((layer + 1) // 2)
    scale = width / max(float(np.abs(offset_sorted).max()), 1.0)
    offsets = np.empty(len(values))
    offsets[order] = offset_sorted * scale
    return offsets


def _value_rank(column: np.ndarray) -> np.ndarray:
    """Rank of each value among the column's distinct values, scaled to [0, 1]; NaN stays NaN."""
    out = np.full(len(column), np.nan)
    present = ~np.isnan(column)
    distinct, inverse = np.unique(column[present], return_inverse=True)
    if len(distinct) == 1:
        out[present] = 0.5
    elif len(distinct) > 1:
        out[present] = inverse / (len(distinct) - 1)
    return out
