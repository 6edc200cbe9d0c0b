"""The service's own filings as canonical history (training.history), so what it scored can train the next model.

One row per goods item of the newest stored version of each declaration, with the canonical
columns a filing carries, plus the assessment's channel, risk score and model and rule-set
versions as extra columns for analysts (reading the file back ignores them). Inspection outcomes
are not recorded by the service yet: every row is exported as not inspected, with no finding,
until officers' results are stored; then they fill inspected, finding, revenue_recovered and
random_control here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from risk_service.domain.assessment import Assessment
from risk_service.domain.declaration import Declaration

# Written after the canonical columns: what the service decided, for analysts reading the export.
ASSESSMENT_COLUMNS = ("channel", "risk_score", "model_version", "rule_set_version")
_NOT_IN_A_FILING = frozenset({"tax_rate_percent", "permit_balance_used", "permit_days_to_expiry"})


def history_rows(filings: Iterable[tuple[Declaration, Assessment]]) -> Iterator[dict[str, Any]]:
    for d, a in filings:
        for item in d.items:
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
                "inspected": False,
                "finding": False,
                "revenue_recovered": math.nan,
                "random_control": False,
                "channel": a.channel.name,
                "risk_score": a.risk_score,
                "model_version": a.model_version,
                "rule_set_version": a.rule_set_version,
            }


def export_history(filings: Iterable[tuple[Declaration, Assessment]], path: Path, *, chunk_rows: int = 50_000) -> int:
    """Writes the filings as a canonical history CSV, a chunk at a time (bounded memory); returns rows written."""
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

    from training.history import HISTORY_COLUMNS

    if path.suffix.lower() != ".csv":
        raise ValueError(f"{path}: the export is written as CSV; name it .csv")
    # The canonical columns a filing carries (a duty rate and permit facts it does not), then the decision.
    columns = [c.name for c in HISTORY_COLUMNS if c.name not in _NOT_IN_A_FILING] + list(ASSESSMENT_COLUMNS)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    chunk: list[dict[str, Any]] = []
    with path.open("w", encoding="utf-8", newline="") as out:

        def flush() -> None:
            nonlocal written
            frame = pd.DataFrame(chunk, columns=columns)
            frame.to_csv(out, index=False, header=written == 0)
            written += len(frame)
            chunk.clear()

        for row in history_rows(filings):
            chunk.append(row)
            if len(chunk) >= chunk_rows:
                flush()
        if chunk or written == 0:
            flush()
    return written
