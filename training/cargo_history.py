"""The canonical cargo history: one row per container of a cargo report, with its arrival outcome.

What the container-targeting model learns from, as training.history is for declarations: read
with the same parser and the same errors (file, line, column), written by `risk data generate`.
A report's containers share its id and its report-level columns (route, parties, times); lists
(HS codes, descriptions, origins, transshipment ports) are joined by LIST_SEPARATOR, in order.
Documented in docs/cargo_history_schema.md (`python -m training.cargo_history > docs/cargo_history_schema.md`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from features.cargo import LIST_SEPARATOR, split_list
from training.history import HistoryColumn, HistorySchema, RowCheck

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

FILING_TYPES = ("pre_loading", "pre_arrival")
EXAMINATIONS = ("", "scan", "physical")

CARGO_HISTORY_COLUMNS: tuple[HistoryColumn, ...] = (
    HistoryColumn("report_id", "text", True, "the cargo report's id; its containers share it"),
    HistoryColumn("report_version", "integer", False, "the report's version (1 first filed, higher: amended)", 1),
    HistoryColumn("filing_type", "text", True, "pre_loading or pre_arrival"),
    HistoryColumn("filing_time", "time", True, "when this (the newest) version was filed, UTC; rows in this order"),
    HistoryColumn("transport_mode", "integer", False, "UN/ECE Rec 19 mode of transport (1 sea)", 1),
    HistoryColumn("filer_id", "text", False, "who filed the report (carrier or forwarder)", ""),
    HistoryColumn("carrier_id", "text", False, "the carrier", ""),
    HistoryColumn("vessel_imo_number", "text", False, "the vessel's IMO number", ""),
    HistoryColumn("master_document", "text", False, "the master bill of lading", ""),
    HistoryColumn("house_document", "text", False, "the house bill, empty for a master-level report", ""),
    HistoryColumn("port_of_loading", "text", True, "UN/LOCODE of the port of loading"),
    HistoryColumn("transshipment_ports", "text", False, "UN/LOCODEs of transshipment ports in route order", ""),
    HistoryColumn("port_of_discharge", "text", True, "UN/LOCODE of the port of discharge"),
    HistoryColumn("planned_loading_time", "time", False, "planned loading at the port of loading (UTC)"),
    HistoryColumn("planned_arrival_time", "time", False, "planned arrival at the port of discharge (UTC)"),
    HistoryColumn("consignor_id", "text", False, "the consignor (shipper)", ""),
    HistoryColumn("consignee_id", "text", False, "the consignee", ""),
    HistoryColumn("notify_party_id", "text", False, "the notify party", ""),
    HistoryColumn("container_number", "text", True, "ISO 6346 container number"),
    HistoryColumn("size_type_code", "text", False, "ISO 6346 size and type code, e.g. 22G1", ""),
    HistoryColumn("seal_count", "integer", True, "seals recorded on the container (0: unsealed)"),
    HistoryColumn("gross_mass_kg", "number", True, "the container's declared gross mass of goods, kg"),
    HistoryColumn("packages", "integer", True, "packages in the container"),
    HistoryColumn("item_count", "integer", False, "goods items in the container; counted from hs_codes when absent", 0),
    HistoryColumn("hs_codes", "text", True, "HS codes of the container's items (6 digits or more), in item order"),
    HistoryColumn(
        "descriptions", "text", False, "goods descriptions of the items, in item order (a ; inside one: a space)", ""
    ),
    HistoryColumn("origin_countries", "text", False, "ISO 3166 alpha-2 origins of the items, where known", ""),
    HistoryColumn("inspected", "flag", True, "the container was scanned or examined on arrival"),
    HistoryColumn("examination", "text", False, "scan or physical; empty when not inspected", ""),
    HistoryColumn("finding", "flag", False, "the inspection found an irregularity; required on inspected rows", False),
    HistoryColumn("revenue_recovered", "number", False, "duties, taxes and fines the finding recovered", math.nan),
    HistoryColumn("random_control", "flag", False, "the inspection was a random scan, not targeted", False),
)

_LOCODE = r"[A-Z]{2}[A-Z2-9]{3}"


def _checks(frame: pd.DataFrame) -> list[RowCheck]:
    hs_lists = frame["hs_codes"].astype(str).str.replace(" ", "", regex=False)
    ports = frame["transshipment_ports"].astype(str).str.replace(" ", "", regex=False)
    loading = frame["planned_loading_time"]
    arrival = frame["planned_arrival_time"]
    inspected = frame["inspected"].to_numpy()
    examination = frame["examination"].astype(str)
    origins = frame["origin_countries"].astype(str).str.replace(" ", "", regex=False)
    n_codes = frame["hs_codes"].map(lambda text: len(split_list(text))).to_numpy(dtype=np.int64)
    return [
        (~frame["filing_type"].isin(FILING_TYPES).to_numpy(), "filing_type", "must be pre_loading or pre_arrival"),
        (~frame["port_of_loading"].astype(str).str.fullmatch(_LOCODE).to_numpy(), "port_of_loading", "not a UN/LOCODE"),
        (
            ~frame["port_of_discharge"].astype(str).str.fullmatch(_LOCODE).to_numpy(),
            "port_of_discharge",
            "not a UN/LOCODE",
        ),
        (
            ~(ports.str.fullmatch(rf"{_LOCODE}(;{_LOCODE})*;?") | (ports == "")).to_numpy(),
            "transshipment_ports",
            f"must be UN/LOCODEs separated by '{LIST_SEPARATOR}'",
        ),
        (
            ~frame["container_number"].astype(str).str.fullmatch(r"[A-Z]{4}\d{7}").to_numpy(),
            "container_number",
            "not an ISO 6346 container number (4 letters, 7 digits)",
        ),
        (
            ~hs_lists.str.fullmatch(r"\d{6,10}(;\d{6,10})*;?").to_numpy(),
            "hs_codes",
            f"must be HS codes of 6 to 10 digits separated by '{LIST_SEPARATOR}'",
        ),
        (
            ~(origins.str.fullmatch(r"[A-Z]{2}(;[A-Z]{2})*;?") | (origins == "")).to_numpy(),
            "origin_countries",
            f"must be ISO 3166 alpha-2 codes separated by '{LIST_SEPARATOR}'",
        ),
        (
            ~frame["size_type_code"].astype(str).str.fullmatch(r"([0-9A-Z]{4})?").to_numpy(),
            "size_type_code",
            "must be an ISO 6346 size and type code of 4 characters, e.g. 22G1, or empty",
        ),
        (
            (frame["item_count"].to_numpy() != 0) & (frame["item_count"].to_numpy() != n_codes),
            "item_count",
            "differs from the number of hs_codes",
        ),
        (~(frame["gross_mass_kg"].to_numpy() > 0), "gross_mass_kg", "must be positive"),
        (frame["packages"].to_numpy() < 1, "packages", "must be at least 1"),
        (frame["seal_count"].to_numpy() < 0, "seal_count", "must not be negative"),
        ((arrival < loading).to_numpy(), "planned_arrival_time", "comes before planned_loading_time"),
        (~examination.isin(EXAMINATIONS).to_numpy(), "examination", "must be scan, physical or empty"),
        (inspected & (examination == "").to_numpy(), "examination", "an inspected container needs scan or physical"),
        (~inspected & (examination != "").to_numpy(), "examination", "an examination of a container not inspected"),
    ]


def _derive(frame: pd.DataFrame) -> pd.DataFrame:
    """item_count from the HS code list where the file leaves it out."""
    if (frame["item_count"] == 0).any():
        counted = frame["hs_codes"].map(lambda text: len(split_list(text))).to_numpy(dtype=np.int64)
        frame["item_count"] = np.where(frame["item_count"] == 0, counted, frame["item_count"]).astype(np.int64)
    return frame


CARGO_SCHEMA = HistorySchema(
    "cargo",
    CARGO_HISTORY_COLUMNS,
    time_column="filing_time",
    unit_column="report_id",
    row_column="container_number",
    checks=_checks,
    derive=_derive,
)


def schema_markdown() -> str:
    """docs/cargo_history_schema.md: the canonical cargo columns as a table."""
    lines = [
        "# Canonical cargo history schema",
        "",
        "One row per container of a cargo report (the newest version of each report), in filing order,",
        "with what the container's inspection on arrival found. CSV (header row, UTF-8) or Parquet. Read by",
        "`risk train --kind container`, `risk evaluate` and `risk promote` with `--kind container`; written by",
        "`risk data generate`. Generated from `training/cargo_history.py` by",
        "`python -m training.cargo_history`; do not edit by hand.",
        "",
        "Lists (HS codes, descriptions, origins, transshipment ports) hold one value per item or port,",
        f"in order, separated by `{LIST_SEPARATOR}`. Flags, times and defaults read as in the declaration",
        "history (docs/history_schema.md). A file is refused, naming file, line and column, for a missing",
        "required column, a value of the wrong type or format, dates out of order, arrival planned before",
        "loading, a finding or an examination on a container not inspected, or a container given twice in",
        "one report.",
        "",
        "| column | type | required | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for c in CARGO_HISTORY_COLUMNS:
        default = "" if c.required else ("empty" if c.default in ("", None) else str(c.default).lower())
        lines.append(f"| `{c.name}` | {c.kind} | {'yes' if c.required else 'no'} | {default} | {c.description} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(schema_markdown(), end="")
