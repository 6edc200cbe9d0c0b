"""Cases on SQLite or PostgreSQL: opened by the writers with each assessment, changed by officers under a version.

The assessment and cargo writers call `open_cases` inside the transaction that stores a new
assessment, so a non-GREEN declaration never exists without its case. Officers' actions go through
`SqlCaseStore.act`: the case row is locked (FOR UPDATE; SQLite's BEGIN IMMEDIATE), its version
checked, the transition applied, and the event and its audit entry written in one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from risk_service.domain.assessment import Assessment, Channel
from risk_service.domain.declaration import Declaration
from risk_service.domain.errors import Aborted, NotFound
from risk_service.domain.permits.ledger import DrawRecord
from risk_service.domain.review.cases import Case, CaseAction, CaseEvent, CaseStatus, InspectionOutcome
from risk_service.domain.review.ports import (
    CaseFilter,
    CasePosition,
    CaseTransition,
    ImporterRecord,
    LabelledFiling,
    PastFilingRecord,
)
from risk_service.store import audit, codec, links
from risk_service.store.audit import AuditKind
from risk_service.store.case_codec import case_from_row, case_to_dict, case_to_row, result_from_dict
from risk_service.store.db import chunks, create_engine
from risk_service.store.tables import assessments, case_events, cases, permit_draws, reassessments

# -- opening and refreshing cases (inside the writers' transactions) -------------------------------


def revenue_at_stake(d: Declaration) -> float:
    """Duties and taxes declared: what an undervaluation or misclassification would cost."""
    return sum(item.total_duties_and_taxes for item in d.items)


def opening_row(d: Declaration, a: Assessment) -> dict[str, Any]:
    """The cases row a new assessment would open (or refresh an open case with)."""
    return {
        "case_id": a.declaration_id,
        "declaration_version": a.declaration_version,
        "assessment_id": a.assessment_id,
        "status": int(CaseStatus.OPEN),
        "version": 1,
        "channel": int(a.channel),
        "risk_score": a.risk_score,
        "revenue_at_stake": revenue_at_stake(d),
        "random_control": a.random_control,
        "customs_office": d.customs_office,
        "importer_id": d.importer.id,
        "assigned_officer": "",
        "opened_at": a.assessment_time,
        "updated_at": a.assessment_time,
        "closed_at": None,
        "result": None,
        "override": None,
    }


_REFRESHED = ("declaration_version", "assessment_id", "channel", "risk_score", "revenue_at_stake", "random_control")
_REFRESHED_TOO = ("customs_office", "importer_id", "updated_at")


_UPSERTS: dict[str, Any] = {}


def _upsert(dialect: sa.Dialect) -> Any:
    """The writers' upsert of cases, built once per dialect: building it per call cost about 1 ms."""
    statement = _UPSERTS.get(dialect.name)
    if statement is None:
        statement = _UPSERTS[dialect.name] = _build_upsert(dialect)
    return statement


def _build_upsert(dialect: sa.Dialect) -> Any:
    c = cases.c
    insert = postgresql.insert(cases) if dialect.name == "postgresql" else sqlite.insert(cases)
    excluded = insert.excluded
    closed = c.status == int(CaseStatus.CLOSED)
    return insert.on_conflict_do_update(
        index_elements=[c.case_id],
        set_={
            **{name: excluded[name] for name in (*_REFRESHED, *_REFRESHED_TOO)},
            "version": c.version + 1,
            # New information (an amendment, a linked manifest) on a closed case puts it back in the queue.
            "status": sa.case((closed, int(CaseStatus.OPEN)), else_=c.status),
            "closed_at": sa.case((closed, None), else_=c.closed_at),
            "assigned_officer": sa.case((closed, ""), else_=c.assigned_officer),
        },
        # An older version's (re-)assessment never replaces a newer one's.
        where=c.declaration_version <= excluded.declaration_version,
    )


