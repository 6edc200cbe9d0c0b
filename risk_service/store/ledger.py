"""The permit quantity ledger: settles declarations' claims inside the assessment writer's transaction, under lock.

Balance and single use are decided here only, against rows locked for the rest of the transaction, so
concurrent writers (threads, processes) never overdraw a goods line. A declaration version draws all it
claims or nothing. Locks are always taken in one order, so writers never deadlock on them:

1. declarations (PostgreSQL advisory transaction locks, ordered by key): whoever replaces or cancels a
   declaration's draws holds its lock, so the earlier draws read under it stay true until commit;
2. permit rows (`SELECT ... FOR UPDATE` ordered by permit_id).

Permit registry changes (permit_store) take permit row locks only (after their own table lock, which
nothing here takes), so they keep to the same order.

On SQLite every writer runs `BEGIN IMMEDIATE`, which serialises them all; the locks above are then no-ops.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa

from risk_service.domain.assessment import Assessment
from risk_service.domain.permits.ledger import (
    DrawRecord,
    DrawRefusal,
    LedgerClaim,
    RefusalKind,
    over_limit,
    sum_by_line,
)
from risk_service.domain.permits.model import LineBalance, PermitStatus
from risk_service.domain.ports import AssessmentRecord, SettleRefusals
from risk_service.store.db import BulkInsert
from risk_service.store.tables import permit_draws, permit_uses

log = logging.getLogger(__name__)

_Key = tuple[str, int]  # (declaration id, version)
LineKey = tuple[str, int]  # (permit id, line number)

# What float subtraction leaves where exact arithmetic leaves 0 (far below any real quantity).
_ROUNDING_RESIDUE = 1e-12
# First half of the two-int advisory lock key ("PRMT"), so our locks cannot meet another application's.
_DECLARATION_LOCK_SPACE = 0x50524D54


def _declaration_lock_key(declaration_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(declaration_id.encode(), digest_size=4).digest(), "big", signed=True)


def lock_declarations(conn: sa.Connection, declaration_ids: Iterable[str]) -> None:
    """Takes the declarations' ledger locks until commit (PostgreSQL); in key order, so lockers never deadlock."""
    if conn.dialect.name != "postgresql":
        return
    keys = sorted({_declaration_lock_key(d) for d in declaration_ids})
    if not keys:
        return
    conn.exec_driver_sql(_PG_LOCK_DECLARATIONS, (_DECLARATION_LOCK_SPACE, _json(keys)))


@dataclass(frozen=True, slots=True)
class PermitFlags:
    status: PermitStatus
    single_use: bool


# The writer's hot path runs fixed SQL through the driver: SQLAlchemy's per-statement work (and, for an
# IN list, rendering and parsing a new statement for every length) costs more than running it. Ids and
# rows are passed as one JSON parameter (serialised in C; psycopg adapts lists to arrays in Python, at
# several microseconds a value), so each statement's text never changes and the drivers keep it
# prepared. On PostgreSQL many rows go in one statement, one round trip; SQLite takes them through
# executemany, with no round trips to save. Rows arrive as jsonb: parsed once, where `json` would parse
# each row's text again for every ->> (a third of the insert's cost).
# PostgreSQL evaluates volatile output functions after ORDER BY, so the locks are taken in key order.
_PG_LOCK_DECLARATIONS = (
    "SELECT pg_advisory_xact_lock(%s, k) FROM (SELECT CAST(json_array_elements_text(CAST(%s AS json)) AS integer) "
    "AS k) AS t ORDER BY k"
)


@dataclass(frozen=True, slots=True)
class _HotSql:
    """The hot statements in one dialect's SQL; each takes its id list or rows as one JSON parameter."""

    latest_versions: str
    lock_permits: str
    load_lines: str
    permits_with_lines: str  # SQLite only: lock_permits and load_lines in one (see lock_permits_and_lines)
    insert_draws: str  # PostgreSQL: one JSON array of rows; SQLite: executemany
    write_line_totals: str  # PostgreSQL: one JSON array of [permit_id, line, quantity, value]; SQLite: executemany
    # What an amendment replaces, and what a cancellation releases, by declaration (or permit) ids.
    cancelled: str
    load_draws: str
    uses_of_declarations: str
    uses_of_permits: str
    delete_draws: str
    delete_uses: str


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _json_rows(rows: Iterable[Sequence[object]]) -> str:
    """Rows for PostgreSQL's json_array_elements, floats as their repr: exact, and an infinite total (a line
    limited by quantity only, drawn past 1e308 in value) travels as 'inf', which JSON has no number for."""
    return _json([[repr(v) if isinstance(v, float) else v for v in row] for row in rows])


