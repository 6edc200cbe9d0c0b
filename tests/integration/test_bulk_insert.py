"""BulkInsert writes rows that read back exactly as rows written through SQLAlchemy Core, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from risk_service.store import migrations
from risk_service.store.db import BulkInsert, create_engine
from risk_service.store.tables import permit_uses, permits


def _permit_row(permit_id: str) -> dict[str, object]:
    return {
        "permit_id": permit_id,
        "issuing_agency": "NFQS",
        "type": 1,
        "holder_id": "IMP-1",
        "status": 1,
        "version": 1,
        "single_use": True,
        "valid_from": None,
        "valid_to": None,
        "updated_at": datetime(2026, 11, 27, 9, 0, tzinfo=UTC),
        "permit": {},
    }


def test_rows_read_back_like_core_inserts(database_url: str) -> None:
    migrations.upgrade(database_url)
    engine = create_engine(database_url)
    seoul = timezone(timedelta(hours=9))
    used_at = datetime(2026, 11, 27, 18, 30, 15, 123456, tzinfo=seoul)
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(permits), [_permit_row("P-1")])
            conn.execute(
                sa.insert(permit_uses),
                [{"permit_id": "P-1", "declaration_id": "D-CORE", "declaration_version": 1, "used_at": used_at}],
            )
            BulkInsert(permit_uses, conn.dialect).execute(
                conn, [{"permit_id": "P-1", "declaration_id": "D-BULK", "declaration_version": 1, "used_at": used_at}]
            )
        with engine.connect() as conn:
            rows = {
                r.declaration_id: (r.permit_id, r.declaration_version, r.used_at)
                for r in conn.execute(sa.select(permit_uses))
            }
    finally:
        engine.dispose()

    assert rows["D-BULK"] == rows["D-CORE"] == ("P-1", 1, used_at)
    assert rows["D-BULK"][2].tzinfo is not None


def test_rows_without_a_value_for_a_column_are_refused_before_the_database(database_url: str) -> None:
    migrations.upgrade(database_url)
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn, pytest.raises(KeyError, match="used_at"):
            BulkInsert(permit_uses, conn.dialect).execute(
                conn, [{"permit_id": "P-1", "declaration_id": "D", "declaration_version": 1}]
            )
    finally:
        engine.dispose()
