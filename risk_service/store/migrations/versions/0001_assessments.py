"""The assessments table: one row per (declaration id, version), with the filing and its assessment as JSON.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json_document = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    op.create_table(
        "assessments",
        sa.Column("assessment_id", sa.String(36), nullable=False),
        sa.Column("declaration_id", sa.String(64), nullable=False),
        sa.Column("declaration_version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("channel", sa.SmallInteger(), nullable=False),
        sa.Column("risk_score", sa.Double(), nullable=False),
        sa.Column("model_score", sa.Double(), nullable=True),
        sa.Column("random_control", sa.Boolean(), nullable=False),
        sa.Column("model_status", sa.SmallInteger(), nullable=False),
        sa.Column("model_name", sa.String(), nullable=False),
        sa.Column("model_version", sa.String(), nullable=False),
        sa.Column("rule_set_version", sa.String(), nullable=False),
        sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lodged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("importer_id", sa.String(64), nullable=False),
        sa.Column("customs_office", sa.String(), nullable=False),
        sa.Column("declaration", json_document, nullable=False),
        sa.Column("assessment", json_document, nullable=False),
        sa.PrimaryKeyConstraint("assessment_id", name="pk_assessments"),
        sa.UniqueConstraint(
            "declaration_id", "declaration_version", name="uq_assessments_declaration_id_declaration_version"
        ),
    )
    op.create_index("ix_assessments_importer_id_lodged_at", "assessments", ["importer_id", "lodged_at"])
    op.create_index("ix_assessments_assessed_at", "assessments", ["assessed_at"])


def downgrade() -> None:
    op.drop_index("ix_assessments_assessed_at", table_name="assessments")
    op.drop_index("ix_assessments_importer_id_lodged_at", table_name="assessments")
    op.drop_table("assessments")
