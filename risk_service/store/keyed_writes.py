"""Idempotent writes keyed by (id, version): a retry gets the stored row, a changed re-use is a conflict.

Shared by the stores that keep one assessment per filing version (declarations, cargo reports).
Records are judged as if saved one after another: a key already stored, or earlier in the same
batch, is not written again, and its result carries the stored assessment with conflict=True when
the content hash differs. An atomic submission holding any conflict is written not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from risk_service.store.db import chunks
from risk_service.store.group_commit import Row, Submission

Key = tuple[str, int]
A = TypeVar("A")  # the assessment type stored with a record
A_co = TypeVar("A_co", covariant=True)
T = TypeVar("T")  # the result of one record
R = TypeVar("R", bound="KeyedRecord[Any]")


class KeyedRecord(Protocol[A_co]):
    @property
    def content_hash(self) -> str: ...

    @property
    def assessment(self) -> A_co: ...


Stored = dict[Key, tuple[str, Any]]  # key -> (content hash, stored assessment)
MakeResult = Callable[[Any, bool, bool], T]  # (assessment, created, conflict) -> result


@dataclass
class WritePlan(Generic[R, T]):
    """What one batch writes: the first record of each new key, and the atomic submissions refused whole."""

    planned: dict[Key, tuple[R, Row]]
    rolled_back: dict[int, list[T]]
    atomic_keys: set[Key]


def plan_writes(
    submissions: Sequence[Submission[R, T]],
    stored: Stored,
    key_of: Callable[[R], Key],
    result: MakeResult[T],
) -> WritePlan[R, T]:
    """`stored` must hold the stored rows of every key of the atomic submissions (see stored_rows)."""
    planned: dict[Key, tuple[R, Row]] = {}
    rolled_back: dict[int, list[T]] = {}
    for n, s in enumerate(submissions):
        if s.atomic:
            refused = _refused(s.records, stored, planned, key_of, result)
            if refused is not None:
                rolled_back[n] = refused
                continue
        for record, row in zip(s.records, s.rows, strict=True):
            key = key_of(record)
            if key not in stored:
                planned.setdefault(key, (record, row))
    # Submission order: the ledger settles permit claims in this order (first filed, first served).
    return WritePlan(planned, rolled_back, set(atomic_keys(submissions, key_of)))


def insert_rows(plan: WritePlan[R, T]) -> list[Row]:
    """The planned rows in key order: two writers (two server processes) inserting the same keys lock
    them in the same order, so PostgreSQL never has to break a deadlock between them."""
    return [row for _, (_, row) in sorted(plan.planned.items())]


def atomic_keys(submissions: Sequence[Submission[R, T]], key_of: Callable[[R], Key]) -> list[Key]:
    return sorted({key_of(r) for s in submissions if s.atomic for r in s.records})


def collect_results(
    submissions: Sequence[Submission[R, T]],
    plan: WritePlan[R, T],
    inserted: set[Key],
    stored: Stored,
    key_of: Callable[[R], Key],
    result: MakeResult[T],
) -> list[list[T]]:
    """Each submission's results in record order, after the planned rows were inserted (`inserted` made it)."""
    created: set[Key] = set()
    out: list[list[T]] = []
    for n, s in enumerate(submissions):
        if n in plan.rolled_back:
            out.append(plan.rolled_back[n])
            continue
        results: list[T] = []
        for record in s.records:
            key = key_of(record)
            if key in inserted:
                original = plan.planned[key][0]
                if key not in created:
                    created.add(key)
                    # The planned record: its assessment is the one stored (a store may have replaced it).
                    results.append(result(original.assessment, True, False))
                else:  # a second copy in this batch: as if it came after the first
                    results.append(result(original.assessment, False, original.content_hash != record.content_hash))
            else:
                content_hash, earlier = stored[key]
                results.append(result(earlier, False, content_hash != record.content_hash))
        out.append(results)
    return out


def idempotent_insert(
    table: sa.Table, key: Sequence[sa.Column[Any]], documents: Sequence[str], dialect: str
) -> sa.Insert:
    """INSERT ... ON CONFLICT (key) DO NOTHING RETURNING key; each JSON document is bound as `<name>_json` text.

    The JSON is made once per record by the caller, which is cheaper on the writer's hot path than
    letting the column type encode it.
    """
    texts = {name: sa.bindparam(f"{name}_json", type_=sa.Text) for name in documents}
    if dialect == "postgresql":
        pg = postgresql.insert(table).values({n: sa.cast(v, postgresql.JSONB) for n, v in texts.items()})
        return pg.on_conflict_do_nothing(index_elements=list(key)).returning(*key)
    if dialect == "sqlite":  # JSON is plain text there
        lite = sqlite.insert(table).values(texts)
        return lite.on_conflict_do_nothing(index_elements=list(key)).returning(*key)
    raise ValueError(f"unsupported database {dialect!r}; use SQLite or PostgreSQL")


def stored_rows(
    conn: sa.Connection,
    id_column: sa.Column[str],
    version_column: sa.Column[int],
    hash_column: sa.Column[str],
    document_column: sa.Column[Any],
    keys: Sequence[Key],
    decode: Callable[[Any], Any],
    *,
    must_exist: bool,
) -> Stored:
    """(content hash, assessment) of the stored rows with these keys.

    Looked up by id, the unique index's first column: SQLite answers an (id, version) IN list with a
    scan of the whole table. A filing's other versions are few; they are skipped here.
    """
    wanted = set(keys)
    found: Stored = {}
    for chunk in chunks(sorted({filing_id for filing_id, _ in wanted})):
        query = sa.select(id_column, version_column, hash_column, document_column).where(id_column.in_(chunk))
        for filing_id, version, content_hash, document in conn.execute(query):
            if (filing_id, version) in wanted:
                found[(filing_id, version)] = (content_hash, decode(document))
    missing = [k for k in keys if k not in found] if must_exist else []
    if missing:
        # ON CONFLICT skipped these, so a row existed; if it is gone now something else deleted it.
        raise RuntimeError(f"{len(missing)} assessments neither inserted nor found, e.g. {missing[0]}")
    return found


def _refused(
    records: Sequence[R],
    stored: Stored,
    planned: dict[Key, tuple[R, Row]],
    key_of: Callable[[R], Key],
    result: MakeResult[T],
) -> list[T] | None:
    """The results of an atomic submission that would hold a conflict (it is then not written), else None.

    `stored` holds the rows from before this batch, `planned` the records earlier submissions in it write.
    """
    own: dict[Key, R] = {}
    results: list[T] = []
    any_conflict = False
    for record in records:
        key = key_of(record)
        if key in stored:
            content_hash, earlier = stored[key]
        elif key in planned or key in own:
            first = planned[key][0] if key in planned else own[key]
            content_hash, earlier = first.content_hash, first.assessment
        else:
            own[key] = record
            results.append(result(record.assessment, False, False))
            continue
        conflict = content_hash != record.content_hash
        any_conflict = any_conflict or conflict
        results.append(result(earlier, False, conflict))
    return results if any_conflict else None
