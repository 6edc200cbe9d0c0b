"""Group commit: one writer thread writes whatever callers have queued in one transaction.

One commit (one fsync) then serves many calls, which is what lets unary scoring keep up on
SQLite. Stores supply how a record becomes a row and what a batch's transaction does.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, Self, TypeVar

import sqlalchemy as sa

from risk_service.domain.errors import Unavailable

log = logging.getLogger(__name__)

R = TypeVar("R")  # a record to store
T = TypeVar("T")  # the result of storing one record
Row = dict[str, Any]


@dataclass(slots=True)
class Submission(Generic[R, T]):
    """One call's records, answered through its future; an atomic one is written whole or not at all."""

    records: Sequence[R]
    future: Future[list[T]]
    atomic: bool = False
    rows: list[Row] = field(default_factory=list)


AfterCommit = Callable[[], None]
# Writes the submissions in the open transaction; returns each submission's results, and what to
# run after the commit and before any caller hears of it (or None).
Transaction = Callable[[sa.Connection, list[Submission[R, T]]], tuple[list[list[T]], AfterCommit | None]]


class GroupCommitWriter(Generic[R, T]):
    """Queues submissions and writes them from one thread, about `max_batch` records per transaction.

    If a batch's transaction fails, each submission is retried in a transaction of its own, so one
    bad submission fails only its own future.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        name: str,
        max_batch: int,
        prepare: Callable[[R], Row],
        transaction: Transaction[R, T],
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._engine = engine
        self._name = name
        self._max_batch = max_batch
        self._prepare = prepare
        self._transaction = transaction
        self._queue: queue.SimpleQueue[Submission[R, T] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._conn: sa.Connection | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, records: Sequence[R], *, atomic: bool = False) -> Future[list[T]]:
        """Queues the records and returns at once; the future resolves after the commit."""
        future: Future[list[T]] = Future()
        if not records:
            future.set_result([])
            return future
        with self._lock:
            if self._closed:
                future.set_exception(Unavailable(f"the {self._name} is closed"))
                return future
            self._queue.put(Submission(list(records), future, atomic))
        return future

    @property
    def alive(self) -> bool:
        return not self._closed and self._thread.is_alive()

    def close(self) -> bool:
        """Writes what is queued and stops the thread; True on the first call."""
        with self._lock:
            first_call = not self._closed
            self._closed = True
            if first_call:
                self._queue.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join()
        return first_call

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
                log.exception("%s failed on a batch of %d submissions", self._name, len(batch))
                for s in batch:
                    if not s.future.done():
                        s.future.set_exception(err)
        self._drop_connection()

    def _write(self, batch: list[Submission[R, T]]) -> None:
        ready: list[Submission[R, T]] = []
        for s in batch:
            if not s.future.set_running_or_notify_cancel():
                continue  # the caller gave up before we started; it has no answer to wait for
            try:
                s.rows = [self._prepare(r) for r in s.records]
            except Exception as err:
                s.future.set_exception(err)
                continue
            ready.append(s)
        if not ready:
            return
        try:
            results, after = self._commit(ready)
        except Exception:
            log.warning(
                "%s: batch of %d submissions failed; retrying each on its own", self._name, len(ready), exc_info=True
            )
            self._drop_connection()
            for s in ready:
                try:
                    (result,), after = self._commit([s])
                except Exception as err:
                    log.warning(
                        "%s: a submission of %d records failed: %s", self._name, len(s.records), type(err).__name__
                    )
                    self._drop_connection()
                    s.future.set_exception(err)
                else:
                    self._after(after)
                    s.future.set_result(result)
            return
        self._after(after)  # before the callers hear of the commit
        for s, result in zip(ready, results, strict=True):
            s.future.set_result(result)

    def _commit(self, submissions: list[Submission[R, T]]) -> tuple[list[list[T]], AfterCommit | None]:
        conn = self._connection()
        with conn.begin():
            return self._transaction(conn, submissions)

    def _after(self, after: AfterCommit | None) -> None:
        if after is None:
            return
        try:
            after()
        except Exception:  # the records are committed; a listener's failure must not fail their callers
            log.exception("%s: the after-commit step failed", self._name)

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


class WritingStore:
    """Health and lifecycle of a store that writes through a GroupCommitWriter on its own engine."""

    _engine: sa.Engine
    _writer: GroupCommitWriter[Any, Any]

    def ping(self) -> bool:
        """True when the writer runs and the database answers; for health checks."""
        if not self._writer.alive:
            return False
        try:
            with self._engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception:
            log.warning("%s ping failed", type(self).__name__, exc_info=True)
            return False
        return True

    def close(self) -> None:
        """Writes what is queued, stops the writer and releases the engine; safe to call twice."""
        if self._writer.close():
            self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
