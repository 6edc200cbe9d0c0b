"""Cargo reports to the container model's raw columns (features.cargo.CONTAINER_RAW_COLUMNS).

The serving half of the one container feature path: each container becomes the row a cargo
history row (training.cargo_history) would be, lists joined as the history joins them, times as
epoch seconds; features.cargo.build_container_matrix does the rest for both sides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from features import EntityOutcomes
from features.cargo import CONTAINER_ENTITIES, CONTAINER_RAW_COLUMNS, LIST_SEPARATOR, container_entity_keys
from risk_service.domain.cargo.model import CargoReport
from risk_service.domain.entity_history import ContainerEntities

_TEXT = tuple(k for k, kind in CONTAINER_RAW_COLUMNS.items() if kind == "str")
_ENTITY = CONTAINER_ENTITIES.columns()  # what ContainerEntities.lookup gives, in order
_ENTITY_RAW = [(j, name) for j, name in enumerate(_ENTITY) if name in CONTAINER_RAW_COLUMNS]
_NUMBERS = tuple(k for k, kind in CONTAINER_RAW_COLUMNS.items() if kind != "str" and k not in _ENTITY)


def _seconds(moment: datetime | None) -> float:
    return moment.timestamp() if moment is not None else math.nan


def _joined(values: Sequence[str]) -> str:
    text = LIST_SEPARATOR.join(values)
    if text.count(LIST_SEPARATOR) == len(values) - 1 or not values:
        return text
    # A separator inside a value would split it in two: the history could not hold it either.
    return LIST_SEPARATOR.join(v.replace(LIST_SEPARATOR, " ") for v in values)


def container_columns(
    reports: Sequence[CargoReport],
    entities: ContainerEntities,
    outcomes: EntityOutcomes | None,
    counted_already: Sequence[bool] | None = None,
) -> tuple[dict[str, np.ndarray], list[slice]]:
    """The raw columns of every container of every report, and each report's rows in them.

    `counted_already` (per report): an earlier version is stored, so the report is left out of its
    own parties' history.
    """
    text: dict[str, list[str]] = {k: [] for k in _TEXT}
    numbers: dict[str, list[float]] = {k: [] for k in _NUMBERS}
    entity_rows: list[tuple[float, ...]] = []
    spans: list[slice] = []
    for n, r in enumerate(reports):
        start = len(entity_rows)
        report_level = {
            "filing_type": float(r.filing_type),
            "transport_mode": float(r.transport_mode),
            "report_version": float(r.version),
            "has_house_document": float(bool(r.house_transport_document_number)),
            "filing_time_s": _seconds(r.filing_time),
            "planned_loading_s": _seconds(r.planned_loading_time),
            "planned_arrival_s": _seconds(r.planned_arrival_time),
        }
        route = _joined(r.transshipment_ports)
        keys = []
        for c in r.containers:
            codes = _joined([i.hs_code for i in c.items])
            keys.append(container_entity_keys(r.consignee.id, r.consignor.id, r.filer.id, r.port_of_loading, codes))
            text["port_of_loading"].append(r.port_of_loading)
            text["transshipment_ports"].append(route)
            text["size_type_code"].append(c.size_type_code)
            text["hs_codes"].append(codes)
            text["descriptions"].append(_joined([i.description for i in c.items]))
            text["origin_countries"].append(_joined([i.origin_country for i in c.items if i.origin_country]))
            own = {
                "seal_count": float(len(c.seal_numbers)),
                "gross_mass_kg": c.gross_mass_kg,
                "packages": float(c.packages),
                "item_count": float(len(c.items)),
            }
            for name in _NUMBERS:
                numbers[name].append(report_level[name] if name in report_level else own[name])
        amended = counted_already is not None and counted_already[n]
        entity_rows.extend(entities.lookup(r, outcomes, keys, counted_already=amended))
        spans.append(slice(start, len(entity_rows)))
    columns: dict[str, np.ndarray] = {k: np.array(v, dtype=object) for k, v in text.items()}
    columns.update({k: np.array(v, dtype=np.float64) for k, v in numbers.items()})
    block = np.array(entity_rows, dtype=np.float64).reshape(len(entity_rows), len(_ENTITY))
    for j, name in _ENTITY_RAW:
        columns[name] = block[:, j]
    return columns, spans
