"""Canonical history rows (training.history) as domain declarations with their outcomes, for backtests.

A history row is one goods item; the items of a declaration share its id and become one
`Declaration`, items in item_number order, declarations in order of first appearance (the
history's lodgement order). Declaration-level fields come from the first item. The history
carries less than a filing: names, destination, transport document, containers, incoterm,
invoice and goods descriptions get neutral values (blank, none, NaN for the invoice amount) and
are listed in MISSING_CONTEXT_NAMES, so a backtest can say which rules read them. Three fields
are reduced: preference_claimed is a flag (a claim becomes the code CLAIMED), permits are a count
(blank references), and duties are one total (one DutyTax with a blank type code, NaN when
unknown, so the feature stays missing as it is in training).
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from risk_service.domain.declaration import (
    AeoStatus,
    Declaration,
    DeclarationType,
    DutyTax,
    GoodsItem,
    Party,
    TransportMode,
)
from risk_service.domain.permits.model import ItemPermitFacts
from risk_service.domain.policy import SelectionPolicy
from risk_service.domain.rules import RuleSet
from risk_service.domain.rules.backtest import BacktestReport, Case, HistoryOutcome, backtest
from training.history import COLUMNS_BY_NAME

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

    from features import FeatureState

#: Rule context names the canonical history cannot fill; rules reading them see neutral values.
MISSING_CONTEXT_NAMES: frozenset[str] = frozenset(
    {
        "declaration.importer_name",
        "declaration.exporter_name",
        "declaration.destination_country",
        "declaration.transport_document_number",
        "declaration.container_count",
        "declaration.incoterm",
        "declaration.invoice_currency",
        "declaration.invoice_amount",
        "item.description",
    }
)

PREFERENCE_CLAIMED = "CLAIMED"  # the history records that a preference was claimed, not which

_REQUIRED = tuple(c.name for c in COLUMNS_BY_NAME.values() if c.required)
# Codes the domain does not know become UNSPECIFIED, as they do from the wire (e.g. transport mode 9, unknown).
_DECLARATION_TYPES = {int(m): m for m in DeclarationType}
_AEO_STATUSES = {int(m): m for m in AeoStatus}
_TRANSPORT_MODES = {int(m): m for m in TransportMode}


@dataclass(frozen=True, slots=True)
class _Rows:
    """Every canonical column as an array, rows grouped by declaration and in item order."""

    columns: dict[str, np.ndarray]
    starts: np.ndarray  # each declaration's first row
    ends: np.ndarray


def declarations_from_history(frame: pd.DataFrame) -> list[Case]:
    """One (Declaration, HistoryOutcome) per declaration in a canonical history frame (read_history).

    Optional canonical columns the frame lacks take the schema's defaults. Outcomes: inspected if
    any item was, a finding if any item had one, revenue summed over items (NaN when none is
    recorded), a random control if any item was one.
    """
    return _cases(_rows(frame))


def permit_facts_from_history(frame: pd.DataFrame) -> list[tuple[ItemPermitFacts, ...]]:
    """What the permit check would have told screening about each item, in declarations_from_history order."""
    return _permit_facts(_rows(frame))


def backtest_history(
    rule_set: RuleSet,
    frame: pd.DataFrame,
    *,
    policy: SelectionPolicy | None = None,
    feature_state: FeatureState | None = None,
    on: datetime.date | None = None,
    skip_missing: bool = True,
) -> BacktestReport:
    """Backtests a rule set on a canonical history frame: the one call `risk rules backtest` needs.

    With `skip_missing`, rules whose condition reads a name the history does not carry
    (MISSING_CONTEXT_NAMES) are switched off, since they would fire or not on a blank value:
    `len(item.description) < 8` fires on every filing. The report still lists them, marked.
    """
    rows = _rows(frame)
    missing = MISSING_CONTEXT_NAMES
    return backtest(
        rule_set,
        _cases(rows),
        policy=policy,
        feature_state=feature_state,
        permit_facts=_permit_facts(rows),
        on=on,
        missing_names=missing,
        disabled=[r.id for r in rule_set.rules if missing.intersection(r.condition.names)] if skip_missing else (),
    )


def _rows(frame: pd.DataFrame) -> _Rows:
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

    missing = [name for name in _REQUIRED if name not in frame.columns]
    if missing:
        raise ValueError(f"history frame lacks required columns: {', '.join(missing)}")
    ids = _texts(frame, "declaration_id")
    codes, _ = pd.factorize(ids)  # declarations in order of first appearance
    # Stable: by declaration, then item number; equal numbers keep file order.
    order = np.lexsort((_numbers(frame, "item_number"), codes))
    grouped = codes[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]]) if len(order) else np.zeros(0, np.int64)
    columns: dict[str, np.ndarray] = {}
    for name, column in COLUMNS_BY_NAME.items():
        if column.kind == "text":
            columns[name] = _texts(frame, name)[order]
        elif column.kind == "flag":
            columns[name] = (np.nan_to_num(_numbers(frame, name)) != 0)[order]
        elif column.kind in ("number", "integer"):
            columns[name] = _numbers(frame, name)[order]
    times = pd.to_datetime(frame["lodgement_time"], utc=True).iloc[order]
    columns["lodgement_time"] = np.array([None if pd.isna(t) else t.to_pydatetime() for t in times], dtype=object)
    return _Rows(columns, starts, np.r_[starts[1:], len(order)].astype(np.int64))


def _texts(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), COLUMNS_BY_NAME[name].default, dtype=object)
    # A frame not read by read_history may hold NaN or None for an empty text.
    return np.array([v if isinstance(v, str) else "" for v in frame[name].to_numpy(dtype=object)], dtype=object)


def _numbers(frame: pd.DataFrame, name: str) -> np.ndarray:
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

    if name not in frame.columns:
        default = COLUMNS_BY_NAME[name].default
        return np.full(len(frame), float(default) if isinstance(default, int | float) else math.nan)
    numbers: np.ndarray = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=math.nan)
    return numbers


def _cases(rows: _Rows) -> list[Case]:
    c, starts = rows.columns, rows.starts
    if not starts.size:
        return []
    items = [
        GoodsItem(
            item_number=number,
            hs_code=hs_code,
            description="",
            quantity=quantity,
            quantity_unit=unit,
            net_mass_kg=net,
            gross_mass_kg=gross,
            customs_value=value,
            origin_country=origin,
            preference_claimed=PREFERENCE_CLAIMED if preference else "",
            permit_references=("",) * permits,
            duties_and_taxes=(DutyTax("", duties),),
        )
        for number, hs_code, quantity, unit, net, gross, value, origin, preference, permits, duties in zip(
            _whole(c["item_number"]),
            c["hs_code"].tolist(),
            c["quantity"].tolist(),
            c["quantity_unit"].tolist(),
            c["net_mass_kg"].tolist(),
            c["gross_mass_kg"].tolist(),
            c["customs_value"].tolist(),
            c["origin_country"].tolist(),
            c["preference_claimed"].tolist(),
            _whole(c["permit_count"]),
            c["duties_and_taxes"].tolist(),
            strict=True,
        )
    ]

    def first(name: str) -> list[Any]:
        return c[name][starts].tolist()  # type: ignore[no-any-return]

    def any_item(name: str) -> list[bool]:
        return np.logical_or.reduceat(c[name], starts).tolist()  # type: ignore[no-any-return]

    inspected, finding, control = any_item("inspected"), any_item("finding"), any_item("random_control")

    # The history has an origin per item; the declaration's is the one its items share, if any.
    origins = c["origin_country"]
    lengths = rows.ends - starts
    shared = np.logical_and.reduceat(origins == np.repeat(origins[starts], lengths), starts)
    origin = np.where(shared, origins[starts], "").tolist()
    revenue = c["revenue_recovered"]
    recorded = ~np.isnan(revenue)
    revenue_sum = np.where(
        np.logical_or.reduceat(recorded, starts), np.add.reduceat(np.where(recorded, revenue, 0.0), starts), math.nan
    ).tolist()

    bounds = list(zip(starts.tolist(), rows.ends.tolist(), strict=True))
    cases: list[Case] = []
    for k, (declaration_id, lodged, office, declarant, importer, exporter, export, kind, aeo, mode) in enumerate(
        zip(
            first("declaration_id"),
            first("lodgement_time"),
            first("customs_office"),
            first("declarant_id"),
            first("importer_id"),
            first("exporter_id"),
            first("export_country"),
            _whole(c["declaration_type"][starts]),
            _whole(c["aeo_status"][starts]),
            _whole(c["transport_mode"][starts]),
            strict=True,
        )
    ):
        declaration = Declaration(
            declaration_id=declaration_id,
            version=1,
            type=_DECLARATION_TYPES.get(kind, DeclarationType.UNSPECIFIED),
            lodgement_time=lodged,
            customs_office=office,
            declarant=Party(declarant),
            importer=Party(importer),
            exporter=Party(exporter),
            aeo_status=_AEO_STATUSES.get(aeo, AeoStatus.UNSPECIFIED),
            export_country=export,
            origin_country=origin[k],
            destination_country="",
            transport_mode=_TRANSPORT_MODES.get(mode, TransportMode.UNSPECIFIED),
            transport_document_number="",
            container_numbers=(),
            incoterm="",
            invoice_currency="",
            invoice_amount=math.nan,
            items=tuple(items[bounds[k][0] : bounds[k][1]]),
        )
        cases.append((declaration, HistoryOutcome(inspected[k], finding[k], revenue_sum[k], control[k])))
    return cases


def _permit_facts(rows: _Rows) -> list[tuple[ItemPermitFacts, ...]]:
    facts = [
        ItemPermitFacts(balance, days)
        for balance, days in zip(
            rows.columns["permit_balance_used"].tolist(), rows.columns["permit_days_to_expiry"].tolist(), strict=True
        )
    ]
    return [tuple(facts[start:end]) for start, end in zip(rows.starts.tolist(), rows.ends.tolist(), strict=True)]


def _whole(values: np.ndarray) -> list[int]:
    """Whole numbers as ints; NaN (a code or count the row leaves out) reads as 0."""
    return np.where(np.isfinite(values), values, 0).astype(np.int64).tolist()  # type: ignore[no-any-return]
