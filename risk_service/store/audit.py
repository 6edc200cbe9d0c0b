"""The audit trail: every assessment, re-assessment, permit change and officer's action, chained by hashes.

Each entry holds the SHA-256 of the record as stored (canonical JSON: sorted keys, no spaces) and
the hash of the entry before it; its own hash covers both with its kind, subject, actor and time.
Entries are appended in the same transaction as the records they describe, after every other lock
that transaction takes (the chain head is the last lock, so writers cannot deadlock on it).
`verify` walks the chain: an entry changed, removed or inserted breaks it, and a record changed
after it was written no longer matches its entry's payload hash.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from risk_service.store.tables import (
    assessments,
    audit_log,
    cargo_assessments,
    case_events,
    cases,
    permit_changes,
    reassessments,
)

GENESIS = "0" * 64  # the prev_hash of the first entry
SCREENING = "screening"  # the actor of assessments: the service's rules and model
_CHAIN_LOCK = 0x7269736B61756474  # pg_advisory_xact_lock key of the chain head ("riskaudt")


class AuditKind(enum.StrEnum):
    ASSESSMENT = "assessment"
    REASSESSMENT = "reassessment"
    CARGO_ASSESSMENT = "cargo_assessment"
    PERMIT_CHANGE = "permit_change"
    CASE_EVENT = "case_event"  # an officer's action on a case: claim, release, result, override, close


@dataclass(frozen=True, slots=True)
class AuditEntry:
    kind: AuditKind
    subject: str  # the record's id
    actor: str
    payload_sha256: str


def canonical_sha256(document: Any) -> str:
    """SHA-256 of a JSON document in canonical form; the same for the dict written and the one read back.

    Whole floats become integers first: PostgreSQL's JSONB hands 1e16 back as 10000000000000000
    and -0.0 as 0, and the hash must not read that as tampering.
    """
    text = json.dumps(
        _whole_numbers(document), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _whole_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        # Through the shortest repr, as JSONB keeps it: 2.0**60 reads back as 1152921504606847000.
        return int(Decimal(repr(value)))
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_whole_numbers(v) for v in value]
    return value


def entry(kind: AuditKind, subject: str, actor: str, stored_json: str) -> AuditEntry:
    """The entry of a record about to be stored as `stored_json` (the exact text the store writes)."""
    return AuditEntry(kind, subject, actor, canonical_sha256(json.loads(stored_json)))


def reassessment_entries(reassessed: Sequence[Any]) -> list[AuditEntry]:
    """Entries of links.Reassessed records (their documents as the link writer stores them)."""
    unique = {x.assessment_id: x for x in reassessed}
    return [
        AuditEntry(AuditKind.REASSESSMENT, x.assessment_id, f"re-assessment: {x.trigger}", canonical_sha256(x.document))
        for x in unique.values()
    ]


def entry_hash(prev_hash: str, recorded_at: datetime, e: AuditEntry) -> str:
    fields = (prev_hash, recorded_at.astimezone(UTC).isoformat(), e.kind.value, e.subject, e.actor, e.payload_sha256)
    return hashlib.sha256("\x1f".join(fields).encode("utf-8")).hexdigest()


def append(conn: sa.Connection, entries: Sequence[AuditEntry]) -> None:
    """Chains `entries` after the current head, in the caller's transaction; call it last in that transaction."""
    if not entries:
        return
    if conn.dialect.name == "postgresql":
        # One appender at a time, until commit: the head read here stays the head. An advisory lock,
        # so a role granted only INSERT and SELECT on the log (the natural hardening) can append.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:audit_chain)"), {"audit_chain": _CHAIN_LOCK})
    # On SQLite the caller's transaction has written already, so it holds the database's write lock.
    t = audit_log
    head = conn.execute(sa.select(t.c.entry_hash).order_by(t.c.seq.desc()).limit(1)).scalar_one_or_none()
    previous = head or GENESIS
    now = datetime.now(UTC)  # microseconds: what both databases keep, so the hash survives the round trip
    rows = []
    for e in entries:
        digest = entry_hash(previous, now, e)
        rows.append(
            {
                "recorded_at": now,
                "kind": e.kind.value,
                "subject": e.subject,
                "actor": e.actor,
                "payload_sha256": e.payload_sha256,
                "prev_hash": previous,
                "entry_hash": digest,
            }
        )
        previous = digest
    conn.execute(sa.insert(t), rows)


@dataclass(frozen=True, slots=True)
class AuditProblem:
    seq: int | None  # the entry; None for a record the trail vouches for only through its entries
    message: str

    def __str__(self) -> str:
        return self.message if self.seq is None else f"entry {self.seq}: {self.message}"


@dataclass(frozen=True)
class AuditReport:
    entries: int
    first: datetime | None
    last: datetime | None
    problems: Sequence[AuditProblem]

    @property
    def intact(self) -> bool:
        return not self.problems


_KINDS = frozenset(k.value for k in AuditKind)
# Where each kind's record lives and how its stored document is rebuilt for the payload hash.
_RECORDS: Mapping[AuditKind, tuple[sa.Table, str]] = {
    AuditKind.ASSESSMENT: (assessments, "assessment_id"),
    AuditKind.REASSESSMENT: (reassessments, "assessment_id"),
    AuditKind.CARGO_ASSESSMENT: (cargo_assessments, "assessment_id"),
    AuditKind.PERMIT_CHANGE: (permit_changes, "request_id"),
    AuditKind.CASE_EVENT: (case_events, "event_id"),
}


