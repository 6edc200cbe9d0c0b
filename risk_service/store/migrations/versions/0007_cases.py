"""Officers' review: cases and their events.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 00:00:00

Cases open for assessments stored from this revision on; earlier non-GREEN assessments get no case.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("declaration_version", sa.Integer(), nullable=False),
        sa.Column("assessment_id", sa.String(36), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("channel", sa.SmallInteger(), nullable=False),
        sa.Column("risk_score", sa.Double(), nullable=False),
        sa.Column("revenue_at_stake", sa.Double(), nullable=False),
        sa.Column("random_control", sa.Boolean(), nullable=False),
        sa.Column("customs_office", sa.String(), nullable=False),
        sa.Column("importer_id", sa.String(64), nullable=False),
        sa.Column("assigned_officer", sa.String(64), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", _JSON, nullable=True),
        sa.Column("override", _JSON, nullable=True),
        sa.PrimaryKeyConstraint("case_id", name="pk_cases"),
    )
    op.create_index(
        "ix_cases_risk_score_revenue_at_stake_case_id", "cases", ["risk_score", "revenue_at_stake", "case_id"]
    )
    op.create_index("ix_cases_importer_id", "cases", ["importer_id"])
    op.create_table(
        "case_events",
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("case_version", sa.Integer(), nullable=False),
        sa.Column("action", sa.SmallInteger(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.String(), nullable=False),
        sa.Column("case_state", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_case_events"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.case_id"], name="fk_case_events_case_id_cases"),
        sa.UniqueConstraint("case_id", "case_version", name="uq_case_events_case_id_case_version"),
    )


def downgrade() -> None:
    op.drop_table("case_events")
    op.drop_index("ix_cases_importer_id", table_name="cases")
    op.drop_index("ix_cases_risk_score_revenue_at_stake_case_id", table_name="cases")
    op.drop_table("cases")