def open_cases(
    conn: sa.Connection, filed: Sequence[tuple[Declaration, Assessment]], *, reassessed: bool = False
) -> list[audit.AuditEntry]:
    """Opens a case for each non-GREEN assessment and refreshes the case a GREEN one has, if any.

    New information on a closed case (a flagged version, a linked document) reopens it; a GREEN
    assessment closes a case nobody has worked yet (OPEN, no result, no override). Both are case
    events of the service's, whose audit entries this returns for the caller to append (last) in
    the same transaction. Call it in the transaction that stores the assessments.
    """
    if not filed:
        return []
    ordered = sorted(filed, key=lambda f: (f[1].declaration_id, f[1].declaration_version))  # lock order
    flagged = [opening_row(d, a) for d, a in ordered if a.channel != Channel.GREEN]
    # An original version 1 has no case before its own assessment; an amendment or a re-assessment may.
    green = [
        opening_row(d, a)
        for d, a in ordered
        if a.channel == Channel.GREEN and (reassessed or a.declaration_version > 1)
    ]
    if not flagged and not green:
        return []
    # Only a later version or a re-assessment can find a case already there: most writer transactions
    # (first versions) skip this read.
    may_exist = {row["case_id"] for row in (*flagged, *green) if reassessed or row["declaration_version"] > 1}
    before = _statuses(conn, sorted(may_exist)) if may_exist else {}
    if flagged:
        conn.execute(_upsert(conn.dialect), flagged)
    if green:
        conn.execute(_refresh_green, [{f"b_{k}": v for k, v in row.items()} for row in green])
    # Cases whose status the service may have changed: closed ones, unworked ones, and ones this very
    # call opened and then saw a GREEN version of.
    opened_here = {row["case_id"] for row in flagged} - before.keys()
    changing = [i for i, (status, worked) in before.items() if status == CaseStatus.CLOSED or not worked]
    changing += sorted(opened_here & {row["case_id"] for row in green})
    if not changing:
        return []
    entries = []
    for row in conn.execute(sa.select(cases).where(cases.c.case_id.in_(changing))).mappings():
        case = case_from_row(row)
        was = before.get(case.case_id, (CaseStatus.OPEN, False))[0]
        if was == CaseStatus.CLOSED and case.status == CaseStatus.OPEN:
            action = CaseAction.REOPENED
            detail = f"version {case.declaration_version} assessed {case.channel.name}: back in the queue"
        elif was != CaseStatus.CLOSED and case.status == CaseStatus.CLOSED:
            action = CaseAction.CLOSED
            detail = f"version {case.declaration_version} assessed GREEN: nothing left to review"
        else:
            continue
        event = CaseEvent(case.case_id, case.version, action, audit.SCREENING, case.updated_at, detail)
        entries.append(write_event(conn, case, event))
    return entries


def _statuses(conn: sa.Connection, case_ids: Sequence[str]) -> dict[str, tuple[CaseStatus, bool]]:
    """Status of each existing case, and whether an officer has worked it (claimed, result or override)."""
    c = cases.c
    out: dict[str, tuple[CaseStatus, bool]] = {}
    for chunk in chunks(case_ids):
        query = sa.select(c.case_id, c.status, c.result.is_not(None), c.override.is_not(None)).where(
            c.case_id.in_(list(chunk))
        )
        for case_id, status, result, override in conn.execute(query):
            out[case_id] = (CaseStatus(status), status != CaseStatus.OPEN or bool(result) or bool(override))
    return out


def _refresh_green_statement() -> sa.Update:
    c = cases.c
    unworked = sa.and_(c.status == int(CaseStatus.OPEN), c.result.is_(None), c.override.is_(None))
    return (
        sa.update(cases)
        .where(c.case_id == sa.bindparam("b_case_id"))
        .where(c.declaration_version <= sa.bindparam("b_declaration_version"))
        .values(
            {
                **{name: sa.bindparam(f"b_{name}") for name in (*_REFRESHED, *_REFRESHED_TOO)},
                "version": c.version + 1,
                "status": sa.case((unworked, int(CaseStatus.CLOSED)), else_=c.status),
                "closed_at": sa.case((unworked, sa.bindparam("b_updated_at")), else_=c.closed_at),
            }
        )
    )


