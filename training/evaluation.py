"""Offline evaluation of a risk model's ranking: AUC, average precision and hit rates at inspection rates."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import average_precision_score, roc_auc_score

# The WCO BACUDA / DATE convention: precision and recall among the top n% of scores, so our
# numbers compare with the published ones.
INSPECTION_RATES: tuple[float, ...] = (0.01, 0.02, 0.05, 0.10)

_NAN = float("nan")


@dataclass(frozen=True)
class RateResult:
    """What inspecting the top `rate` share of rows by score would have found."""

    rate: float
    n_selected: int
    precision: float  # findings among the selected rows / selected rows
    recall: float  # findings among the selected rows / all findings; NaN without findings
    revenue_captured: float  # share of all recovered revenue in the selected rows; NaN without revenue


@dataclass(frozen=True)
class RankingReport:
    """Ranking quality of scores against inspection findings on one set of rows."""

    n_rows: int
    n_findings: int
    finding_rate: float
    auc: float  # NaN when only one class is present
    average_precision: float  # NaN without findings
    at_rates: tuple[RateResult, ...]

    def metrics(self, prefix: str = "") -> dict[str, float]:
        """Flat metric names for MLflow, e.g. `precision_at_5pct`; undefined values stay NaN."""
        out = {
            f"{prefix}auc": self.auc,
            f"{prefix}average_precision": self.average_precision,
            f"{prefix}finding_rate": self.finding_rate,
        }
        for r in self.at_rates:
            label = rate_label(r.rate)
            out[f"{prefix}precision_at_{label}"] = r.precision
            out[f"{prefix}recall_at_{label}"] = r.recall
            out[f"{prefix}revenue_at_{label}"] = r.revenue_captured
        return out

    def at(self, rate: float) -> RateResult:
        """The result at `rate`; KeyError when that rate was not computed."""
        for r in self.at_rates:
            if math.isclose(r.rate, rate, rel_tol=1e-9, abs_tol=0.0):
                return r
        raise KeyError(rate)


@dataclass(frozen=True)
class Evaluation:
    """The report on all evaluated rows and, when there are any, on the random-control rows alone."""

    overall: RankingReport
    random_control: RankingReport | None

    def metrics(self) -> dict[str, float]:
        """Overall metrics unprefixed, random-control metrics prefixed `rc_`."""
        out = self.overall.metrics()
        if self.random_control is not None:
            out.update(self.random_control.metrics("rc_"))
        return out


def rate_label(rate: float) -> str:
    """`0.05` -> `5pct`, `0.025` -> `2.5pct`: the suffix of the metric names."""
    # Rounded first: 0.07 * 100 is 7.000000000000001 in binary floating point.
    pct = round(rate * 100.0, 9)
    return f"{int(pct)}pct" if pct.is_integer() else f"{pct:g}pct"


def selection_size(rate: float, n_rows: int) -> int:
    """Rows inspected at `rate`: floor(rate * n_rows), at least one."""
    # Rounded before the floor so that 0.29 * 100 (28.999999999999996) selects 29 rows, not 28.
    return max(1, math.floor(round(rate * n_rows, 9)))


def rank_report(
    scores: ArrayLike,
    findings: ArrayLike,
    *,
    revenue: ArrayLike | None = None,
    rates: Sequence[float] = INSPECTION_RATES,
) -> RankingReport:
    """Ranking metrics of `scores` (higher is riskier) against 0/1 `findings`.

    At rate r the selection is the top max(1, floor(r * n)) rows by score. Rows are ordered by a
    stable sort on -score, so among tied scores the row earlier in the input is selected first:
    the result is deterministic, but with many ties it depends on the input order.
    `revenue` is the recovered revenue per row (0 where nothing was recovered).
    """
    s = _scores(scores)
    y = _findings(findings, len(s))
    rev = None if revenue is None else _revenue(revenue, len(s))
    checked_rates = _rates(rates)

    n = len(s)
    n_findings = int(y.sum())
    both_classes = 0 < n_findings < n
    # sklearn warns and returns NaN or an arbitrary value where these are undefined; say NaN ourselves.
    auc = float(roc_auc_score(y, s)) if both_classes else _NAN
    ap = float(average_precision_score(y, s)) if n_findings > 0 else _NAN

    order = np.argsort(-s, kind="stable")
    found_cum = np.cumsum(y[order])
    revenue_total = 0.0 if rev is None else float(rev.sum())
    revenue_cum = None if rev is None or revenue_total <= 0.0 else np.cumsum(rev[order])

    results = []
    for rate in checked_rates:
        k = selection_size(rate, n)
        found = float(found_cum[k - 1])
        results.append(
            RateResult(
                rate=rate,
                n_selected=k,
                precision=found / k,
                recall=found / n_findings if n_findings > 0 else _NAN,
                revenue_captured=_NAN if revenue_cum is None else float(revenue_cum[k - 1]) / revenue_total,
            )
        )
    return RankingReport(
        n_rows=n,
        n_findings=n_findings,
        finding_rate=n_findings / n,
        auc=auc,
        average_precision=ap,
        at_rates=tuple(results),
    )


def evaluate(
    scores: ArrayLike,
    findings: ArrayLike,
    *,
    revenue: ArrayLike | None = None,
    random_control: ArrayLike | None = None,
    rates: Sequence[float] = INSPECTION_RATES,
) -> Evaluation:
    """The report on all rows, and on the rows of the `random_control` mask when it selects any.

    Targeted inspections only see what earlier targeting chose, so their findings flatter a model
    that learned the same targeting; random controls are the unbiased sample.
    """
    s = _scores(scores)
    y = _findings(findings, len(s))
    rev = None if revenue is None else _revenue(revenue, len(s))
    overall = rank_report(s, y, revenue=rev, rates=rates)
    control_report = None
    if random_control is not None:
        mask = _mask(random_control, len(s))
        if mask.any():
            control_report = rank_report(s[mask], y[mask], revenue=None if rev is None else rev[mask], rates=rates)
    return Evaluation(overall=overall, random_control=control_report)


# Input checks, shared with training.plots. Each error names the argument it is about.


def _scores(scores: ArrayLike, name: str = "scores") -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {s.shape}")
    if s.size == 0:
        raise ValueError(f"{name} must have at least one row")
    if not np.isfinite(s).all():
        raise ValueError(f"{name} must be finite (found NaN or infinity)")
    return s


def _findings(findings: ArrayLike, n: int) -> np.ndarray:
    y = _same_length(findings, n, "findings")
    if not np.isin(y, (0.0, 1.0)).all():  # NaN fails this too
        raise ValueError("findings must be 0 or 1")
    return y


def _revenue(revenue: ArrayLike, n: int) -> np.ndarray:
    r = _same_length(revenue, n, "revenue")
    if not np.isfinite(r).all() or (r < 0).any():
        raise ValueError("revenue must be finite and non-negative (0 where nothing was recovered)")
    return r


def _mask(mask: ArrayLike, n: int) -> np.ndarray:
    m = _same_length(mask, n, "random_control")
    if not np.isin(m, (0.0, 1.0)).all():
        raise ValueError("random_control must be a boolean mask")
    return m.astype(bool)


def _same_length(values: ArrayLike, n: int, name: str) -> np.ndarray:
    try:
        a = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numeric") from err
    if a.ndim != 1 or len(a) != n:
        raise ValueError(f"{name} must be one-dimensional with {n} rows, one per score; got shape {a.shape}")
    return a


def _rates(rates: Sequence[float]) -> tuple[float, ...]:
    checked = tuple(float(r) for r in rates)
    for r in checked:
        if not 0.0 < r <= 1.0:  # NaN fails this too
            raise ValueError(f"rates must be in (0, 1], got {r}")
    labels = [rate_label(r) for r in checked]
    if len(set(labels)) != len(labels):
        raise ValueError(f"rates must be distinct, got {list(checked)}")
    return checked