_LINE_COLUMNS = "line_number, unit, authorised_quantity, authorised_value, drawn_quantity, drawn_value"
_DRAW_COLUMNS = "declaration_id, permit_id, line_number, item_number, declaration_version, quantity, value, drawn_at"
_SQLITE_IDS = "IN (SELECT value FROM json_each(?))"
# An array, not IN (subquery): the planner then looks each id up in the primary key.
_PG_IDS = "= ANY(ARRAY(SELECT json_array_elements_text(CAST(%s AS json))))"


def _by_ids(ids: str) -> dict[str, str]:
    """The statements of the amendment and cancellation paths, for one dialect's id-list condition."""
    return {
        "cancelled": f"SELECT declaration_id FROM declaration_cancellations WHERE declaration_id {ids}",
        "load_draws": f"SELECT {_DRAW_COLUMNS} FROM permit_draws WHERE declaration_id {ids} "
        "ORDER BY declaration_id, permit_id, line_number, item_number",
        "uses_of_declarations": "SELECT permit_id, declaration_id, declaration_version FROM permit_uses "
        f"WHERE declaration_id {ids}",
        "uses_of_permits": "SELECT permit_id, declaration_id, declaration_version FROM permit_uses "
        f"WHERE permit_id {ids}",
        "delete_draws": f"DELETE FROM permit_draws WHERE declaration_id {ids}",
        "delete_uses": f"DELETE FROM permit_uses WHERE declaration_id {ids}",
    }


_HOT_SQL = {
    "sqlite": _HotSql(
        latest_versions="SELECT declaration_id, max(declaration_version) FROM assessments "
        f"WHERE declaration_id {_SQLITE_IDS} GROUP BY declaration_id",
        lock_permits=f"SELECT permit_id, status, single_use FROM permits WHERE permit_id {_SQLITE_IDS} "
        "ORDER BY permit_id",
        load_lines=f"SELECT permit_id, {_LINE_COLUMNS} FROM permit_lines WHERE permit_id {_SQLITE_IDS}",
        permits_with_lines="SELECT p.permit_id, p.status, p.single_use, l.line_number, l.unit, "
        "l.authorised_quantity, l.authorised_value, l.drawn_quantity, l.drawn_value "
        "FROM permits AS p LEFT JOIN permit_lines AS l ON l.permit_id = p.permit_id "
        f"WHERE p.permit_id {_SQLITE_IDS}",
        insert_draws=f"INSERT INTO permit_draws ({_DRAW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        write_line_totals="UPDATE permit_lines SET drawn_quantity = ?, drawn_value = ? "
        "WHERE permit_id = ? AND line_number = ?",
        **_by_ids(_SQLITE_IDS),
    ),
    "postgresql": _HotSql(
        latest_versions="SELECT declaration_id, max(declaration_version) FROM assessments "
        f"WHERE declaration_id {_PG_IDS} GROUP BY declaration_id",
        # One statement for every id: the locks are taken in one order (the server's, by permit_id).
        lock_permits=f"SELECT permit_id, status, single_use FROM permits WHERE permit_id {_PG_IDS} "
        "ORDER BY permit_id FOR UPDATE",
        load_lines=f"SELECT permit_id, {_LINE_COLUMNS} FROM permit_lines WHERE permit_id {_PG_IDS}",
        permits_with_lines="",
        insert_draws=f"INSERT INTO permit_draws ({_DRAW_COLUMNS}) "
        "SELECT r->>0, r->>1, CAST(r->>2 AS integer), CAST(r->>3 AS integer), CAST(r->>4 AS integer), "
        "CAST(r->>5 AS double precision), CAST(r->>6 AS double precision), CAST(r->>7 AS timestamptz) "
        "FROM jsonb_array_elements(CAST(%s AS jsonb)) AS t(r)",
        # The ANY array makes the planner look the lines up by key (a join alone scans the table).
        write_line_totals="WITH v AS MATERIALIZED (SELECT r->>0 AS p, CAST(r->>1 AS integer) AS n, "
        "CAST(r->>2 AS double precision) AS q, CAST(r->>3 AS double precision) AS v "
        "FROM jsonb_array_elements(CAST(%s AS jsonb)) AS t(r)) "
        "UPDATE permit_lines AS l SET drawn_quantity = v.q, drawn_value = v.v FROM v "
        "WHERE l.permit_id = v.p AND l.line_number = v.n AND l.permit_id = ANY(ARRAY(SELECT p FROM v))",
        **_by_ids(_PG_IDS),
    ),
}


