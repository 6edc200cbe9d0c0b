"""Entity history: what was known of a trader, a trade lane or a broker when each declaration arrived.

Four kinds of entity, each keyed by `entity_keys` (the one key definition for training and serving):
importer, declarant (broker), HS6 by origin (a trade lane) and customs office by importer. For
each: declarations filed strictly before this one, days since the first of them, and how many of
them were inspected and found irregular; the matrix turns the last two into a smoothed finding
rate with the model's OutcomePrior.

Point in time: a row sees filings lodged strictly before it and inspection outcomes known strictly
before it. The history gives no time for an outcome, so an inspection's result counts as known
OUTCOME_DELAY after its declaration was lodged. Training computes every row at once
(`add_entity_history`); serving counts filings from its own store and takes outcomes from the
`EntityOutcomes` snapshot the model carries, with the same prior and smoothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from features.codes import parse_hs
from features.schema import ENTITY_KINDS

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

__all__ = [
    "DECLARATION_ENTITIES",
    "OUTCOME_DELAY",
    "EntityOutcomes",
    "EntitySpec",
    "OutcomePrior",
    "add_entity_history",
    "entity_keys",
]

OUTCOME_DELAY = timedelta(days=1)
_SECONDS_PER_DAY = 86400.0
_SEP = "\x1f"  # unit separator: cannot occur in the ids the service accepts


def entity_keys(importer_id: str, declarant_id: str, customs_office: str, hs_code: str, origin: str) -> tuple[str, ...]:
    """The item's key for each of ENTITY_KINDS, in order; '' where a part is missing (no history then)."""
    hs = parse_hs(hs_code)
    hs6 = hs.hs6 if hs is not None else None
    origin = origin.strip().upper() if isinstance(origin, str) else ""
    return (
        importer_id or "",
        declarant_id or "",
        f"{hs6}{_SEP}{origin}" if hs6 and origin else "",
        f"{customs_office}{_SEP}{importer_id}" if customs_office and importer_id else "",
    )


@dataclass(frozen=True)
class EntitySpec:
    """Which entities a history tracks: their kinds, the filing unit (a declaration, a cargo report)
    whose rows share one outcome, its time column, and each row's key per kind ('' for none)."""

    kinds: tuple[str, ...]
    unit_column: str
    time_column: str
    keys: Callable[[pd.DataFrame], dict[str, np.ndarray]]

    def columns(self) -> tuple[str, ...]:
        """The columns add_entity_history writes: counts and days and inspections per kind, then findings."""
        per_kind = ("prior_filings", "days_known", "prior_inspections")
        counts = tuple(f"{k}_{what}" for k in self.kinds for what in per_kind)
        return counts + tuple(f"{k}_prior_findings" for k in self.kinds)


@dataclass(frozen=True, slots=True)
class OutcomePrior:
    """Finding rates shrink toward `rate` with the weight of `strength` inspections.

    `rate` is the finding rate of the training window's inspections, so an entity seen inspected
    twice (once with a finding) is not taken to be a 50 % offender.
    """

    rate: float
    strength: float = 20.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.rate <= 1.0) or not (self.strength > 0.0 and math.isfinite(self.strength)):
            raise ValueError(f"outcome prior needs a rate in [0, 1] and a positive strength, got {self}")

    @classmethod
    def fit(cls, frame: pd.DataFrame, spec: EntitySpec | None = None) -> OutcomePrior:
        """The finding rate of the frame's inspected filings (0 when nothing was inspected)."""
        decl = _unit_outcomes(frame, spec or DECLARATION_ENTITIES)
        inspected = decl["inspected"].to_numpy(dtype=bool)
        rate = float(decl["finding"].to_numpy(dtype=bool)[inspected].mean()) if inspected.any() else 0.0
        return cls(rate)


