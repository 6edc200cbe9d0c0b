"""Rows of document_links and reassessments, written by the stores' writers in their own transactions."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from risk_service.store.codec import JsonDict, to_json
from risk_service.store.db import BulkInsert, chunks
from risk_service.store.tables import document_links, reassessments

DECLARATION = "declaration"
CARGO_REPORT = "cargo_report"
LinkKey = tuple[str, str]  # ("document" | "container", key)
_IN_LIMIT = 500  # keys per IN list, well under SQLite's bound-parameter limit


class NewFiling(NamedTuple):
    """A filing version just stored, the time its consignment moves and the keys it names."""

    filing_id: str
    version: int
    at: datetime
    keys: set[LinkKey]


class Reassessed(NamedTuple):
    """A stored filing version of the other kind assessed again because a new filing arrived."""

    assessment_id: str
    filing_id: str
    version: int
    trigger: str
    at: datetime
    document: JsonDict


class LinkWriter:
    """Inserts link and re-assessment rows in the caller's (the writer's) transaction."""

    def __init__(self, dialect: sa.Dialect) -> None:
        # A retried filing names the same keys again: nothing to add.
        self._links = BulkInsert(document_links, dialect, ignore_conflicts=True)
        t = reassessments
        document = sa.bindparam("assessment_json", type_=sa.Text)
        # One re-assessment can ride with several filings of a call (same id): the first one stores it.
        if dialect.name == "postgresql":
            pg = postgresql.insert(t).values(assessment=sa.cast(document, postgresql.JSONB))
            self._reassessments: sa.Insert = pg.on_conflict_do_nothing(index_elements=[t.c.assessment_id])
        else:
            lite = sqlite.insert(t).values(assessment=document)
            self._reassessments = lite.on_conflict_do_nothing(index_elements=[t.c.assessment_id])

    def write(
        self,
        conn: sa.Connection,
        kind: str,
        filings: Iterable[NewFiling],
        reassessed_kind: str,
        reassessed: Iterable[Reassessed],
    ) -> None:
        # In key order, so two writers linking the same keys lock them in the same order.
        rows = [
            {
                "link_type": t,
                "link_key": k,
                "kind": kind,
                "filing_id": f.filing_id,
                "version": f.version,
                "linked_at": f.at,
            }
            for f in filings
            for t, k in f.keys
            if k
        ]
        rows.sort(key=lambda r: (r["link_type"], r["link_key"], r["filing_id"], r["version"]))
        self._links.execute(conn, rows)
        # A call may carry the same re-assessment with several of its filings (same id): store it once.
        unique = {x.assessment_id: x for x in reassessed}
        if unique:
            conn.execute(
                self._reassessments,
                [
                    {
                        "assessment_id": x.assessment_id,
                        "kind": reassessed_kind,
                        "filing_id": x.filing_id,
                        "version": x.version,
                        "trigger": x.trigger,
                        "assessed_at": x.at,
                        "assessment_json": to_json(x.document),
                    }
                    for _, x in sorted(unique.items())
                ],
            )


def _lookup_statement() -> sa.Select[Any]:
    """Built once: an OR of two primary-key ranges (documents, containers) with expanding IN lists,
    so each call only binds its keys instead of compiling a new statement."""
    t = document_links
    return sa.select(t.c.filing_id).where(
        sa.or_(
            sa.and_(t.c.link_type == "document", t.c.link_key.in_(sa.bindparam("documents", expanding=True))),
            sa.and_(t.c.link_type == "container", t.c.link_key.in_(sa.bindparam("containers", expanding=True))),
        ),
        t.c.kind == sa.bindparam("kind"),
        t.c.linked_at >= sa.bindparam("since", type_=t.c.linked_at.type),
        t.c.linked_at <= sa.bindparam("until", type_=t.c.linked_at.type),
    )


_LOOKUP = _lookup_statement()


def linked_filings(
    conn: sa.Connection, kind: str, keys: Iterable[LinkKey], since: datetime, until: datetime
) -> set[str]:
    """Ids of the filings of `kind` that named any of the keys in a version linked between since and until.

    One indexed lookup (the primary key leads with link type and key) for the usual call: a bill and
    a few containers. The caller reads each filing's newest version and judges whether that one
    still names the key.
    """
    given = set(keys)
    wanted = {name: sorted({k for t, k in given if t == name and k}) for name in ("document", "container")}
    found: set[str] = set()
    parts = max(len(v) for v in wanted.values())
    for start in range(0, parts, _IN_LIMIT):
        documents = wanted["document"][start : start + _IN_LIMIT]
        containers = wanted["container"][start : start + _IN_LIMIT]
        params = {"documents": documents, "containers": containers, "kind": kind, "since": since, "until": until}
        found.update(conn.execute(_LOOKUP, params).scalars())
    return found


def newest_versions(
    conn: sa.Connection,
    id_column: sa.Column[str],
    version_column: sa.Column[int],
    columns: list[sa.Column[Any]],
    ids: set[str],
) -> list[tuple[Any, ...]]:
    """`columns` of each filing's newest stored version, in id order."""
    best: dict[str, tuple[int, tuple[Any, ...]]] = {}
    for chunk in chunks(sorted(ids)):
        for filing_id, version, *values in conn.execute(
            sa.select(id_column, version_column, *columns).where(id_column.in_(chunk))
        ):
            if filing_id not in best or version > best[filing_id][0]:
                best[filing_id] = (version, tuple(values))
    return [values for _, (_, values) in sorted(best.items())]


def latest_reassessments(conn: sa.Connection, kind: str, versions: set[tuple[str, int]]) -> dict[tuple[str, int], Any]:
    """The newest re-assessment document of each of these (filing id, version) pairs that has one."""
    t = reassessments
    newest: dict[tuple[str, int], tuple[datetime, str, Any]] = {}
    for chunk in chunks(sorted({filing_id for filing_id, _ in versions})):
        query = sa.select(t.c.filing_id, t.c.version, t.c.assessed_at, t.c.assessment_id, t.c.assessment).where(
            t.c.kind == kind, t.c.filing_id.in_(chunk)
        )
        for filing_id, version, at, assessment_id, document in conn.execute(query):
            key = (filing_id, version)
            if key in versions and (key not in newest or (at, assessment_id) > newest[key][:2]):
                newest[key] = (at, assessment_id, document)
    return {key: document for key, (_, _, document) in newest.items()}


def reassessment_documents(conn: sa.Connection, kind: str, filing_id: str) -> list[tuple[int, datetime, Any]]:
    """(version, time, assessment document) of a filing's re-assessments, oldest first."""
    t = reassessments
    query = (
        sa.select(t.c.version, t.c.assessed_at, t.c.assessment)
        .where(t.c.kind == kind, t.c.filing_id == filing_id)
        .order_by(t.c.assessed_at, t.c.assessment_id)
    )
    return [(v, at, doc) for v, at, doc in conn.execute(query)]