def _hot_sql(conn: sa.Connection) -> _HotSql:
    sql = _HOT_SQL.get(conn.dialect.name)
    if sql is None:
        raise ValueError(f"unsupported database {conn.dialect.name!r}; use SQLite or PostgreSQL")
    return sql


_BULK_INSERTS: dict[tuple[str, str, str], BulkInsert] = {}
# drawn_at as the hot insert takes it (SQLite: the column's text; PostgreSQL: ISO 8601 in the JSON rows).
_DRAWN_AT: dict[str, Callable[[Any], Any]] = {}
_DRAWN_AT_RESULT: dict[str, Callable[[Any], Any]] = {}


def _bulk_insert(conn: sa.Connection, table: sa.Table) -> BulkInsert:
    dialect = conn.dialect
    key = (table.name, dialect.name, dialect.driver)
    bulk = _BULK_INSERTS.get(key)
    if bulk is None:  # racing writers at worst build it twice
        bulk = _BULK_INSERTS[key] = BulkInsert(table, dialect)
    return bulk


def _drawn_at_processor(conn: sa.Connection) -> Callable[[Any], Any]:
    dialect = conn.dialect
    processor = _DRAWN_AT.get(dialect.name)
    if processor is None:
        bind = permit_draws.c.drawn_at.type.dialect_impl(dialect).bind_processor(dialect)
        if dialect.name == "postgresql":  # the column's check (tz-aware, to UTC), then text for the JSON rows
            processor = (lambda value: bind(value).isoformat()) if bind is not None else datetime.isoformat
        else:
            processor = bind if bind is not None else (lambda value: value)
        _DRAWN_AT[dialect.name] = processor
    return processor


def _drawn_at_result(conn: sa.Connection) -> Callable[[Any], Any]:
    """drawn_at as read through the driver, made what the column type hands back (tz-aware UTC)."""
    dialect = conn.dialect
    processor = _DRAWN_AT_RESULT.get(dialect.name)
    if processor is None:
        result = permit_draws.c.drawn_at.type.dialect_impl(dialect).result_processor(dialect, None)
        processor = _DRAWN_AT_RESULT[dialect.name] = result if result is not None else (lambda value: value)
    return processor


def lock_permits(conn: sa.Connection, permit_ids: Iterable[str]) -> dict[str, PermitFlags]:
    """Locks the permit rows until commit, in permit_id order; their status and single-use flag as locked."""
    ids = sorted(set(permit_ids))
    if not ids:
        return {}
    sql = _hot_sql(conn)
    return {
        permit_id: PermitFlags(PermitStatus(status), bool(single_use))
        for permit_id, status, single_use in conn.exec_driver_sql(sql.lock_permits, (_json(ids),))
    }


def lock_permits_and_lines(
    conn: sa.Connection, permit_ids: Iterable[str]
) -> tuple[dict[str, PermitFlags], dict[LineKey, LineTotals]]:
    """lock_permits, then load_lines of the permits found.

    On SQLite the writer already holds the database's write lock (BEGIN IMMEDIATE), so one joined
    read is as good as two statements, and cheaper on the writer's hot path.
    """
    if conn.dialect.name != "sqlite":
        flags = lock_permits(conn, permit_ids)
        return flags, load_lines(conn, flags)
    found: dict[str, PermitFlags] = {}
    lines: dict[LineKey, LineTotals] = {}
    ids = sorted(set(permit_ids))
    if not ids:
        return found, lines
    sql = _hot_sql(conn)
    flags_of: dict[tuple[int, int], PermitFlags] = {}  # few distinct (status, single use) pairs: share them
    for permit_id, status, single_use, line_number, *totals in conn.exec_driver_sql(
        sql.permits_with_lines, (_json(ids),)
    ):
        shared = flags_of.get((status, single_use))
        if shared is None:
            shared = flags_of[(status, single_use)] = PermitFlags(PermitStatus(status), bool(single_use))
        found[permit_id] = shared
        if line_number is not None:
            lines[(permit_id, line_number)] = LineTotals(*totals)
    return found, lines


