"""The service's own filings as canonical history (training.history): officers' results become the next labels.

One row per goods item of each declaration: the version an officer's result inspected, else the
newest. The canonical columns a filing carries come with the labels from the result: inspected,
finding (on the items the result names, or all of them), revenue_recovered (spread over those
items) and random_control (the declaration was drawn at random, so evaluation can be unbiased).
A declaration without a result is not inspected: its outcome is unknown, not clean. The
assessment's channel, risk score and model and rule-set versions follow as extra columns for
analysts (reading the file back ignores them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from risk_service.domain.review.ports import LabelledFiling

# Written after the canonical columns: what the service decided, for analysts reading the export.
ASSESSMENT_COLUMNS = ("channel", "risk_score", "model_version", "rule_set_version")
_NOT_IN_A_FILING = frozenset({"tax_rate_percent", "permit_balance_used", "permit_days_to_expiry"})


def history_rows(filings: Iterable[LabelledFiling]) -> Iterator[dict[str, Any]]:
    for filing in filings:
        d, a, result = filing.declaration, filing.assessment, filing.result
        found = [i.item_number for i in d.items if result is not None and result.covers(i.item_number)]
        revenue_each = float(result.revenue_recovered) / len(found) if result is not None and found else 0.0
        for item in d.items:
            covered = item.item_number in found
            yield {
                "declaration_id": d.declaration_id,
                "item_number": item.item_number,
                "lodgement_time": d.lodgement_time,
                "hs_code": item.hs_code,
                "origin_country": item.origin_country,
                "export_country": d.export_country,
                "customs_value": item.customs_value,
                "net_mass_kg": item.net_mass_kg,
                "gross_mass_kg": item.gross_mass_kg,
                "quantity": item.quantity,
                "quantity_unit": item.quantity_unit,
                "duties_and_taxes": item.total_duties_and_taxes if item.duties_and_taxes else math.nan,
                "transport_mode": int(d.transport_mode),
                "declaration_type": int(d.type),
                "aeo_status": int(d.aeo_status),
                "preference_claimed": bool(item.preference_claimed),
                "permit_count": len(item.permit_references),
                "item_count": len(d.items),
                "importer_id": d.importer.id,
                "declarant_id": d.declarant.id,
                "exporter_id": d.exporter.id,
                "customs_office": d.customs_office,
                "inspected": result is not None,
                "finding": result is not None and result.outcome.is_finding and covered,
                "revenue_recovered": (revenue_each if covered else 0.0) if result is not None else math.nan,
                # The schema knows a random control only as an inspection: one without a result is not yet.
                "random_control": result is not None and a.random_control,
                "channel": a.channel.name,
                "risk_score": a.risk_score,
                "model_version": a.model_version,
                "rule_set_version": a.rule_set_version,
            }


@dataclass(frozen=True, slots=True)
class ExportSummary:
    rows: int  # goods items written
    inspected: int  # of those, inspected
    findings: int  # of those, with a finding


def export_history(filings: Iterable[LabelledFiling], path: Path, *, chunk_rows: int = 50_000) -> ExportSummary:
    """Writes the filings as a canonical history CSV, a chunk at a time (bounded memory)."""
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

    from training.history import HISTORY_COLUMNS

    if path.suffix.lower() != ".csv":
        raise ValueError(f"{path}: the export is written as CSV; name it .csv")
    # The canonical columns a filing carries (a duty rate and permit facts it does not), then the decision.
    columns = [c.name for c in HISTORY_COLUMNS if c.name not in _NOT_IN_A_FILING] + list(ASSESSMENT_COLUMNS)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = inspected = findings = 0
    chunk: list[dict[str, Any]] = []
    with path.open("w", encoding="utf-8", newline="") as out:

        def flush() -> None:
            nonlocal written
            frame = pd.DataFrame(chunk, columns=columns)
            frame.to_csv(out, index=False, header=written == 0)
            written += len(frame)
            chunk.clear()

        for row in history_rows(filings):
            inspected += row["inspected"]
            findings += row["finding"]
            chunk.append(row)
            if len(chunk) >= chunk_rows:
                flush()
        if chunk or written == 0:
            flush()
    return ExportSummary(written, inspected, findings)
