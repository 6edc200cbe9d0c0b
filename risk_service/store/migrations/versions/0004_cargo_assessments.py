"""Cargo reports (advance cargo information) and their assessments.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 00:00:00

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json_document = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    op.create_table(
        "cargo_assessments",
        sa.Column("assessment_id", sa.String(36), nullable=False),
        sa.Column("report_id", sa.String(64), nullable=False),
        sa.Column("report_version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("filing_type", sa.SmallInteger(), nullable=False),
        sa.Column("pre_loading_outcome", sa.SmallInteger(), nullable=False),
        sa.Column("risk_score", sa.Double(), nullable=False),
        sa.Column("master_document", sa.String(64), nullable=False),
        sa.Column("house_document", sa.String(64), nullable=False),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("report", json_document, nullable=False),
        sa.Column("assessment", json_document, nullable=False),
        sa.PrimaryKeyConstraint("assessment_id", name="pk_cargo_assessments"),
        sa.UniqueConstraint("report_id", "report_version", name="uq_cargo_assessments_report_id_report_version"),
    )
    op.create_index("ix_cargo_assessments_master_document", "cargo_assessments", ["master_document"])


def downgrade() -> None:
    op.drop_index("ix_cargo_assessments_master_document", table_name="cargo_assessments")
    op.drop_table("cargo_assessments")