@dataclass(slots=True)
class LineTotals:
    """A goods line as the ledger sees it under lock: limits and running totals."""

    unit: str
    authorised_quantity: float | None
    authorised_value: float | None
    drawn_quantity: float
    drawn_value: float
    changed: bool = False

    @property
    def balance(self) -> LineBalance:
        return LineBalance(self.drawn_quantity, self.drawn_value)


def load_lines(conn: sa.Connection, permit_ids: Iterable[str]) -> dict[LineKey, LineTotals]:
    """The goods lines of locked permits; read after the lock, so the totals are the committed ones.

    A statement of its own, not a join in the locking one: on PostgreSQL a statement that waited
    for a row lock still reads the other tables as of its start, so the totals could be stale.
    """
    ids = sorted(set(permit_ids))
    if not ids:
        return {}
    sql = _hot_sql(conn)
    return {
        (permit_id, line_number): LineTotals(unit, quantity, value, drawn_quantity, drawn_value)
        for permit_id, line_number, unit, quantity, value, drawn_quantity, drawn_value in conn.exec_driver_sql(
            sql.load_lines, (_json(ids),)
        )
    }


def write_line_totals(conn: sa.Connection, lines: Mapping[LineKey, LineTotals]) -> dict[LineKey, LineBalance]:
    """Writes the totals of changed lines (absolute values: the rows are locked); returns their balances."""
    changed = sorted((key, line) for key, line in lines.items() if line.changed)
    if not changed:
        return {}
    sql = _hot_sql(conn)
    if conn.dialect.name == "postgresql":
        rows = [(p, n, line.drawn_quantity, line.drawn_value) for (p, n), line in changed]
        conn.exec_driver_sql(sql.write_line_totals, (_json_rows(rows),))
    else:
        conn.exec_driver_sql(
            sql.write_line_totals, [(line.drawn_quantity, line.drawn_value, p, n) for (p, n), line in changed]
        )
    return {key: LineBalance(line.drawn_quantity, line.drawn_value) for key, line in changed}


class StoredDraw(NamedTuple):
    """A declaration's draw from one goods line for one item (a tuple: the writer makes many)."""

    permit_id: str
    line_number: int
    item_number: int
    declaration_version: int
    quantity: float
    value: float
    drawn_at: datetime

    def record(self, declaration_id: str) -> DrawRecord:
        return DrawRecord(
            self.permit_id,
            declaration_id,
            self.declaration_version,
            self.line_number,
            self.item_number,
            self.quantity,
            self.value,
            self.drawn_at,
        )


def load_draws(conn: sa.Connection, declaration_ids: Sequence[str]) -> dict[str, list[StoredDraw]]:
    found: dict[str, list[StoredDraw]] = {}
    if not declaration_ids:
        return found
    drawn_at = _drawn_at_result(conn)
    rows = conn.exec_driver_sql(_hot_sql(conn).load_draws, (_json(list(declaration_ids)),))
    for declaration_id, permit_id, line_number, item_number, version, quantity, value, at in rows:
        draw = StoredDraw(permit_id, line_number, item_number, version, quantity, value, drawn_at(at))
        found.setdefault(declaration_id, []).append(draw)
    return found


def load_uses(
    conn: sa.Connection, *, declaration_ids: Sequence[str] = (), permit_ids: Sequence[str] = ()
) -> list[tuple[str, str, int]]:
    """(permit id, declaration id, version) of the uses of these declarations, and of these permits."""
    sql = _hot_sql(conn)
    rows: set[tuple[str, str, int]] = set()
    for query, values in ((sql.uses_of_declarations, declaration_ids), (sql.uses_of_permits, permit_ids)):
        if values:
            rows.update((p, d, v) for p, d, v in conn.exec_driver_sql(query, (_json(sorted(set(values))),)))
    return sorted(rows)


def delete_draws_and_uses(conn: sa.Connection, declaration_ids: Sequence[str]) -> None:
    if not declaration_ids:
        return
    sql, ids = _hot_sql(conn), (_json(sorted(declaration_ids)),)
    conn.exec_driver_sql(sql.delete_draws, ids)
    conn.exec_driver_sql(sql.delete_uses, ids)


