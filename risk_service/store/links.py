"""Rows of document_links and reassessments, written by the stores' writers in their own transactions."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from risk_service.store.codec import JsonDict, to_json
from risk_service.store.db import BulkInsert, chunks
from risk_service.store.tables import document_links, reassessments

DECLARATION = "declaration"
CARGO_REPORT = "cargo_report"
LinkKey = tuple[str, str]  # ("document" | "container", key)


def link_rows(kind: str, filing_id: str, version: int, keys: Iterable[LinkKey]) -> list[dict[str, Any]]:
    return [
        {"link_type": link_type, "link_key": key, "kind": kind, "filing_id": filing_id, "version": version}
        for link_type, key in sorted(set(keys))
        if key
    ]


def reassessment_row(
    kind: str, filing_id: str, version: int, assessment_id: str, trigger: str, at: datetime, document: JsonDict
) -> dict[str, Any]:
    return {
        "assessment_id": assessment_id,
        "kind": kind,
        "filing_id": filing_id,
        "version": version,
        "trigger": trigger,
        "assessed_at": at,
        "assessment_json": to_json(document),
    }


class LinkWriter:
    """Inserts link and re-assessment rows in the caller's (the writer's) transaction."""

    def __init__(self, dialect: sa.Dialect) -> None:
        # A retried filing names the same keys again: nothing to add.
        self._links = BulkInsert(document_links, dialect, ignore_conflicts=True)
        t = reassessments
        document = sa.bindparam("assessment_json", type_=sa.Text)
        value = sa.cast(document, postgresql.JSONB) if dialect.name == "postgresql" else document
        self._reassessments = sa.insert(t).values(assessment=value)

    def write(self, conn: sa.Connection, links: list[dict[str, Any]], later: list[dict[str, Any]]) -> None:
        # In key order, so two writers linking the same keys lock them in the same order.
        links.sort(key=lambda r: (r["link_type"], r["link_key"], r["kind"], r["filing_id"], r["version"]))
        self._links.execute(conn, links)
        if later:
            conn.execute(self._reassessments, later)


def linked_filings(conn: sa.Connection, kind: str, keys: Iterable[LinkKey]) -> dict[str, int]:
    """The newest version of each filing of `kind` that names any of the keys: filing id -> version."""
    wanted = {k for k in keys if k[1]}
    t = document_links
    newest: dict[str, int] = {}
    for chunk in chunks(sorted({key for _, key in wanted})):
        query = sa.select(t.c.link_type, t.c.link_key, t.c.filing_id, t.c.version).where(
            t.c.link_key.in_(chunk), t.c.kind == kind
        )
        for link_type, key, filing_id, version in conn.execute(query):
            if (link_type, key) in wanted and version > newest.get(filing_id, 0):
                newest[filing_id] = version
    return newest


def reassessment_documents(conn: sa.Connection, kind: str, filing_id: str) -> list[tuple[int, datetime, Any]]:
    """(version, time, assessment document) of a filing's re-assessments, oldest first."""
    t = reassessments
    query = (
        sa.select(t.c.version, t.c.assessed_at, t.c.assessment)
        .where(t.c.kind == kind, t.c.filing_id == filing_id)
        .order_by(t.c.assessed_at, t.c.assessment_id)
    )
    return [(v, at, doc) for v, at, doc in conn.execute(query)]
