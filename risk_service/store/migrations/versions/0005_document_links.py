"""Links between declarations and cargo reports, and re-assessments made when a linked document arrives.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 00:00:00

Existing filings are linked from their stored documents, so a document arriving after the upgrade
finds its counterpart filed before it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHUNK = 2000
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    links = op.create_table(
        "document_links",
        sa.Column("link_type", sa.String(16), nullable=False),
        sa.Column("link_key", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("filing_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("link_type", "link_key", "kind", "filing_id", "version", name="pk_document_links"),
    )
    op.create_table(
        "reassessments",
        sa.Column("assessment_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("filing_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(), nullable=False),
        sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assessment", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("assessment_id", name="pk_reassessments"),
    )
    op.create_index("ix_reassessments_kind_filing_id", "reassessments", ["kind", "filing_id"])
    assert links is not None
    batch: list[dict[str, Any]] = []
    for row in _existing_links():
        batch.append(row)
        if len(batch) >= _CHUNK:
            op.bulk_insert(links, batch)
            batch = []
    if batch:
        op.bulk_insert(links, batch)


def _existing_links() -> Iterator[dict[str, Any]]:
    bind = op.get_bind()
    declarations = sa.table(
        "assessments",
        sa.column("declaration_id", sa.String),
        sa.column("declaration_version", sa.Integer),
        sa.column("lodged_at", sa.DateTime(timezone=True)),
        sa.column("assessed_at", sa.DateTime(timezone=True)),
        sa.column("declaration", _JSON),
    )
    d = declarations.c
    query = sa.select(d.declaration_id, d.declaration_version, d.lodged_at, d.assessed_at, d.declaration)
    # Streamed (on the statement, not the migration's connection): a client-side cursor would hold
    # every stored document in memory at once.
    query = query.execution_options(stream_results=True, yield_per=_CHUNK)
    for filing_id, version, lodged_at, assessed_at, document in bind.execute(query):
        keys = {("document", document["transport_document_number"])}
        keys |= {("container", c) for c in document["container_numbers"]}
        yield from _rows("declaration", filing_id, version, lodged_at or assessed_at, keys)
    reports = sa.table(
        "cargo_assessments",
        sa.column("report_id", sa.String),
        sa.column("report_version", sa.Integer),
        sa.column("filed_at", sa.DateTime(timezone=True)),
        sa.column("assessed_at", sa.DateTime(timezone=True)),
        sa.column("report", _JSON),
    )
    r = reports.c
    query = sa.select(r.report_id, r.report_version, r.filed_at, r.assessed_at, r.report)
    query = query.execution_options(stream_results=True, yield_per=_CHUNK)
    for filing_id, version, filed_at, assessed_at, document in bind.execute(query):
        keys = {("document", document["master_transport_document_number"])}
        keys.add(("document", document["house_transport_document_number"]))
        keys |= {("container", c["container_number"]) for c in document["containers"]}
        arrival = document["planned_arrival_time"]
        at = datetime.fromisoformat(arrival) if arrival else filed_at or assessed_at
        yield from _rows("cargo_report", filing_id, version, at, keys)


def _rows(kind: str, filing_id: str, version: int, at: datetime, keys: set[tuple[str, str]]) -> Iterator[dict[str, Any]]:
    for link_type, key in sorted(keys):
        if key:
            yield {
                "link_type": link_type,
                "link_key": key,
                "kind": kind,
                "filing_id": filing_id,
                "version": version,
                "linked_at": at,
            }


def downgrade() -> None:
    op.drop_index("ix_reassessments_kind_filing_id", table_name="reassessments")
    op.drop_table("reassessments")
    op.drop_table("document_links")
