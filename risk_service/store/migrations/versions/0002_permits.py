"""Single-window permits: the registry with its history, and the ledger of what declarations draw from them.

Revision ID: 0002
Revises: 0001
Create Date: 2025-06-01 00:00:00

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json_document = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    op.create_table(
        "permits",
        sa.Column("permit_id", sa.String(64), nullable=False),
        sa.Column("issuing_agency", sa.String(64), nullable=False),
        sa.Column("type", sa.SmallInteger(), nullable=False),
        sa.Column("holder_id", sa.String(64), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("single_use", sa.Boolean(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("permit", json_document, nullable=False),
        sa.PrimaryKeyConstraint("permit_id", name="pk_permits"),
    )
    op.create_index("ix_permits_holder_id_permit_id", "permits", ["holder_id", "permit_id"])
    op.create_index("ix_permits_issuing_agency_permit_id", "permits", ["issuing_agency", "permit_id"])

    op.create_table(
        "permit_lines",
        sa.Column("permit_id", sa.String(64), nullable=False),
        sa.Column("line_number", sa.Integer(), nullable=False),
        sa.Column("hs_prefix", sa.String(10), nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("authorised_quantity", sa.Double(), nullable=True),
        sa.Column("authorised_value", sa.Double(), nullable=True),
        sa.Column("drawn_quantity", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("drawn_value", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("permit_id", "line_number", name="pk_permit_lines"),
        sa.ForeignKeyConstraint(["permit_id"], ["permits.permit_id"], name="fk_permit_lines_permit_id_permits"),
    )
    op.create_index("ix_permit_lines_hs_prefix_permit_id", "permit_lines", ["hs_prefix", "permit_id"])

    op.create_table(
        "permit_changes",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("permit_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.SmallInteger(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("permit", json_document, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_permit_changes"),
        sa.UniqueConstraint("request_id", name="uq_permit_changes_request_id"),
        sa.ForeignKeyConstraint(["permit_id"], ["permits.permit_id"], name="fk_permit_changes_permit_id_permits"),
    )
    op.create_index("ix_permit_changes_permit_id_seq", "permit_changes", ["permit_id", "seq"])

    op.create_table(
        "permit_draws",
        sa.Column("declaration_id", sa.String(64), nullable=False),
        sa.Column("permit_id", sa.String(64), nullable=False),
        sa.Column("line_number", sa.Integer(), nullable=False),
        sa.Column("item_number", sa.Integer(), nullable=False),
        sa.Column("declaration_version", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Double(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("drawn_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("declaration_id", "permit_id", "line_number", "item_number", name="pk_permit_draws"),
        sa.ForeignKeyConstraint(
            ["permit_id", "line_number"],
            ["permit_lines.permit_id", "permit_lines.line_number"],
            name="fk_permit_draws_permit_id_line_number_permit_lines",
        ),
    )
    op.create_index("ix_permit_draws_permit_id", "permit_draws", ["permit_id"])

    op.create_table(
        "permit_uses",
        sa.Column("permit_id", sa.String(64), nullable=False),
        sa.Column("declaration_id", sa.String(64), nullable=False),
        sa.Column("declaration_version", sa.Integer(), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("permit_id", "declaration_id", name="pk_permit_uses"),
        sa.ForeignKeyConstraint(["permit_id"], ["permits.permit_id"], name="fk_permit_uses_permit_id_permits"),
    )
    op.create_index("ix_permit_uses_declaration_id", "permit_uses", ["declaration_id"])

    op.create_table(
        "declaration_cancellations",
        sa.Column("declaration_id", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released", json_document, nullable=False),
        sa.PrimaryKeyConstraint("declaration_id", name="pk_declaration_cancellations"),
    )


def downgrade() -> None:
    op.drop_table("declaration_cancellations")
    op.drop_index("ix_permit_uses_declaration_id", table_name="permit_uses")
    op.drop_table("permit_uses")
    op.drop_index("ix_permit_draws_permit_id", table_name="permit_draws")
    op.drop_table("permit_draws")
    op.drop_index("ix_permit_changes_permit_id_seq", table_name="permit_changes")
    op.drop_table("permit_changes")
    op.drop_index("ix_permit_lines_hs_prefix_permit_id", table_name="permit_lines")
    op.drop_table("permit_lines")
    op.drop_index("ix_permits_issuing_agency_permit_id", table_name="permits")
    op.drop_index("ix_permits_holder_id_permit_id", table_name="permits")
    op.drop_table("permits")