# -- settling claims (the assessment writer) ----------------------------------------------------


@dataclass(slots=True)
class _Declaration:
    """One declaration's place in the ledger during a transaction."""

    latest_version: int | None  # the highest version stored or settled so far
    cancelled: bool = False
    draws: list[StoredDraw] = field(default_factory=list)  # what it draws now
    uses: set[str] = field(default_factory=set)  # single-use permits it uses now
    replaced: bool = False  # its stored draws and uses are rewritten at the end
    had_rows: bool = False  # draws or uses were stored for it before this transaction


@dataclass(frozen=True, slots=True)
class Settlement:
    """What the ledger did in a writer transaction."""

    #: The assessment to store instead of the record's own, for records with refused claims.
    assessments: dict[_Key, Assessment] = field(default_factory=dict)
    #: Records whose claims were settled: each must be inserted in this transaction, or it must roll back.
    settled: frozenset[_Key] = frozenset()
    #: New totals of every goods line whose drawn totals changed.
    balances: dict[LineKey, LineBalance] = field(default_factory=dict)


def _has_claim(claim: LedgerClaim | None) -> bool:
    return claim is not None and bool(claim.draws or claim.single_use_permits)


def needs_ledger(record: AssessmentRecord) -> bool:
    """Only records that claim something, or that may replace an earlier version's draws, cost ledger work.

    A record without a claim (None) was not checked against permits at all (checks switched off):
    it neither draws nor releases, so turning checks off never hands back recorded draws.
    """
    if record.claim is None:
        return False
    return record.assessment.declaration_version > 1 or _has_claim(record.claim)


def settle_claims(
    conn: sa.Connection,
    records: Sequence[AssessmentRecord],
    *,
    settle: SettleRefusals | None,
    now: datetime,
) -> Settlement:
    """Settles the claims of records about to be inserted, as if one after another in this order.

    Call it in the writer's transaction before inserting the records, with each key once, and only
    keys not known to be stored; a key stored meanwhile is found here and left alone. A record settles
    when no equal or higher version of its declaration is stored (or settled earlier in `records`),
    and its declaration was not cancelled: it releases every draw and use of the earlier versions and
    then draws all of its claim, or nothing when any part is refused, in which case `settle` gives the
    assessment to store. Retries and out-of-order older versions draw nothing and release nothing.
    """
    relevant = [r for r in records if needs_ledger(r)]
    if not relevant:
        return Settlement()
    newest: dict[str, int] = {}  # declaration id -> the highest version among the records
    for r in relevant:
        a = r.assessment
        newest[a.declaration_id] = max(newest.get(a.declaration_id, 0), a.declaration_version)
    lock_declarations(conn, newest)
    declarations = _load_declarations(conn, newest)

    # A cancelled declaration draws nothing again; a later version that claims permits is flagged for it.
    cancelled = _refuse_cancelled(relevant, declarations, settle)
    # Everything a settling record may touch: the permits it claims and those its earlier versions drew from.
    to_settle = [r for r in relevant if _may_settle(r, declarations[r.assessment.declaration_id])]
    if not to_settle:
        return Settlement(cancelled)
    claimed = {p for r in to_settle if r.claim is not None for p in r.claim.permit_ids}
    replacing = [declarations[d] for d in sorted({r.assessment.declaration_id for r in to_settle})]
    held = {d.permit_id for s in replacing for d in s.draws} | {p for s in replacing for p in s.uses}
    flags, lines = lock_permits_and_lines(conn, claimed | held)
    single_use = {p for r in to_settle if r.claim is not None for p in r.claim.single_use_permits}
    single_use |= {p for p in claimed if p in flags and flags[p].single_use}
    users: dict[str, set[str]] = {}  # permit id -> declarations using it
    for permit_id, declaration_id, _ in load_uses(conn, permit_ids=sorted(single_use)):
        users.setdefault(permit_id, set()).add(declaration_id)
    for declaration_id, state in declarations.items():
        for permit_id in state.uses:
            users.setdefault(permit_id, set()).add(declaration_id)

    replacements: dict[_Key, Assessment] = dict(cancelled)
    settled: set[_Key] = set()
    for record in to_settle:
        a = record.assessment
        state = declarations[a.declaration_id]
        if not _may_settle(record, state):  # a higher version settled earlier in this batch
            continue
        state.replaced = state.replaced or bool(state.draws or state.uses)
        _release(state, a.declaration_id, lines, users)
        state.latest_version = a.declaration_version
        settled.add((a.declaration_id, a.declaration_version))
        claim = record.claim if record.claim is not None else LedgerClaim()
        permit_ids = claim.permit_ids
        refusals = (
            []
            if _fits(claim, permit_ids, a.declaration_id, flags, lines, users, single_use)
            else _refusals(claim, a.declaration_id, flags, lines, users, single_use)
        )
        if refusals:
            log.info(
                "declaration %s v%d: ledger refused %d parts of its claim (%s); it draws nothing",
                a.declaration_id,
                a.declaration_version,
                len(refusals),
                ", ".join(sorted({r.kind.value for r in refusals})),
            )
            if settle is None:
                log.warning(
                    "declaration %s v%d: no settle function, so the assessment is stored unflagged",
                    a.declaration_id,
                    a.declaration_version,
                )
            else:
                replacements[(a.declaration_id, a.declaration_version)] = settle(record, refusals)
            continue
        _draw(state, claim, a.declaration_version, now, lines)
        for permit_id in permit_ids & single_use:
            state.uses.add(permit_id)
            users.setdefault(permit_id, set()).add(a.declaration_id)
        state.replaced = state.replaced or bool(state.draws or state.uses)

    _write_declarations(conn, declarations, now)
    balances = write_line_totals(conn, lines)
    return Settlement(replacements, frozenset(settled), balances)


