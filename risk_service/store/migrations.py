"""Schema migrations run from code (alembic API): the scripts ship inside the package, no alembic.ini needed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from risk_service.store.db import create_engine

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"


def _config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    # Passed as an attribute, not an ini option, so a '%' in a password needs no escaping.
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Brings the schema up to `revision`; a no-op when already there."""
    _run(command.upgrade, url, revision)


def downgrade(url: str, revision: str) -> None:
    """Takes the schema back to `revision` ("base" drops every table the migrations made)."""
    _run(command.downgrade, url, revision)


def _run(step: Callable[[Config, str], None], url: str, revision: str) -> None:
    """Runs an alembic command in one transaction on a connection of our own engine."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            config = _config(url)
            config.attributes["connection"] = conn
            step(config, revision)
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    """The revision the database is at, or None for an empty (unmigrated) database."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            revision: str | None = MigrationContext.configure(conn).get_current_revision()
            return revision
    finally:
        engine.dispose()
