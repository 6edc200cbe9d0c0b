"""Entity history: which importers, brokers, trade lanes and office-importer pairs each declaration names.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 00:00:00

Backfilled from the declarations already stored, with the key definition serving and training
share (features.entity_keys).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHUNK = 2000


def upgrade() -> None:
    entities = op.create_table(
        "filing_entities",
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("entity_key", sa.String(), nullable=False),
        sa.Column("declaration_id", sa.String(64), nullable=False),
        sa.Column("lodged_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "entity_key", "declaration_id", name="pk_filing_entities"),
    )
    assert entities is not None
    batch: list[dict[str, Any]] = []
    for row in _entity_rows():
        batch.append(row)
        if len(batch) >= _CHUNK:
            op.bulk_insert(entities, batch)
            batch = []
    if batch:
        op.bulk_insert(entities, batch)


def _entity_rows() -> Iterator[dict[str, Any]]:
    """Every (kind, key, declaration) of the stored declarations, once, from the earliest stored version."""
    from features import ENTITY_KINDS, entity_keys

    assessments = sa.table(
        "assessments",
        sa.column("declaration_id", sa.String),
        sa.column("declaration_version", sa.Integer),
        sa.column("lodged_at", sa.DateTime(timezone=True)),
        sa.column("declaration", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
    )
    query = (
        sa.select(assessments.c.declaration_id, assessments.c.lodged_at, assessments.c.declaration)
        .where(assessments.c.lodged_at.is_not(None))
        .order_by(assessments.c.declaration_id, assessments.c.declaration_version)
    )
    seen: set[tuple[str, str, str]] = set()
    last_id = None
    for declaration_id, lodged_at, document in op.get_bind().execute(query).yield_per(_CHUNK):
        if declaration_id != last_id:
            seen.clear()
            last_id = declaration_id
        importer = document["importer"]["id"]
        declarant = document["declarant"]["id"]
        office = document["customs_office"]
        for item in document["items"]:
            keys = entity_keys(importer, declarant, office, item["hs_code"], item["origin_country"])
            for kind, key in zip(ENTITY_KINDS, keys, strict=True):
                if key and (kind, key, declaration_id) not in seen:
                    seen.add((kind, key, declaration_id))
                    yield {"kind": kind, "entity_key": key, "declaration_id": declaration_id, "lodged_at": lodged_at}


def downgrade() -> None:
    op.drop_table("filing_entities")