_refresh_green = _refresh_green_statement()


def write_event(conn: sa.Connection, case: Case, event: CaseEvent) -> audit.AuditEntry:
    """Stores the event with the case as it left it; returns the audit entry that vouches for both."""
    event_id = str(uuid.uuid4())
    row = {
        "event_id": event_id,
        "case_id": case.case_id,
        "case_version": event.case_version,
        "action": int(event.action),
        "actor": event.actor,
        "occurred_at": event.at,
        "detail": event.detail,
        "case_state": case_to_dict(case),
    }
    conn.execute(sa.insert(case_events), [row])
    return audit.AuditEntry(
        AuditKind.CASE_EVENT, event_id, event.actor, audit.canonical_sha256(audit.case_event_document(row))
    )


def open_cases_for_reassessed(conn: sa.Connection, reassessed: Sequence[Assessment]) -> list[audit.AuditEntry]:
    """As open_cases, for declarations re-assessed by a cargo report: their declarations are read back."""
    if not reassessed:
        return []
    t = assessments
    keys = {(a.declaration_id, a.declaration_version) for a in reassessed}
    found: dict[tuple[str, int], Declaration] = {}
    for chunk in chunks(sorted(keys)):
        query = sa.select(t.c.declaration_id, t.c.declaration_version, t.c.declaration).where(
            sa.tuple_(t.c.declaration_id, t.c.declaration_version).in_(list(chunk))
        )
        for declaration_id, version, document in conn.execute(query):
            found[(declaration_id, version)] = codec.declaration_from_dict(document)
    filed = [(found[k], a) for a in reassessed if (k := (a.declaration_id, a.declaration_version)) in found]
    return open_cases(conn, filed, reassessed=True)


def declaration_assessments(conn: sa.Connection, declaration_id: str) -> list[Assessment]:
    """Every assessment of one declaration: each version's, then its re-assessments, in time order."""
    t = assessments
    query = sa.select(t.c.declaration_version, t.c.assessed_at, t.c.assessment).where(
        t.c.declaration_id == declaration_id
    )
    found = [*conn.execute(query), *links.reassessment_documents(conn, links.DECLARATION, declaration_id)]
    return [codec.assessment_from_dict(d) for _, _, d in sorted(found, key=lambda row: (row[0], row[1]))]


# -- the store -------------------------------------------------------------------------------------

_FINDINGS = (int(InspectionOutcome.DISCREPANCY), int(InspectionOutcome.SEIZURE))