def _refuse_cancelled(
    records: Sequence[AssessmentRecord], declarations: Mapping[str, _Declaration], settle: SettleRefusals | None
) -> dict[_Key, Assessment]:
    """Flagged assessments of new versions of cancelled declarations that claim permits."""
    out: dict[_Key, Assessment] = {}
    for record in records:
        a = record.assessment
        state = declarations[a.declaration_id]
        newer = state.latest_version is None or a.declaration_version > state.latest_version
        if not (state.cancelled and newer and _has_claim(record.claim)) or settle is None:
            continue
        claim = record.claim if record.claim is not None else LedgerClaim()
        items: dict[str, set[int]] = {}
        for d in claim.draws:
            items.setdefault(d.permit_id, set()).add(d.item_number)
        refusals = [
            DrawRefusal(RefusalKind.DECLARATION_CANCELLED, p, item_numbers=tuple(sorted(items.get(p, ()))))
            for p in sorted(claim.permit_ids)
        ]
        log.info("declaration %s v%d: cancelled earlier, so it draws nothing", a.declaration_id, a.declaration_version)
        out[(a.declaration_id, a.declaration_version)] = settle(record, refusals)
    return out


def _may_settle(record: AssessmentRecord, state: _Declaration) -> bool:
    a = record.assessment
    if state.cancelled:
        return False
    return state.latest_version is None or a.declaration_version > state.latest_version


def _load_declarations(conn: sa.Connection, newest: Mapping[str, int]) -> dict[str, _Declaration]:
    """Each declaration's highest stored version, cancellation, and current draws and uses (read under its lock).

    `newest` maps each declaration to the highest version about to be stored: the cancellation, draws and
    uses matter only where that is above the highest stored one (not for retries or late older versions).
    """
    declaration_ids = sorted(newest)
    sql = _hot_sql(conn)
    latest: dict[str, int] = {d: v for d, v in conn.exec_driver_sql(sql.latest_versions, (_json(declaration_ids),))}
    states = {d: _Declaration(latest.get(d)) for d in declaration_ids}
    # A declaration never stored has neither draws nor a cancellation: new filings skip these reads.
    stored = sorted(d for d, v in latest.items() if newest[d] > v)
    if not stored:
        return states
    for (declaration_id,) in conn.exec_driver_sql(sql.cancelled, (_json(stored),)):
        states[declaration_id].cancelled = True
    live = [d for d in stored if not states[d].cancelled]
    for declaration_id, draws in load_draws(conn, live).items():
        states[declaration_id].draws = draws
        states[declaration_id].had_rows = True
    for permit_id, declaration_id, _ in load_uses(conn, declaration_ids=live):
        states[declaration_id].uses.add(permit_id)
        states[declaration_id].had_rows = True
    return states


