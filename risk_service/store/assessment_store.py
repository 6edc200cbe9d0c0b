"""Durable assessment storage with group commit: one writer thread, one transaction per batch of submissions."""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from features import ENTITY_KINDS
from risk_service.domain.assessment import Assessment
from risk_service.domain.declaration import Declaration
from risk_service.domain.entity_history import declaration_keys
from risk_service.domain.errors import Unavailable
from risk_service.domain.permits.model import LineBalance
from risk_service.domain.ports import AssessmentRecord, BalancesChanged, SaveResult, SettleRefusals
from risk_service.store import codec
from risk_service.store.db import BulkInsert, chunks, create_engine
from risk_service.store.ledger import LineKey, Settlement, needs_ledger, settle_claims
from risk_service.store.tables import assessments, filing_entities

log = logging.getLogger(__name__)

_Key = tuple[str, int]
_Row = dict[str, Any]
# JSON is made here, once per record, rather than by the column type: one reused encoder is
# cheaper on the writer's hot path, and the codec never makes NaN or circular structures.
_to_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False, check_circular=False).encode


@dataclass(slots=True)
class _Submission:
    """One save_many call, answered through its future; an atomic one is written whole or not at all."""

    records: Sequence[AssessmentRecord]
    future: Future[list[SaveResult]]
    atomic: bool = False
    rows: list[_Row] = field(default_factory=list)


class _AtomicRace(Exception):
    """Another writer stored a key of an atomic submission between its conflict check and its insert."""


class _LedgerRace(Exception):
    """Another writer stored a key whose claim this transaction settled; its draws must not stay."""


def _key(record: AssessmentRecord) -> _Key:
    return (record.assessment.declaration_id, record.assessment.declaration_version)


def _row(record: AssessmentRecord) -> _Row:
    a, d = record.assessment, record.declaration
    if (a.declaration_id, a.declaration_version) != d.key:
        raise ValueError(
            f"assessment {a.assessment_id} is for {a.declaration_id} v{a.declaration_version}, "
            f"not for the declaration given ({d.declaration_id} v{d.version})"
        )
    return {
        "assessment_id": a.assessment_id,
        "declaration_id": a.declaration_id,
        "declaration_version": a.declaration_version,
        "content_hash": record.content_hash,
        "channel": int(a.channel),
        "risk_score": a.risk_score,
        "model_score": a.model_score,
        "random_control": a.random_control,
        "model_status": int(a.model_status),
        "model_name": a.model_name,
        "model_version": a.model_version,
        "rule_set_version": a.rule_set_version,
        "assessed_at": a.assessment_time,
        "lodged_at": d.lodgement_time,
        "importer_id": d.importer.id,
        "customs_office": d.customs_office,
        "declaration_json": _to_json(codec.declaration_to_dict(d)),
        "assessment_json": _to_json(codec.assessment_to_dict(a)),
    }


def _entity_rows(d: Declaration) -> list[dict[str, Any]]:
    """The filing_entities rows of one declaration: each entity it names, once."""
    if d.lodgement_time is None:
        return []
    unique = {(kind, key) for keys in declaration_keys(d) for kind, key in zip(ENTITY_KINDS, keys, strict=True) if key}
    return [
        {"kind": kind, "entity_key": key, "declaration_id": d.declaration_id, "lodged_at": d.lodgement_time}
        for kind, key in unique
    ]


