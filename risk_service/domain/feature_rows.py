"""Serving-side adapter: declarations to the raw item columns `features` builds model inputs from."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from features import RAW_COLUMNS
from risk_service.domain.declaration import Declaration, GoodsItem
from risk_service.domain.importer_history import ImporterHistory

# What the importer's history says at lodgement: (prior filings, days known).
_History = tuple[float, float]
_Extract = Callable[[Declaration, GoodsItem, _History], object]

# One extractor per raw column; checked against features.RAW_COLUMNS below so the two cannot drift.
_EXTRACTORS: dict[str, _Extract] = {
    "hs_code": lambda d, i, h: i.hs_code,
    "origin_country": lambda d, i, h: i.origin_country,
    "export_country": lambda d, i, h: d.export_country,
    "customs_value": lambda d, i, h: i.customs_value,
    "net_mass_kg": lambda d, i, h: i.net_mass_kg,
    "gross_mass_kg": lambda d, i, h: i.gross_mass_kg,
    "quantity": lambda d, i, h: i.quantity,
    "quantity_unit": lambda d, i, h: i.quantity_unit,
    "duties_and_taxes": lambda d, i, h: i.total_duties_and_taxes,
    "transport_mode": lambda d, i, h: int(d.transport_mode),
    "declaration_type": lambda d, i, h: int(d.type),
    "aeo_status": lambda d, i, h: int(d.aeo_status),
    "preference_claimed": lambda d, i, h: 1 if i.preference_claimed else 0,
    "permit_count": lambda d, i, h: len(i.permit_references),
    "item_count": lambda d, i, h: len(d.items),
    "importer_prior_filings": lambda d, i, h: h[0],
    "importer_days_known": lambda d, i, h: h[1],
}
if set(_EXTRACTORS) != set(RAW_COLUMNS):
    raise ImportError(f"feature_rows does not cover features.RAW_COLUMNS: {set(_EXTRACTORS) ^ set(RAW_COLUMNS)}")
_DTYPES = {"str": object, "float": np.float64, "int": np.int64}
_ORDER = tuple((name, _EXTRACTORS[name], _DTYPES[kind]) for name, kind in RAW_COLUMNS.items())


def declaration_columns(
    declarations: Sequence[Declaration], history: ImporterHistory
) -> tuple[dict[str, np.ndarray], list[slice]]:
    """One row per goods item of every declaration, plus each declaration's slice of the rows.

    Training reads the same columns from a history file (features.columns_from_frame), and both
    sides call features.build_feature_matrix on them, so there is one feature code path.
    """
    spans: list[slice] = []
    values: list[list[object]] = [[] for _ in _ORDER]
    start = 0
    for d in declarations:
        seen = history.lookup(d.importer.id, d.lodgement_time)
        for item in d.items:
            for column, (_, extract, _) in zip(values, _ORDER, strict=True):
                column.append(extract(d, item, seen))
        spans.append(slice(start, start + len(d.items)))
        start += len(d.items)
    columns = {name: np.array(column, dtype=dtype) for (name, _, dtype), column in zip(_ORDER, values, strict=True)}
    return columns, spans