def _minus(total: float, amount: float, limit: float | None) -> float:
    # Float sums do not cancel exactly: snap what is left of giving everything back to 0, so a line
    # whose draws are all released reads as untouched (an amendment may then drop it or change its unit).
    # The residue grows with the amounts ever summed on the line, not with what is left, so it is
    # judged against the line's limit too (draws never pass it).
    left = total - amount
    scale = max(1.0, abs(total), abs(limit) if limit is not None else 0.0)
    return 0.0 if abs(left) <= _ROUNDING_RESIDUE * scale else left


def _release(
    state: _Declaration, declaration_id: str, lines: dict[LineKey, LineTotals], users: dict[str, set[str]]
) -> None:
    # Stored draws come in item order, the claim's: the sums are the ones _draw added.
    for key, (quantity, value) in sum_by_line(state.draws).items():
        line = lines.get(key)
        if line is None:  # the foreign key keeps a line with draws; a missing one is a broken database
            raise RuntimeError(f"permit {key[0]} line {key[1]} has draws but no row")
        line.drawn_quantity = _minus(line.drawn_quantity, quantity, line.authorised_quantity)
        line.drawn_value = _minus(line.drawn_value, value, line.authorised_value)
        line.changed = True
    state.draws = []
    for permit_id in state.uses:
        users.get(permit_id, set()).discard(declaration_id)
    state.uses = set()


def _exceeds(requested: float, authorised: float | None, drawn: float) -> bool:
    return over_limit(drawn + requested, authorised)


def _fits(
    claim: LedgerClaim,
    permit_ids: frozenset[str],
    declaration_id: str,
    flags: Mapping[str, PermitFlags],
    lines: Mapping[LineKey, LineTotals],
    users: Mapping[str, set[str]],
    single_use: set[str],
) -> bool:
    """Whether `_refusals` would find nothing: the common case, decided without building any refusal."""
    for permit_id in permit_ids:
        permit = flags.get(permit_id)
        if permit is None or permit.status is not PermitStatus.ACTIVE:
            return False
        if permit_id in single_use and any(u != declaration_id for u in users.get(permit_id, ())):
            return False
    for key, (quantity, value) in claim.by_line.items():
        line = lines.get(key)
        if (
            line is None
            or _exceeds(quantity, line.authorised_quantity, line.drawn_quantity)
            or _exceeds(value, line.authorised_value, line.drawn_value)
        ):
            return False
    return True


def _refusals(
    claim: LedgerClaim,
    declaration_id: str,
    flags: Mapping[str, PermitFlags],
    lines: Mapping[LineKey, LineTotals],
    users: Mapping[str, set[str]],
    single_use: set[str],
) -> list[DrawRefusal]:
    items: dict[str, set[int]] = {}
    for d in claim.draws:
        items.setdefault(d.permit_id, set()).add(d.item_number)
    refusals: list[DrawRefusal] = []
    unusable: set[str] = set()
    for permit_id in sorted(claim.permit_ids):
        permit = flags.get(permit_id)
        if permit is None or permit.status is not PermitStatus.ACTIVE:
            unusable.add(permit_id)
            refusals.append(
                DrawRefusal(RefusalKind.NOT_USABLE, permit_id, item_numbers=tuple(sorted(items.get(permit_id, ()))))
            )
    for permit_id in sorted((claim.permit_ids & single_use) - unusable):
        others = sorted(users.get(permit_id, set()) - {declaration_id})
        if others:
            refusals.append(
                DrawRefusal(
                    RefusalKind.ALREADY_USED,
                    permit_id,
                    item_numbers=tuple(sorted(items.get(permit_id, ()))),
                    used_by=others[0],
                )
            )
    requested: dict[LineKey, tuple[float, float, set[int]]] = {}
    for d in claim.draws:
        if d.permit_id in unusable:
            continue
        quantity, value, numbers = requested.get((d.permit_id, d.line_number), (0.0, 0.0, set()))
        numbers.add(d.item_number)
        requested[(d.permit_id, d.line_number)] = (quantity + d.quantity, value + d.value, numbers)
    for (permit_id, line_number), (quantity, value, numbers) in sorted(requested.items()):
        line = lines.get((permit_id, line_number))
        if line is None:  # the line was amended away since the claim was made
            refusals.append(
                DrawRefusal(RefusalKind.NOT_USABLE, permit_id, line_number, item_numbers=tuple(sorted(numbers)))
            )
            continue
        if _exceeds(quantity, line.authorised_quantity, line.drawn_quantity) or _exceeds(
            value, line.authorised_value, line.drawn_value
        ):
            refusals.append(
                DrawRefusal(
                    RefusalKind.BALANCE,
                    permit_id,
                    line_number,
                    item_numbers=tuple(sorted(numbers)),
                    unit=line.unit,
                    requested_quantity=quantity,
                    remaining_quantity=None
                    if line.authorised_quantity is None
                    else line.authorised_quantity - line.drawn_quantity,
                    requested_value=value,
                    remaining_value=None if line.authorised_value is None else line.authorised_value - line.drawn_value,
                    authorised_quantity=line.authorised_quantity,
                    authorised_value=line.authorised_value,
                )
            )
    return refusals


