"""Serving's entity history, read from filing_entities: what training counts, for declarations and cargo."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from risk_service.store.tables import filing_entities


def read_entity_history(engine: sa.Engine, kinds: Sequence[str]) -> dict[str, dict[str, tuple[datetime, int]]]:
    """Entity kind -> key -> (earliest filing time, filings) of `kinds`: warms an in-memory entity history.

    The same definition as training's features: filings are declarations or cargo reports (not
    versions), timed by lodgement or filing; filings without a time are not stored here. The
    declaration store writes the declaration kinds, the cargo store the container kinds.
    """
    t = filing_entities
    query = (
        sa.select(t.c.kind, t.c.entity_key, sa.func.min(t.c.lodged_at), sa.func.count())
        .where(t.c.kind.in_(list(kinds)))
        .group_by(t.c.kind, t.c.entity_key)
    )
    out: dict[str, dict[str, tuple[datetime, int]]] = {}
    with engine.connect() as conn:
        for kind, key, first_seen, count in conn.execute(query):
            out.setdefault(kind, {})[key] = (first_seen, count)
    return out


def filing_entity_rows(
    filing_id: str,
    at: datetime | None,
    keys_rows: Iterable[tuple[str, ...]],
    kinds: Sequence[str],
    counted: Sequence[str],
) -> list[dict[str, Any]]:
    """The filing_entities rows of one filing: each counted entity its rows name, once (column
    declaration_id holds the filing's id, a declaration's or a cargo report's). None without a time."""
    if at is None:
        return []
    unique = {(k, key) for keys in keys_rows for k, key in zip(kinds, keys, strict=True) if key and k in counted}
    return [{"kind": k, "entity_key": key, "declaration_id": filing_id, "lodged_at": at} for k, key in unique]
