"""Serving-side adapter: declarations to the raw item columns `features` builds model inputs from."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from features import ENTITY_COLUMNS, RAW_COLUMNS, EntityOutcomes
from risk_service.domain.declaration import Declaration, GoodsItem
from risk_service.domain.entity_history import EntityHistory
from risk_service.domain.permits.model import ItemPermitFacts

_NO_PERMIT_FACTS = ItemPermitFacts()

# The raw columns _item_row returns, in its order; checked against features.RAW_COLUMNS below so
# the two cannot drift (the parity tests check each value lands in its named column).
_ROW_COLUMNS = (
    "hs_code",
    "origin_country",
    "export_country",
    "customs_value",
    "net_mass_kg",
    "gross_mass_kg",
    "quantity",
    "quantity_unit",
    "duties_and_taxes",
    "transport_mode",
    "declaration_type",
    "aeo_status",
    "preference_claimed",
    "permit_count",
    "permit_balance_used",
    "permit_days_to_expiry",
    "item_count",
    *ENTITY_COLUMNS,  # EntityHistory.lookup gives them in this order
)


def _item_row(d: Declaration, i: GoodsItem, entities: tuple[float, ...], p: ItemPermitFacts) -> tuple[object, ...]:
    # One tuple per item, transposed once: one call per item rather than one per column halves
    # the cost of a batch (this is on the scoring path).
    return (
        i.hs_code,
        i.origin_country,
        d.export_country,
        i.customs_value,
        i.net_mass_kg,
        i.gross_mass_kg,
        i.quantity,
        i.quantity_unit,
        i.total_duties_and_taxes,
        int(d.transport_mode),
        int(d.type),
        int(d.aeo_status),
        1 if i.preference_claimed else 0,
        len(i.permit_references),
        p.balance_used,
        p.days_to_expiry,
        len(d.items),
        *entities,
    )


if tuple(RAW_COLUMNS) != _ROW_COLUMNS:
    raise ImportError(
        f"feature_rows does not cover features.RAW_COLUMNS in order: {list(_ROW_COLUMNS)} != {list(RAW_COLUMNS)}"
    )
_DTYPES = {"str": object, "float": np.float64, "int": np.int64}
_ORDER = tuple((name, _DTYPES[kind]) for name, kind in RAW_COLUMNS.items())


def declaration_columns(
    declarations: Sequence[Declaration],
    history: EntityHistory,
    permit_facts: Sequence[Sequence[ItemPermitFacts]] | None = None,
    outcomes: EntityOutcomes | None = None,
) -> tuple[dict[str, np.ndarray], list[slice]]:
    """One row per goods item of every declaration, plus each declaration's slice of the rows.

    `outcomes` are the served model's entity outcomes (FeatureState.outcomes); without them the
    entity inspection and finding counts are NaN.

    `permit_facts` holds one sequence per declaration with one entry per goods item (what the
    permit check found); None leaves the permit features NaN. Training reads the same columns
    from a history file (features.columns_from_frame), and both sides call
    features.build_feature_matrix on them, so there is one feature code path.
    """
    if permit_facts is not None and len(permit_facts) != len(declarations):
        raise ValueError(f"permit facts for {len(permit_facts)} declarations, expected {len(declarations)}")
    spans: list[slice] = []
    rows: list[tuple[object, ...]] = []
    start = 0
    for k, d in enumerate(declarations):
        items = d.items
        n = len(items)
        facts = permit_facts[k] if permit_facts is not None else (_NO_PERMIT_FACTS,) * n
        if len(facts) != n:
            raise ValueError(f"permit facts for {len(facts)} items of {d.declaration_id!r}, expected {n}")
        seen = history.lookup(d, outcomes)
        rows.extend(_item_row(d, item, e, f) for item, e, f in zip(items, seen, facts, strict=True))
        spans.append(slice(start, start + n))
        start += n
    transposed = list(zip(*rows, strict=True)) if rows else [() for _ in _ORDER]
    return {name: np.array(col, dtype=dtype) for (name, dtype), col in zip(_ORDER, transposed, strict=True)}, spans