def _draw(
    state: _Declaration, claim: LedgerClaim, version: int, now: datetime, lines: dict[LineKey, LineTotals]
) -> None:
    # The totals grow by the sums _fits judged, line by line.
    for line_key, (quantity, value) in claim.by_line.items():
        if quantity == 0 and value == 0:
            continue
        line = lines[line_key]
        line.drawn_quantity += quantity
        line.drawn_value += value
        line.changed = True
    # One row per (permit, line, item): an item citing a line twice draws the sum.
    merged: dict[tuple[str, int, int], StoredDraw] = {}
    for d in claim.draws:
        if d.quantity == 0 and d.value == 0:
            # Nothing to record; a row would only pin a line that shows no balance (amendments may drop it).
            continue
        key = (d.permit_id, d.line_number, d.item_number)
        earlier = merged.get(key)
        if earlier is None:
            merged[key] = StoredDraw(d.permit_id, d.line_number, d.item_number, version, d.quantity, d.value, now)
        else:
            merged[key] = earlier._replace(quantity=earlier.quantity + d.quantity, value=earlier.value + d.value)
    state.draws = list(merged.values())


def _write_declarations(conn: sa.Connection, declarations: Mapping[str, _Declaration], now: datetime) -> None:
    replaced = sorted(d for d, s in declarations.items() if s.replaced)
    if not replaced:
        return
    # A first filing has no rows to delete; two statements saved per transaction on the hot path.
    delete_draws_and_uses(conn, [d for d in replaced if declarations[d].had_rows])
    drawn_at = _drawn_at_processor(conn)
    processed: dict[datetime, Any] = {}  # one conversion per time: a transaction draws at one `now`
    draw_rows: list[tuple[Any, ...]] = []
    for d in replaced:
        for draw in declarations[d].draws:
            at = processed.get(draw.drawn_at)
            if at is None:
                at = processed[draw.drawn_at] = drawn_at(draw.drawn_at)
            draw_rows.append((d, *draw[:6], at))
    use_rows: list[dict[str, Any]] = [
        {
            "permit_id": p,
            "declaration_id": d,
            "declaration_version": declarations[d].latest_version,
            "used_at": now,
        }
        for d in replaced
        for p in sorted(declarations[d].uses)
    ]
    if draw_rows:
        sql = _hot_sql(conn)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(sql.insert_draws, (_json_rows(draw_rows),))
        else:
            conn.exec_driver_sql(sql.insert_draws, draw_rows)
    _bulk_insert(conn, permit_uses).execute(conn, use_rows)


# -- cancellation (the permit store) --------------------------------------------------------------


def release_declaration(
    conn: sa.Connection, declaration_id: str
) -> tuple[list[DrawRecord], dict[LineKey, LineBalance]]:
    """Gives back every draw and use of one declaration; the caller holds its declaration lock.

    Returns the released draws and the new totals of the lines they came from.
    """
    draws = load_draws(conn, [declaration_id]).get(declaration_id, [])
    uses = load_uses(conn, declaration_ids=[declaration_id])
    permit_ids = {d.permit_id for d in draws} | {p for p, _, _ in uses}
    if not permit_ids:
        return [], {}
    lock_permits(conn, permit_ids)
    lines = load_lines(conn, {d.permit_id for d in draws})
    state = _Declaration(latest_version=None, draws=draws)
    _release(state, declaration_id, lines, {})
    delete_draws_and_uses(conn, [declaration_id])
    balances = write_line_totals(conn, lines)
    return [d.record(declaration_id) for d in draws], balances
