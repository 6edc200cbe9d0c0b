"""Links between declarations and cargo reports, and re-assessments made when a linked document arrives.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 00:00:00

Existing filings are linked from their stored documents, so a document arriving after the upgrade
finds its counterpart filed before it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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
        sa.column("declaration", _JSON),
    )
    query = sa.select(declarations.c.declaration_id, declarations.c.declaration_version, declarations.c.declaration)
    for filing_id, version, document in bind.execute(query).yield_per(_CHUNK):
        keys = {("document", document["transport_document_number"])}
        keys |= {("container", c) for c in document["container_numbers"]}
        yield from _rows("declaration", filing_id, version, keys)
    reports = sa.table(
        "cargo_assessments",
        sa.column("report_id", sa.String),
        sa.column("report_version", sa.Integer),
        sa.column("report", _JSON),
    )
    query = sa.select(reports.c.report_id, reports.c.report_version, reports.c.report)
    for filing_id, version, document in bind.execute(query).yield_per(_CHUNK):
        keys = {("document", document["master_transport_document_number"])}
        keys.add(("document", document["house_transport_document_number"]))
        keys |= {("container", c["container_number"]) for c in document["containers"]}
        yield from _rows("cargo_report", filing_id, version, keys)


def _rows(kind: str, filing_id: str, version: int, keys: set[tuple[str, str]]) -> Iterator[dict[str, Any]]:
    for link_type, key in sorted(keys):
        if key:
            yield {"link_type": link_type, "link_key": key, "kind": kind, "filing_id": filing_id, "version": version}


def downgrade() -> None:
    op.drop_index("ix_reassessments_kind_filing_id", table_name="reassessments")
    op.drop_table("reassessments")
    op.drop_table("document_links")
