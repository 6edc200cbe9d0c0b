"""Engine creation from a database URL: SQLite in WAL mode with explicit transactions, or PostgreSQL via psycopg."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite

SQLITE_SYNCHRONOUS_MODES = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})

# Keeps IN lists well under every backend's bound-parameter limit.
IN_LIST_CHUNK = 500

_T = TypeVar("_T")


def chunks(items: Sequence[_T], size: int = IN_LIST_CHUNK) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@contextmanager
def temporary_postgres_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server `admin_url` names; dropped (connections and all)
    on exit. For tests, benchmarks and profiles that need a store of their own."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin_url.rsplit("/", 1)[0] + f"/{name}"
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


# Compact, and strict: JSON has no NaN (the codec spells non-finite numbers as strings).
_json_serializer = functools.partial(json.dumps, separators=(",", ":"), allow_nan=False)


def create_engine(
    url: str,
    *,
    sqlite_synchronous: str = "FULL",
    sqlite_busy_timeout_ms: int = 10_000,
    pool_size: int = 5,
) -> sa.Engine:
    """One engine per store; `sqlite_synchronous` FULL makes every commit survive power loss.

    Statement parameters are hidden from errors and logs: they hold whole declarations.
    """
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(
            parsed,
            pool_size=pool_size,
            pool_pre_ping=True,
            json_serializer=_json_serializer,
            hide_parameters=True,
        )

    mode = sqlite_synchronous.upper()
    if mode not in SQLITE_SYNCHRONOUS_MODES:
        raise ValueError(f"sqlite_synchronous must be one of {sorted(SQLITE_SYNCHRONOUS_MODES)}, not {mode!r}")
    if parsed.database in (None, "", ":memory:"):
        raise ValueError("the assessment store needs a SQLite file, not an in-memory database")
    engine = sa.create_engine(
        parsed,
        pool_size=pool_size,
        json_serializer=_json_serializer,
        hide_parameters=True,
        connect_args={"check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Take transaction control from the sqlite3 module, whose implicit BEGIN skips reads
        # and breaks savepoints; SQLAlchemy's "begin" event below issues BEGIN instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={mode}")
            cursor.execute(f"PRAGMA busy_timeout={int(sqlite_busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # Writers take the write lock up front, so busy_timeout applies instead of a
        # mid-transaction SQLITE_BUSY when another process holds it.
        immediate = connection.get_execution_options().get("sqlite_immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class BulkInsert:
    """A plain INSERT of many rows, run through the driver's own executemany.

    For the writer's hot path: SQLAlchemy's per-row parameter handling costs several times what the
    database itself spends on such rows. Values still go through each column's bind processor
    (UTC instants, SQLite's datetime text), so the rows read back exactly as if Core had written them.
    """

    def __init__(self, table: sa.Table, dialect: sa.Dialect, *, ignore_conflicts: bool = False) -> None:
        """With `ignore_conflicts`, rows whose key is already stored are skipped (ON CONFLICT DO NOTHING)."""
        statement: sa.Insert = sa.insert(table)
        if ignore_conflicts:
            if dialect.name == "postgresql":
                statement = postgresql.insert(table).on_conflict_do_nothing()
            elif dialect.name == "sqlite":
                statement = sqlite.insert(table).on_conflict_do_nothing()
            else:
                raise ValueError(f"unsupported database {dialect.name!r}; use SQLite or PostgreSQL")
        compiled = statement.compile(dialect=dialect)
        self._sql = str(compiled)
        self._positional = compiled.positional
        names = list(compiled.positiontup or []) if compiled.positional else list(compiled.params)
        unknown = set(names) - set(table.columns.keys())
        if unknown:
            raise ValueError(f"INSERT into {table.name} binds parameters that are not columns: {sorted(unknown)}")
        self._names = names
        self._processors = [
            (name, processor)
            for name in names
            if (processor := table.columns[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
        ]

    def execute(self, conn: sa.Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Inserts the rows (each a dict with every column) in the connection's transaction."""
        if not rows:
            return
        prepared: list[Any] = []
        for row in rows:
            values = dict(row)
            for name, processor in self._processors:
                values[name] = processor(values[name])
            prepared.append(tuple(values[n] for n in self._names) if self._positional else values)
        conn.exec_driver_sql(self._sql, prepared)