class SqlAssessmentStore:
    """Stores every assessment before the service answers; SQLite or PostgreSQL through SQLAlchemy Core.

    `save_many` only queues the records. A single writer thread takes whatever is queued (about
    `max_batch` records) and writes it in one transaction, so one commit (one fsync) serves many
    calls. If that transaction fails, each submission is retried in its own transaction, so one bad
    submission fails only its own future. The schema must exist: run `migrations.upgrade` first.

    Records with a permit claim settle it in the same transaction (see `risk_service.store.ledger`):
    `settle` turns the ledger's refusals into the assessment to store, and `on_balances` hears the
    new totals of the goods lines drawn from after each commit.
    """

    def __init__(
        self,
        url: str,
        *,
        max_batch: int = 2000,
        sqlite_synchronous: str = "FULL",
        settle: SettleRefusals | None = None,
        on_balances: BalancesChanged | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._engine = create_engine(url, sqlite_synchronous=sqlite_synchronous)
        self._max_batch = max_batch
        self._settle = settle
        self._on_balances = on_balances
        self._insert = self._build_insert(self._engine.dialect.name)
        # A later version naming the same entities adds nothing: the first stored version's time stands.
        self._insert_entities = BulkInsert(filing_entities, self._engine.dialect, ignore_conflicts=True)
        self._queue: queue.SimpleQueue[_Submission | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._conn: sa.Connection | None = None
        self._writer = threading.Thread(target=self._run, name="assessment-store-writer", daemon=True)
        self._writer.start()

    @staticmethod
    def _build_insert(dialect: str) -> sa.Insert:
        t = assessments
        key = [t.c.declaration_id, t.c.declaration_version]
        declaration_json = sa.bindparam("declaration_json", type_=sa.Text)
        assessment_json = sa.bindparam("assessment_json", type_=sa.Text)
        if dialect == "postgresql":
            pg = postgresql.insert(t).values(
                declaration=sa.cast(declaration_json, postgresql.JSONB),
                assessment=sa.cast(assessment_json, postgresql.JSONB),
            )
            return pg.on_conflict_do_nothing(index_elements=key).returning(*key)
        if dialect == "sqlite":  # JSON is plain text there
            lite = sqlite.insert(t).values(declaration=declaration_json, assessment=assessment_json)
            return lite.on_conflict_do_nothing(index_elements=key).returning(*key)
        raise ValueError(f"unsupported database {dialect!r}; use SQLite or PostgreSQL")

    # -- writing -------------------------------------------------------------------------------

    def save_many(self, records: Sequence[AssessmentRecord], *, atomic: bool = False) -> Future[list[SaveResult]]:
        """Queues the records and returns at once; the future resolves after the commit, in record order.

        Records are judged as if saved one after another, after every earlier submission: a key
        already stored (or earlier in the same submission) is not written again and its result
        carries the stored assessment, with conflict=True when the content hash differs.

        With `atomic`, a submission in which any record would be a conflict is written not at
        all (other submissions in the same commit are unaffected). Its results still come back in
        record order: the conflicting ones with conflict=True and the stored (or earlier) assessment,
        the others with created=False, conflict=False and their assessment, the stored one for a
        retry of a stored key, else their own, unstored one. So `created` is False for every
        record of a submission that wrote nothing; a rolled-back one also has a conflict.
        """
        future: Future[list[SaveResult]] = Future()
        if not records:
            future.set_result([])
            return future
        with self._lock:
            if self._closed:
                future.set_exception(Unavailable("the assessment store is closed"))
                return future
            self._queue.put(_Submission(list(records), future, atomic))
        return future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            size = len(first.records)
            while size < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
                size += len(nxt.records)
            try:
                self._write(batch)
            except BaseException as err:  # a bug here must not leave callers waiting forever
                log.exception("assessment writer failed on a batch of %d submissions", len(batch))
                for s in batch:
                    if not s.future.done():
                        s.future.set_exception(err)
        self._drop_connection()

    def _write(self, batch: list[_Submission]) -> None:
        ready: list[_Submission] = []
        for s in batch:
            if not s.future.set_running_or_notify_cancel():
                continue  # the caller gave up before we started; it has no answer to wait for
            try:
                s.rows = [_row(r) for r in s.records]
            except Exception as err:
                s.future.set_exception(err)
                continue
            ready.append(s)
        if not ready:
            return
        try:
            results, balances = self._transaction(ready)
        except Exception:
            log.warning("batch of %d submissions failed; retrying each on its own", len(ready), exc_info=True)
            self._drop_connection()
            for s in ready:
                try:
                    (result,), balances = self._transaction([s])
                except Exception as err:
                    log.warning("storing a submission of %d assessments failed: %s", len(s.records), type(err).__name__)
                    self._drop_connection()
                    s.future.set_exception(err)
                else:
                    self._notify(balances)
                    s.future.set_result(result)
            return
        # Before the callers hear of the commit, so a caller's next screening sees its own draws.
        self._notify(balances)
        for s, result in zip(ready, results, strict=True):
            s.future.set_result(result)

    def _notify(self, balances: Mapping[LineKey, LineBalance]) -> None:
        if not balances or self._on_balances is None:
            return
        try:
            self._on_balances(balances)
        except Exception:  # the draws are committed; a listener's failure must not fail their callers
            log.exception("the balances listener failed on %d goods lines", len(balances))

    def _connection(self) -> sa.Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._drop_connection()
            self._conn = self._engine.connect().execution_options(sqlite_immediate=True)
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.debug("closing the writer connection failed", exc_info=True)

    def _transaction(
        self, submissions: list[_Submission]
    ) -> tuple[list[list[SaveResult]], Mapping[LineKey, LineBalance]]:
        """Writes the submissions in one transaction, with the results of writing them one after another.

        Also returns the new totals of the permit lines the ledger drew from or gave back to.
        """
        conn = self._connection()
        with conn.begin():
            atomic_keys = {_key(r) for s in submissions if s.atomic for r in s.records}
            # Rows stored before this batch, for the keys whose conflicts decide an atomic submission.
            stored = self._stored(conn, list(atomic_keys), must_exist=False) if atomic_keys else {}
            planned: dict[_Key, tuple[AssessmentRecord, _Row]] = {}  # first writer of each key in this batch
            rolled_back: dict[int, list[SaveResult]] = {}
            for n, s in enumerate(submissions):
                if s.atomic:
                    refused = self._refused(s, stored, planned)
                    if refused is not None:
                        rolled_back[n] = refused
                        continue
                for record, row in zip(s.records, s.rows, strict=True):
                    key = _key(record)
                    if key not in stored:
                        planned.setdefault(key, (record, row))
            settlement = self._settle_claims(conn, planned)
            inserted: set[_Key] = set()
            if planned:
                inserted = {(r[0], r[1]) for r in conn.execute(self._insert, [row for _, row in planned.values()])}
            missed = [k for k in planned if k not in inserted]
            if not atomic_keys.isdisjoint(missed):
                # The check above did not see that row; alone, in a new transaction, it will.
                raise _AtomicRace(f"{len(missed)} keys stored by another writer meanwhile, e.g. {missed[0]}")
            lost = settlement.settled.intersection(missed)
            if lost:
                # Another writer stored one of these keys after the ledger looked, so the draws settled for
                # it would come on top of that writer's. Rolling back undoes them; the retry of each
                # submission on its own then finds the stored row and settles nothing for it.
                raise _LedgerRace(f"{len(lost)} settled keys stored by another writer meanwhile, e.g. {min(lost)}")
            stored.update(self._stored(conn, missed, must_exist=True))
            # In key order, so two writers naming the same entities lock them in the same order.
            entity_rows = [e for k in inserted for e in _entity_rows(planned[k][0].declaration)]
            entity_rows.sort(key=lambda e: (e["kind"], e["entity_key"], e["declaration_id"]))
            self._insert_entities.execute(conn, entity_rows)
            created: set[_Key] = set()
            out: list[list[SaveResult]] = []
            for n, s in enumerate(submissions):
                if n in rolled_back:
                    out.append(rolled_back[n])
                    continue
                results: list[SaveResult] = []
                for record in s.records:
                    key = _key(record)
                    if key in inserted:
                        if key not in created:
                            created.add(key)
                            # The planned record: its assessment is the stored one, flagged by the ledger if it refused.
                            results.append(SaveResult(planned[key][0].assessment, created=True, conflict=False))
                        else:  # a second copy in this batch: as if it came after the first
                            original = planned[key][0]
                            conflict = original.content_hash != record.content_hash
                            results.append(SaveResult(original.assessment, created=False, conflict=conflict))
                    else:
                        content_hash, earlier = stored[key]
                        conflict = content_hash != record.content_hash
                        results.append(SaveResult(earlier, created=False, conflict=conflict))
                out.append(results)
        if rolled_back:
            log.info(
                "%d atomic submissions with conflicts were not written: %s",
                len(rolled_back),
                ", ".join(f"{len(submissions[n].records)} records" for n in rolled_back),
            )
        return out, settlement.balances

    def _settle_claims(self, conn: sa.Connection, planned: dict[_Key, tuple[AssessmentRecord, _Row]]) -> Settlement:
        """Settles the permit claims of the records about to be inserted; swaps in the flagged assessments.

        Runs before the insert because a refusal changes the assessment that is stored. Records without a
        claim and at version 1 (most filings) cost nothing here.
        """
        candidates = [record for record, _ in planned.values() if needs_ledger(record)]
        if not candidates:
            return Settlement()
        settlement = settle_claims(conn, candidates, settle=self._settle, now=datetime.now(UTC))
        for key, flagged in settlement.assessments.items():
            record = replace(planned[key][0], assessment=flagged)
            planned[key] = (record, _row(record))
        return settlement

    @staticmethod
    def _refused(
        submission: _Submission,
        stored: dict[_Key, tuple[str, Assessment]],
        planned: dict[_Key, tuple[AssessmentRecord, _Row]],
    ) -> list[SaveResult] | None:
        """The results of an atomic submission that would hold a conflict (it is then not written), else None.

        `stored` holds the rows from before this batch, `planned` the records earlier submissions in it write.
        """
        own: dict[_Key, AssessmentRecord] = {}
        results: list[SaveResult] = []
        any_conflict = False
        for record in submission.records:
            key = _key(record)
            if key in stored:
                content_hash, earlier = stored[key]
            elif key in planned or key in own:
                first = planned[key][0] if key in planned else own[key]
                content_hash, earlier = first.content_hash, first.assessment
            else:
                own[key] = record
                results.append(SaveResult(record.assessment, created=False, conflict=False))
                continue
            conflict = content_hash != record.content_hash
            any_conflict = any_conflict or conflict
            results.append(SaveResult(earlier, created=False, conflict=conflict))
        return results if any_conflict else None

    @staticmethod
    def _stored(conn: sa.Connection, keys: Sequence[_Key], *, must_exist: bool) -> dict[_Key, tuple[str, Assessment]]:
        """(content hash, assessment) of the stored rows with these keys."""
        t = assessments
        wanted = set(keys)
        found: dict[_Key, tuple[str, Assessment]] = {}
        # By declaration id, the unique index's first column: SQLite answers a (id, version) IN list
        # with a scan of the whole table. A declaration's other versions are few; they are skipped here.
        for chunk in chunks(sorted({declaration_id for declaration_id, _ in wanted})):
            query = sa.select(t.c.declaration_id, t.c.declaration_version, t.c.content_hash, t.c.assessment).where(
                t.c.declaration_id.in_(chunk)
            )
            for declaration_id, version, content_hash, document in conn.execute(query):
                if (declaration_id, version) in wanted:
                    found[(declaration_id, version)] = (content_hash, codec.assessment_from_dict(document))
        missing = [k for k in keys if k not in found] if must_exist else []
        if missing:
            # ON CONFLICT skipped these, so a row existed; if it is gone now something else deleted it.
            raise RuntimeError(f"{len(missing)} assessments neither inserted nor found, e.g. {missing[0]}")
        return found

    # -- reading (short connections of their own, never the writer's) ---------------------------

    def get(self, declaration_id: str, version: int) -> Assessment | None:
        t = assessments
        query = sa.select(t.c.assessment).where(
            t.c.declaration_id == declaration_id, t.c.declaration_version == version
        )
        with self._engine.connect() as conn:
            document = conn.execute(query).scalar_one_or_none()
        return None if document is None else codec.assessment_from_dict(document)

    def history(self, declaration_id: str) -> list[Assessment]:
        """Every stored version of one declaration, oldest version first."""
        t = assessments
        query = sa.select(t.c.assessment).where(t.c.declaration_id == declaration_id).order_by(t.c.declaration_version)
        with self._engine.connect() as conn:
            return [codec.assessment_from_dict(d) for d in conn.execute(query).scalars()]

    def entity_history(self) -> dict[str, dict[str, tuple[datetime, int]]]:
        """Entity kind -> key -> (earliest lodgement time, declarations): warms the in-memory EntityHistory.

        The same definition as training's features: filings are declarations (not versions) and
        time is lodgement time; declarations without one are left out.
        """
        t = filing_entities
        query = sa.select(t.c.kind, t.c.entity_key, sa.func.min(t.c.lodged_at), sa.func.count()).group_by(
            t.c.kind, t.c.entity_key
        )
        out: dict[str, dict[str, tuple[datetime, int]]] = {}
        with self._engine.connect() as conn:
            for kind, key, first_seen, count in conn.execute(query):
                out.setdefault(kind, {})[key] = (first_seen, count)
        return out

    def latest_filings(
        self, *, since: datetime | None = None, until: datetime | None = None, batch: int = 1000
    ) -> Iterator[tuple[Declaration, Assessment]]:
        """The newest stored version of every declaration lodged in [since, until), in lodgement order.

        Streams in batches on a connection of its own, so an export of millions of filings runs
        in bounded memory and never holds the writer up.
        """
        t = assessments
        newest = (
            sa.select(t.c.declaration_id, sa.func.max(t.c.declaration_version).label("version"))
            .group_by(t.c.declaration_id)
            .subquery()
        )
        query = (
            sa.select(t.c.declaration, t.c.assessment)
            .join(
                newest,
                (t.c.declaration_id == newest.c.declaration_id) & (t.c.declaration_version == newest.c.version),
            )
            .where(t.c.lodged_at.is_not(None))
            .order_by(t.c.lodged_at, t.c.declaration_id)
        )
        if since is not None:
            query = query.where(t.c.lodged_at >= since)
        if until is not None:
            query = query.where(t.c.lodged_at < until)
        with self._engine.connect() as conn:
            result = conn.execution_options(yield_per=batch).execute(query)
            for declaration, assessment in result:
                yield codec.declaration_from_dict(declaration), codec.assessment_from_dict(assessment)

    def count(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(assessments)).scalar_one())

    def ping(self) -> bool:
        """True when the writer runs and the database answers; for health checks."""
        if self._closed or not self._writer.is_alive():
            return False
        try:
            with self._engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception:
            log.warning("assessment store ping failed", exc_info=True)
            return False
        return True

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Writes what is queued, stops the writer and releases the engine; safe to call twice."""
        with self._lock:
            first_call = not self._closed
            self._closed = True
            if first_call:
                self._queue.put(None)
        if threading.current_thread() is not self._writer:
            self._writer.join()
        if first_call:
            self._engine.dispose()

    def __enter__(self) -> SqlAssessmentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