class SqlCaseStore:
    def __init__(self, url: str, *, sqlite_synchronous: str = "FULL") -> None:
        self._engine = create_engine(url, sqlite_synchronous=sqlite_synchronous)

    def close(self) -> None:
        self._engine.dispose()

    # -- officers' actions -------------------------------------------------------------------

    def act(self, case_id: str, expected_version: int, transition: CaseTransition) -> Case:
        c = cases.c
        with self._engine.connect().execution_options(sqlite_immediate=True) as conn, conn.begin():
            query = sa.select(cases).where(c.case_id == case_id)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            row = conn.execute(query).mappings().one_or_none()
            if row is None:
                raise NotFound(f"no case {case_id}")
            current = case_from_row(row)
            if current.version != expected_version:
                raise Aborted(
                    f"case {case_id} is at version {current.version}, not {expected_version}: it changed since "
                    "you read it; reload it and decide again",
                    metadata={"current_version": str(current.version)},
                )
            new, event = transition(current)
            values = case_to_row(new)
            updated = conn.execute(
                sa.update(cases).where(c.case_id == case_id, c.version == expected_version).values(values)
            )
            if updated.rowcount != 1:  # the lock above makes this unreachable; never write past a race
                raise Aborted(f"case {case_id} changed while it was being updated; reload it")
            audit.append(conn, [write_event(conn, new, event)])
        return new

    # -- reads -------------------------------------------------------------------------------

    def get(self, case_id: str) -> Case | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(cases).where(cases.c.case_id == case_id)).mappings().one_or_none()
        return None if row is None else case_from_row(row)

    def find(self, where: CaseFilter, *, after: CasePosition | None, limit: int) -> list[Case]:
        c = cases.c
        query = sa.select(cases)
        if where.channels:
            query = query.where(c.channel.in_(sorted(int(ch) for ch in where.channels)))
        if where.statuses:
            query = query.where(c.status.in_(sorted(int(s) for s in where.statuses)))
        if where.customs_office:
            query = query.where(c.customs_office == where.customs_office)
        if where.opened_after is not None:
            query = query.where(c.opened_at >= where.opened_after)
        if where.opened_before is not None:
            query = query.where(c.opened_at < where.opened_before)
        if where.min_risk_score is not None:
            query = query.where(c.risk_score >= where.min_risk_score)
        if where.assigned_officer:
            query = query.where(c.assigned_officer == where.assigned_officer)
        if after is not None:
            query = query.where(
                sa.or_(
                    c.risk_score < after.risk_score,
                    sa.and_(c.risk_score == after.risk_score, c.revenue_at_stake < after.revenue_at_stake),
                    sa.and_(
                        c.risk_score == after.risk_score,
                        c.revenue_at_stake == after.revenue_at_stake,
                        c.case_id > after.case_id,
                    ),
                )
            )
        query = query.order_by(c.risk_score.desc(), c.revenue_at_stake.desc(), c.case_id).limit(limit)
        with self._engine.connect() as conn:
            return [case_from_row(r) for r in conn.execute(query).mappings()]

    def events(self, case_id: str) -> list[CaseEvent]:
        e = case_events.c
        query = (
            sa.select(e.case_version, e.action, e.actor, e.occurred_at, e.detail)
            .where(e.case_id == case_id)
            .order_by(e.case_version)
        )
        with self._engine.connect() as conn:
            return [
                CaseEvent(case_id, version, CaseAction(action), actor, at, detail)
                for version, action, actor, at, detail in conn.execute(query)
            ]

    def declaration_versions(self, declaration_id: str) -> list[Declaration]:
        t = assessments
        query = sa.select(t.c.declaration).where(t.c.declaration_id == declaration_id).order_by(t.c.declaration_version)
        with self._engine.connect() as conn:
            return [codec.declaration_from_dict(d) for (d,) in conn.execute(query)]

    def assessments(self, declaration_id: str) -> list[Assessment]:
        with self._engine.connect() as conn:
            return declaration_assessments(conn, declaration_id)

    def draws(self, declaration_id: str) -> list[DrawRecord]:
        d = permit_draws.c
        query = (
            sa.select(
                d.permit_id, d.declaration_id, d.declaration_version, d.line_number, d.item_number,
                d.quantity, d.value, d.drawn_at,
            )
            .where(d.declaration_id == declaration_id)
            .order_by(d.item_number, d.permit_id, d.line_number)
        )  # fmt: skip
        with self._engine.connect() as conn:
            return [DrawRecord(*row) for row in conn.execute(query)]

    def importer_record(self, importer_id: str, *, exclude: str, recent: int = 10) -> ImporterRecord:
        t, c = assessments, cases.c
        with self._engine.connect() as conn:
            # The importer's other filings: the case's own declaration is the one under review.
            filings, first = conn.execute(
                sa.select(sa.func.count(sa.distinct(t.c.declaration_id)), sa.func.min(t.c.lodged_at)).where(
                    t.c.importer_id == importer_id, t.c.declaration_id != exclude
                )
            ).one()
            results = conn.execute(
                sa.select(c.result).where(c.importer_id == importer_id, c.case_id != exclude, c.result.is_not(None))
            ).scalars()
            newest = (
                sa.select(t.c.declaration_id, sa.func.max(t.c.declaration_version).label("version"))
                .where(t.c.importer_id == importer_id, t.c.declaration_id != exclude)
                .group_by(t.c.declaration_id)
                .subquery()
            )
            rows = conn.execute(
                sa.select(t.c.declaration_id, t.c.declaration_version, t.c.lodged_at, t.c.channel, c.result)
                .join(
                    newest,
                    (t.c.declaration_id == newest.c.declaration_id) & (t.c.declaration_version == newest.c.version),
                )
                .outerjoin(cases, c.case_id == t.c.declaration_id)
                .order_by(t.c.lodged_at.desc().nulls_last(), t.c.declaration_id)
                .limit(recent)
            ).all()
        outcomes = [int(r["outcome"]) for r in results]
        return ImporterRecord(
            importer_id,
            int(filings),
            len(outcomes),
            sum(o in _FINDINGS for o in outcomes),
            first,
            tuple(
                PastFilingRecord(
                    d_id,
                    version,
                    lodged,
                    Channel(channel),
                    InspectionOutcome(result["outcome"]) if result else InspectionOutcome.UNSPECIFIED,
                )
                for d_id, version, lodged, channel, result in rows
            ),
        )

    def labelled_filings(
        self, *, since: datetime | None = None, until: datetime | None = None, batch: int = 1000
    ) -> Iterator[LabelledFiling]:
        """Each declaration lodged in [since, until) once, in lodgement order, with its newest assessment.

        The version is the one the recorded result inspected, else the newest; its newest assessment is
        the latest re-assessment when a linked cargo report re-assessed it, else the original.
        """
        t, c = assessments, cases.c
        lodged: list[sa.ColumnElement[bool]] = [t.c.lodged_at.is_not(None)]
        if since is not None:
            lodged.append(t.c.lodged_at >= since)
        if until is not None:
            lodged.append(t.c.lodged_at < until)
        newest = (
            sa.select(t.c.declaration_id, sa.func.max(t.c.declaration_version).label("version"))
            .where(*lodged)
            .group_by(t.c.declaration_id)
            .subquery()
        )
        query = (
            sa.select(
                t.c.declaration_id, t.c.declaration_version, newest.c.version, t.c.declaration, t.c.assessment, c.result
            )
            .join(newest, t.c.declaration_id == newest.c.declaration_id)
            .outerjoin(cases, c.case_id == t.c.declaration_id)
            .where(*lodged)
            .order_by(t.c.lodged_at, t.c.declaration_id, t.c.declaration_version)
        )
        with self._engine.connect() as conn:
            result = conn.execution_options(yield_per=batch).execute(query)
            for rows in result.partitions():
                chosen = [row for row in rows if _is_labelled_version(row)]
                later = _newest_reassessments(conn, [(r[0], r[1]) for r in chosen])
                for d_id, version, _, declaration, assessment, stored_result in chosen:
                    document = later.get((d_id, version), assessment)
                    yield LabelledFiling(
                        codec.declaration_from_dict(declaration),
                        codec.assessment_from_dict(document),
                        result_from_dict(stored_result) if stored_result is not None else None,
                    )


def _is_labelled_version(row: Sequence[Any]) -> bool:
    """The version a filing is labelled by: the inspected one, else the newest."""
    _, version, newest, _, _, result = row
    wanted = int(result["declaration_version"]) if result is not None else newest
    return bool(version == wanted)


def _newest_reassessments(conn: sa.Connection, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], Any]:
    """The latest re-assessment document of each (declaration id, version) that has one."""
    r = reassessments.c
    out: dict[tuple[str, int], tuple[datetime, Any]] = {}
    ids = sorted({k[0] for k in keys})
    wanted = set(keys)
    for chunk in chunks(ids):
        query = sa.select(r.filing_id, r.version, r.assessed_at, r.assessment).where(
            r.kind == links.DECLARATION, r.filing_id.in_(list(chunk))
        )
        for filing_id, version, at, document in conn.execute(query):
            key = (filing_id, version)
            if key in wanted and (key not in out or at > out[key][0]):
                out[key] = (at, document)
    return {k: v[1] for k, v in out.items()}
