"""The evaluation context of rule conditions: one flat dict of dotted names per goods item (or row)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from risk_service.domain.declaration import Declaration

# Declaration-level names: the same value in every item's context.
_DECLARATION_SCHEMA: dict[str, type] = {
    "declaration.declaration_id": str,
    "declaration.version": int,
    "declaration.type": str,
    "declaration.customs_office": str,
    "declaration.declarant_id": str,
    "declaration.importer_id": str,
    "declaration.importer_name": str,
    "declaration.exporter_id": str,
    "declaration.exporter_name": str,
    "declaration.aeo_status": str,
    "declaration.export_country": str,
    "declaration.origin_country": str,
    "declaration.destination_country": str,
    "declaration.transport_mode": str,
    "declaration.transport_document_number": str,
    "declaration.container_count": int,
    "declaration.incoterm": str,
    "declaration.invoice_currency": str,
    "declaration.invoice_amount": float,
    "declaration.item_count": int,
}

_ITEM_SCHEMA: dict[str, type] = {
    "item.item_number": int,
    "item.hs_code": str,
    "item.description": str,
    "item.quantity": float,
    "item.quantity_unit": str,
    "item.net_mass_kg": float,
    "item.gross_mass_kg": float,
    "item.customs_value": float,
    "item.origin_country": str,
    "item.preference_claimed": str,
    "item.permit_count": int,
    "item.duties_and_taxes": float,
}

#: Set by RuleSet.evaluate for its second pass only; item_contexts never writes it.
HITS_WEAK_COUNT = "hits.weak_count"
_HITS_SCHEMA: dict[str, type] = {HITS_WEAK_COUNT: int}

FEATURE_PREFIX = "features."

#: Every fixed name a condition may use, with its type. `features.<name>` (float) is added per
#: feature name at load time: see `context_schema`.
CONTEXT_SCHEMA: Mapping[str, type] = MappingProxyType({**_DECLARATION_SCHEMA, **_ITEM_SCHEMA, **_HITS_SCHEMA})

# Where each name came from in the declaration, for RuleHit.fields; `{i}` is the item position.
_FIELD_PATHS: dict[str, str] = {
    "declaration.declarant_id": "declaration.declarant.id",
    "declaration.importer_id": "declaration.importer.id",
    "declaration.importer_name": "declaration.importer.name",
    "declaration.exporter_id": "declaration.exporter.id",
    "declaration.exporter_name": "declaration.exporter.name",
    "declaration.container_count": "declaration.container_numbers",
    "declaration.item_count": "declaration.items",
    "item.permit_count": "declaration.items[{i}].permit_references",
}


def context_schema(feature_names: Sequence[str]) -> dict[str, type]:
    """CONTEXT_SCHEMA plus `features.<name>` (float) for each feature name."""
    return _with_features(CONTEXT_SCHEMA, feature_names)


def _with_features(fixed: Mapping[str, type], feature_names: Sequence[str]) -> dict[str, type]:
    schema = dict(fixed)
    for name in feature_names:
        if not name.isidentifier():
            raise ValueError(f"feature name {name!r} is not an identifier")
        schema[FEATURE_PREFIX + name] = float
    return schema


_ITEM_LEVEL_PREFIXES = ("item.", FEATURE_PREFIX)


def is_item_level(name: str) -> bool:
    """True for names whose value differs between the items of one declaration."""
    return name.startswith(_ITEM_LEVEL_PREFIXES)


def field_path(name: str, position: int) -> str:
    """The declaration field path a context name came from; `position` is the 0-based item index."""
    # declaration.* keeps its name; features.* and hits.* are not declaration fields and stay as they are.
    path = _FIELD_PATHS.get(name) or (
        "declaration.items[{i}]." + name.removeprefix("item.") if name.startswith("item.") else name
    )
    return path.replace("{i}", str(position))


@dataclass(frozen=True, slots=True, eq=False)
class RuleSubject:
    """What a rule set screens: the names its conditions may use, and how a context maps back.

    A context is one flat dict per *row* of the filing (a goods item of a declaration, a goods
    item in a container of a cargo report). Compared by identity: there is one per kind of filing.
    """

    #: What the rule sets of this subject screen, e.g. "declaration" or "cargo report".
    name: str
    #: Every fixed name with its type; `features.<name>` (float) is added per feature name.
    schema: Mapping[str, type]
    #: Names starting with one of these differ between the rows of one filing. A condition that
    #: uses none of them is evaluated once per filing and its hit names no rows.
    row_prefixes: tuple[str, ...]
    #: The context key whose int value identifies a matched row in `RuleHit.item_numbers`.
    row_number: str
    #: (name, row location) -> the field path(s) a name came from, for `RuleHit.fields`.
    field_path: Callable[[str, Any], str | tuple[str, ...]]
    #: The context key holding a row's location for `field_path` (any hashable value); None: the
    #: row's 0-based position among the contexts.
    row_location: str | None = None

    def context_schema(self, feature_names: Sequence[str]) -> dict[str, type]:
        """The fixed names plus `features.<name>` (float) for each feature name."""
        return _with_features(self.schema, feature_names)

    def is_row_level(self, name: str) -> bool:
        return name.startswith(self.row_prefixes)

    def field_paths(self, name: str, location: Any) -> tuple[str, ...]:
        path = self.field_path(name, location)
        return (path,) if isinstance(path, str) else path


#: Goods declarations: one context per goods item (`item_contexts`), hits numbered by item number.
DECLARATION_SUBJECT = RuleSubject(
    name="declaration",
    schema=CONTEXT_SCHEMA,
    row_prefixes=_ITEM_LEVEL_PREFIXES,
    row_number="item.item_number",
    field_path=field_path,
)


def item_contexts(
    declaration: Declaration, feature_names: Sequence[str], feature_rows: np.ndarray | None
) -> list[dict[str, object]]:
    """One context per goods item, in item order; without feature rows every feature is NaN."""
    n_items = len(declaration.items)
    if feature_rows is not None and feature_rows.shape != (n_items, len(feature_names)):
        raise ValueError(f"feature rows have shape {feature_rows.shape}, expected ({n_items}, {len(feature_names)})")
    base: dict[str, object] = {
        "declaration.declaration_id": declaration.declaration_id,
        "declaration.version": int(declaration.version),
        "declaration.type": declaration.type.name,
        "declaration.customs_office": declaration.customs_office,
        "declaration.declarant_id": declaration.declarant.id,
        "declaration.importer_id": declaration.importer.id,
        "declaration.importer_name": declaration.importer.name,
        "declaration.exporter_id": declaration.exporter.id,
        "declaration.exporter_name": declaration.exporter.name,
        "declaration.aeo_status": declaration.aeo_status.name,
        "declaration.export_country": declaration.export_country,
        "declaration.origin_country": declaration.origin_country,
        "declaration.destination_country": declaration.destination_country,
        "declaration.transport_mode": declaration.transport_mode.name,
        "declaration.transport_document_number": declaration.transport_document_number,
        "declaration.container_count": len(declaration.container_numbers),
        "declaration.incoterm": declaration.incoterm,
        "declaration.invoice_currency": declaration.invoice_currency,
        "declaration.invoice_amount": float(declaration.invoice_amount),
        "declaration.item_count": n_items,
    }
    feature_keys = [FEATURE_PREFIX + name for name in feature_names]
    rows: list[list[float]] = (
        feature_rows.astype(float).tolist() if feature_rows is not None else [[math.nan] * len(feature_keys)] * n_items
    )
    contexts: list[dict[str, object]] = []
    for item, row in zip(declaration.items, rows, strict=True):
        context = dict(base)
        context["item.item_number"] = int(item.item_number)
        context["item.hs_code"] = item.hs_code
        context["item.description"] = item.description
        context["item.quantity"] = float(item.quantity)
        context["item.quantity_unit"] = item.quantity_unit
        context["item.net_mass_kg"] = float(item.net_mass_kg)
        context["item.gross_mass_kg"] = float(item.gross_mass_kg)
        context["item.customs_value"] = float(item.customs_value)
        context["item.origin_country"] = item.origin_country
        context["item.preference_claimed"] = item.preference_claimed
        context["item.permit_count"] = len(item.permit_references)
        context["item.duties_and_taxes"] = float(item.total_duties_and_taxes)
        context.update(zip(feature_keys, row, strict=True))
        contexts.append(context)
    return contexts