# Only what the payload hash covers is read (the filed documents are large).
_HASHED_COLUMNS: Mapping[AuditKind, tuple[str, ...]] = {
    AuditKind.ASSESSMENT: ("assessment",),
    AuditKind.REASSESSMENT: ("assessment",),
    AuditKind.CARGO_ASSESSMENT: ("assessment",),
    AuditKind.PERMIT_CHANGE: ("permit", "action", "actor", "reason", "changed_at"),
    AuditKind.CASE_EVENT: ("case_id", "case_version", "action", "actor", "occurred_at", "detail", "case_state"),
}


def permit_change_document(row: Mapping[Any, Any]) -> dict[str, Any]:
    """What a permit change entry vouches for: the permit as changed, the action, who, why and when."""
    return {
        "permit": row["permit"],
        "action": int(row["action"]),
        "actor": row["actor"],
        "reason": row["reason"],
        "changed_at": row["changed_at"].astimezone(UTC).isoformat(),
    }


def case_event_document(row: Mapping[Any, Any]) -> dict[str, Any]:
    """What a case event's entry vouches for: the action, who, when, and the case as it left it."""
    return {
        "case_id": row["case_id"],
        "case_version": int(row["case_version"]),
        "action": int(row["action"]),
        "actor": row["actor"],
        "occurred_at": row["occurred_at"].astimezone(UTC).isoformat(),
        "detail": row["detail"],
        "case_state": row["case_state"],
    }


def _hashed_document(kind: AuditKind, record: Mapping[Any, Any]) -> Any:
    if kind == AuditKind.PERMIT_CHANGE:
        return permit_change_document(record)
    if kind == AuditKind.CASE_EVENT:
        return case_event_document(record)
    return record["assessment"]


def verify(engine: sa.Engine, *, batch: int = 1000, max_problems: int = 20) -> AuditReport:
    """Walks the whole chain in order; reports the first `max_problems` problems."""
    problems: list[AuditProblem] = []
    count, first, last = 0, None, None
    previous = GENESIS
    with engine.connect() as conn:
        for chunk in _chunks(conn, batch):
            for row in chunk:
                count += 1
                first = first or row.recorded_at
                last = row.recorded_at
                if row.kind not in _KINDS:
                    problems.append(AuditProblem(row.seq, f"has a kind the service never writes ({row.kind[:24]!r})"))
                    previous = row.entry_hash
                    continue
                e = AuditEntry(AuditKind(row.kind), row.subject, row.actor, row.payload_sha256)
                if row.prev_hash != previous:
                    problems.append(AuditProblem(row.seq, "does not follow the entry before it (removed or inserted)"))
                if entry_hash(row.prev_hash, row.recorded_at, e) != row.entry_hash:
                    problems.append(AuditProblem(row.seq, "was changed after it was written (its hash differs)"))
                previous = row.entry_hash
            problems.extend(_stale_records(conn, chunk))
            if len(problems) >= max_problems:
                break
        else:
            problems.extend(itertools.islice(_cases_unlike_their_events(conn, batch), max_problems))
    return AuditReport(count, first, last, problems[:max_problems])


def _cases_unlike_their_events(conn: sa.Connection, batch: int) -> Iterator[AuditProblem]:
    """Cases whose result or override is not what their last recorded event left.

    Only officers' actions set those, and each action's event (hashed into the chain) keeps the case as
    it left it; labels and rule statistics read the case row, so an edit there must show here too.
    """
    c, e = cases.c, case_events.c
    after = ""
    while True:
        rows = conn.execute(
            sa.select(c.case_id, c.result, c.override).where(c.case_id > after).order_by(c.case_id).limit(batch)
        ).all()
        if not rows:
            return
        after = rows[-1].case_id
        newest: dict[str, tuple[int, Any]] = {}
        events = sa.select(e.case_id, e.case_version, e.case_state).where(e.case_id.in_([r.case_id for r in rows]))
        for case_id, version, state in conn.execute(events):
            if case_id not in newest or version > newest[case_id][0]:
                newest[case_id] = (version, state)
        for row in rows:
            state = newest.get(row.case_id, (0, {}))[1]
            for field in ("result", "override"):
                if canonical_sha256(row._mapping[field]) != canonical_sha256(state.get(field)):
                    yield AuditProblem(
                        None,
                        f"case {row.case_id}: its {field} is not what its last recorded action left "
                        "(changed outside the service)",
                    )


def _chunks(conn: sa.Connection, batch: int) -> Iterator[list[Any]]:
    t = audit_log
    after = 0
    while True:
        rows = conn.execute(sa.select(t).where(t.c.seq > after).order_by(t.c.seq).limit(batch)).all()
        if not rows:
            return
        yield list(rows)
        after = rows[-1].seq


def _stale_records(conn: sa.Connection, rows: Sequence[Any]) -> list[AuditProblem]:
    """Entries whose record is gone or no longer hashes to what the entry recorded."""
    out: list[AuditProblem] = []
    by_kind: dict[AuditKind, list[Any]] = {}
    for row in rows:
        if row.kind in _KINDS:
            by_kind.setdefault(AuditKind(row.kind), []).append(row)
    for kind, entries in by_kind.items():
        table, key = _RECORDS[kind]
        column = table.c[key]
        hashed = _HASHED_COLUMNS[kind]
        query = sa.select(column, *(table.c[c] for c in hashed)).where(column.in_([e.subject for e in entries]))
        found = {r._mapping[key]: r._mapping for r in conn.execute(query)}
        for e in entries:
            record = found.get(e.subject)
            if record is None:
                out.append(AuditProblem(e.seq, f"its {kind.value} {e.subject} is no longer stored"))
                continue
            document = _hashed_document(kind, record)
            if canonical_sha256(document) != e.payload_sha256:
                out.append(AuditProblem(e.seq, f"its {kind.value} {e.subject} was changed after it was stored"))
    return sorted(out, key=lambda p: p.seq or 0)