@dataclass(frozen=True)
class EntityOutcomes:
    """Inspections and findings per entity up to `as_of`: the outcomes a served model knows of.

    Only entities with at least one inspection are kept; any other known key has the prior rate.
    """

    prior: OutcomePrior
    as_of: datetime | None
    counts: Mapping[str, Mapping[str, tuple[int, int]]] = field(default_factory=dict)  # kind -> key -> (insp, finds)

    def lookup(self, kind: str, key: str) -> tuple[float, float]:
        """(inspections, findings) of one entity; NaN for the key '' (no entity to look up)."""
        if not key:
            return math.nan, math.nan
        inspected, findings = self.counts.get(kind, {}).get(key, (0, 0))
        return float(inspected), float(findings)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, prior: OutcomePrior, spec: EntitySpec | None = None) -> EntityOutcomes:
        """Every outcome in the frame, as known once the last of them is (its last filing + OUTCOME_DELAY)."""
        spec = spec or DECLARATION_ENTITIES
        if frame.empty:
            return cls(prior, None, {kind: {} for kind in spec.kinds})
        pairs = _entity_pairs(frame, spec)
        counts: dict[str, dict[str, tuple[int, int]]] = {}
        for kind, p in pairs.items():
            seen = p[p["inspected"]]
            grouped = seen.groupby("key", sort=True)["finding"].agg(["size", "sum"])
            counts[kind] = {
                str(k): (int(n), int(f))
                for k, n, f in zip(grouped.index, grouped["size"].to_numpy(), grouped["sum"].to_numpy(), strict=True)
            }
        last = frame[spec.time_column].max()
        return cls(prior, last.to_pydatetime() + OUTCOME_DELAY, counts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "prior_rate": self.prior.rate,
            "prior_strength": self.prior.strength,
            "as_of": self.as_of.isoformat() if self.as_of is not None else None,
            "counts": {kind: {k: list(v) for k, v in keys.items()} for kind, keys in self.counts.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EntityOutcomes:
        as_of = data.get("as_of")
        return cls(
            OutcomePrior(float(data["prior_rate"]), float(data["prior_strength"])),
            datetime.fromisoformat(as_of) if as_of else None,
            {
                str(kind): {str(k): (int(v[0]), int(v[1])) for k, v in keys.items()}
                for kind, keys in data["counts"].items()
            },
        )


def add_entity_history(frame: pd.DataFrame, spec: EntitySpec | None = None) -> pd.DataFrame:
    """A copy of `frame` (canonical history rows) with the spec's entity columns (spec.columns()).

    Per entity kind, point in time: filings (declarations, cargo reports) with the same key made
    strictly before this one, days since the earliest of them (NaN when there is none), and the
    inspections and findings among them whose outcome was known strictly before this filing. A row
    whose key is '' gets 0 filings and NaN days, inspections and findings.
    """
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

    spec = spec or DECLARATION_ENTITIES
    out = frame.copy()
    if frame.empty:
        for name in spec.columns():
            out[name] = np.array([], dtype=np.float64)
        return out
    pairs = _entity_pairs(frame, spec)
    keys = spec.keys(frame)
    row_unit = frame[spec.unit_column].astype(str).to_numpy()
    for kind, p in pairs.items():
        by_key = p.groupby("key", sort=False)["time"]
        prior_filings = by_key.rank(method="min").sub(1.0).to_numpy(dtype=np.float64)
        first_seen = by_key.transform("min")
        days = ((p["time"] - first_seen).dt.total_seconds() / _SECONDS_PER_DAY).to_numpy(dtype=np.float64)
        days = np.where(prior_filings > 0, days, np.nan)

        # Outcomes known strictly before each declaration's lodgement: an as-of join on the running
        # totals of inspections per key, ordered by the time each outcome became known.
        events = p.loc[p["inspected"], ["key", "time", "finding"]].copy()
        events["known_at"] = events["time"] + pd.Timedelta(OUTCOME_DELAY)
        events = events.sort_values("known_at", kind="stable")
        events["inspections"] = events.groupby("key", sort=False).cumcount() + 1.0
        events["findings"] = events.groupby("key", sort=False)["finding"].cumsum().astype(np.float64)
        queries = p[["key", "time"]].reset_index().sort_values("time", kind="stable")
        joined = pd.merge_asof(
            queries,
            events[["key", "known_at", "inspections", "findings"]],
            left_on="time",
            right_on="known_at",
            by="key",
            allow_exact_matches=False,
        ).set_index("index")
        inspections = joined["inspections"].reindex(p.index).fillna(0.0).to_numpy(dtype=np.float64)
        findings = joined["findings"].reindex(p.index).fillna(0.0).to_numpy(dtype=np.float64)

        names = _columns_of(kind)
        per_pair = pd.DataFrame(
            dict(zip(names, (prior_filings, days, inspections, findings), strict=True)),
            index=pd.MultiIndex.from_arrays([p["unit"].to_numpy(), p["key"].to_numpy()]),
        )
        looked_up = per_pair.reindex(pd.MultiIndex.from_arrays([row_unit, keys[kind]]))
        missing = keys[kind] == ""
        for name in names:
            empty = 0.0 if name.endswith("_prior_filings") else np.nan
            out[name] = np.where(missing, empty, looked_up[name].to_numpy(dtype=np.float64))
    return out


def _columns_of(kind: str) -> tuple[str, str, str, str]:
    return f"{kind}_prior_filings", f"{kind}_days_known", f"{kind}_prior_inspections", f"{kind}_prior_findings"


def _text(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), "", dtype=object)
    return np.array([v if isinstance(v, str) else "" for v in frame[column].to_numpy(dtype=object)], dtype=object)


def _item_keys(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each row's key per kind, through `entity_keys` so serving computes the very same strings."""
    columns = [_text(frame, c) for c in ("importer_id", "declarant_id", "customs_office", "hs_code", "origin_country")]
    rows = [entity_keys(*row) for row in zip(*columns, strict=True)]
    transposed = list(zip(*rows, strict=True)) if rows else [() for _ in ENTITY_KINDS]
    return {kind: np.array(col, dtype=object) for kind, col in zip(ENTITY_KINDS, transposed, strict=True)}


def _unit_outcomes(frame: pd.DataFrame, spec: EntitySpec) -> pd.DataFrame:
    """One row per filing: inspected if any of its rows was, a finding if any had one."""
    return (
        frame.assign(
            inspected=frame["inspected"].astype(bool),
            finding=frame["finding"].fillna(False).astype(bool) if "finding" in frame else False,
        )
        .groupby(spec.unit_column, sort=False)[["inspected", "finding"]]
        .any()
    )


def _entity_pairs(frame: pd.DataFrame, spec: EntitySpec) -> dict[str, pd.DataFrame]:
    """Per kind, one row per (filing, non-empty key): its time and the filing's outcome.

    Outcomes are per filing (an inspection opens the consignment, not one item), as serving
    will record them.
    """
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

    keys = spec.keys(frame)
    unit = frame[spec.unit_column].astype(str).to_numpy()
    outcomes = _unit_outcomes(frame, spec)
    outcomes.index = outcomes.index.astype(str)
    outcome = outcomes.reindex(unit)
    base = pd.DataFrame(
        {
            "unit": unit,
            "time": frame[spec.time_column].reset_index(drop=True),
            "inspected": outcome["inspected"].to_numpy(dtype=bool),
            "finding": outcome["finding"].to_numpy(dtype=bool),
        }
    )
    out: dict[str, pd.DataFrame] = {}
    for kind in spec.kinds:
        rows = base.assign(key=keys[kind])
        rows = rows[rows["key"] != ""]
        out[kind] = rows.drop_duplicates(["unit", "key"]).reset_index(drop=True)
    return out


DECLARATION_ENTITIES = EntitySpec(ENTITY_KINDS, "declaration_id", "lodgement_time", _item_keys)
