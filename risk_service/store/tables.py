"""SQLAlchemy Core tables of the assessment store: the only module that knows table and column names."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# JSONB on PostgreSQL: smaller, and queryable by operators if an investigation ever needs it.
JsonDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Stores instants as UTC and hands them back tz-aware, also on SQLite (which keeps no offset)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; the store keeps tz-aware instants only")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


assessments = sa.Table(
    "assessments",
    metadata,
    sa.Column("assessment_id", sa.String(36), primary_key=True),
    sa.Column("declaration_id", sa.String(64), nullable=False),
    sa.Column("declaration_version", sa.Integer, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("channel", sa.SmallInteger, nullable=False),
    sa.Column("risk_score", sa.Double, nullable=False),
    sa.Column("model_score", sa.Double, nullable=True),
    sa.Column("random_control", sa.Boolean, nullable=False),
    sa.Column("model_status", sa.SmallInteger, nullable=False),
    sa.Column("model_name", sa.String, nullable=False),
    sa.Column("model_version", sa.String, nullable=False),
    sa.Column("rule_set_version", sa.String, nullable=False),
    sa.Column("assessed_at", UtcDateTime, nullable=False),
    # The declaration's lodgement time: importer history counts filings by it, as training does.
    sa.Column("lodged_at", UtcDateTime, nullable=True),
    sa.Column("importer_id", sa.String(64), nullable=False),
    sa.Column("customs_office", sa.String, nullable=False),
    sa.Column("declaration", JsonDocument, nullable=False),
    sa.Column("assessment", JsonDocument, nullable=False),
    sa.UniqueConstraint("declaration_id", "declaration_version"),
    # Serves importer history (first lodgement per importer); leads with importer_id, so it also
    # serves lookups by importer alone.
    sa.Index("ix_assessments_importer_id_lodged_at", "importer_id", "lodged_at"),
    sa.Index("ix_assessments_assessed_at", "assessed_at"),
)
