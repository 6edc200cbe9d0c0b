"""Shared fixtures: every storage test runs against SQLite and the PostgreSQL server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

POSTGRES_ADMIN_URL = os.environ.get("RISK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
_skipped_postgres: list[str] = []


def _postgres_available() -> bool:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(POSTGRES_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    return _postgres_available()


@contextmanager
def fresh_database(request: pytest.FixtureRequest, kind: str, folder: Path, postgres_available: bool) -> Iterator[str]:
    """An empty database: a SQLite file in `folder`, or a new PostgreSQL database dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'risk.db'}"
        return
    if not postgres_available:
        _skipped_postgres.append(request.node.nodeid)  # RISK_REQUIRE_POSTGRES=1 turns this into a failure
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}")
    from risk_service.store.db import temporary_postgres_database

    with temporary_postgres_database(POSTGRES_ADMIN_URL, "risk_test") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_available: bool) -> Iterator[str]:
    """A fresh, empty database per test, on each backend."""
    with fresh_database(request, request.param, tmp_path, postgres_available) as url:
        yield url


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # CI sets RISK_REQUIRE_POSTGRES=1: a run that skipped PostgreSQL tests must fail there.
    if os.environ.get("RISK_REQUIRE_POSTGRES") == "1" and _skipped_postgres:
        print(f"\nRISK_REQUIRE_POSTGRES=1 but {len(_skipped_postgres)} PostgreSQL tests were skipped")
        session.exitstatus = 1
