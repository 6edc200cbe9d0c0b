"""Stores every cargo report assessment before the service answers, with the report as filed."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from risk_service.domain.assessment import Assessment
from risk_service.domain.cargo.assessment import CargoAssessment
from risk_service.domain.cargo.model import CargoReport
from risk_service.domain.cargo.ports import CargoRecord, CargoSaveResult
from risk_service.domain.consistency import report_link_keys, report_time
from risk_service.domain.entity_history import ContainerEntities, report_keys
from risk_service.store import audit, case_store, keyed_writes, links
from risk_service.store.audit import AuditKind
from risk_service.store.cargo_codec import (
    cargo_assessment_from_dict,
    cargo_assessment_to_dict,
    cargo_report_from_dict,
    cargo_report_to_dict,
)
from risk_service.store.codec import assessment_to_dict, to_json
from risk_service.store.db import BulkInsert, chunks, create_engine
from risk_service.store.entities import filing_entity_rows, read_entity_history
from risk_service.store.group_commit import AfterCommit, GroupCommitWriter, Submission, WritingStore
from risk_service.store.links import LinkKey, LinkWriter, NewFiling, Reassessed
from risk_service.store.tables import cargo_assessments, filing_entities

log = logging.getLogger(__name__)

_Key = tuple[str, int]


def _key(record: CargoRecord) -> _Key:
    return (record.assessment.report_id, record.assessment.report_version)


def _row(record: CargoRecord) -> dict[str, Any]:
    a, r = record.assessment, record.report
    if (a.report_id, a.report_version) != r.key:
        raise ValueError(
            f"assessment {a.assessment_id} is for {a.report_id} v{a.report_version}, "
            f"not for the report given ({r.report_id} v{r.version})"
        )
    return {
        "assessment_id": a.assessment_id,
        "report_id": a.report_id,
        "report_version": a.report_version,
        "content_hash": record.content_hash,
        "filing_type": int(a.filing_type),
        "pre_loading_outcome": int(a.pre_loading_outcome),
        "risk_score": a.risk_score,
        "master_document": r.master_transport_document_number,
        "house_document": r.house_transport_document_number,
        "filed_at": r.filing_time,
        "assessed_at": a.assessment_time,
        "report_json": to_json(cargo_report_to_dict(r)),
        "assessment_json": to_json(cargo_assessment_to_dict(a)),
    }


def _entity_rows(r: CargoReport) -> list[dict[str, Any]]:
    """The filing_entities rows of one report: each counted entity it names, once."""
    kinds, counted = ContainerEntities.kinds, ContainerEntities.counted
    return filing_entity_rows(r.report_id, r.filing_time, report_keys(r), kinds, counted)


def _new_filing(c: CargoRecord) -> NewFiling:
    r = c.report
    return NewFiling(r.report_id, r.version, report_time(r, c.assessment.assessment_time), report_link_keys(r))


def _reassessed(a: Assessment, trigger: str) -> Reassessed:
    return Reassessed(
        a.assessment_id, a.declaration_id, a.declaration_version, trigger, a.assessment_time, assessment_to_dict(a)
    )


class SqlCargoStore(WritingStore):
    """Cargo assessments on SQLite or PostgreSQL; writes go through one group-commit writer thread.

    Same guarantees as SqlAssessmentStore: a retry of a stored (report id, version) gets the stored
    assessment, the same key with other content is a conflict, an atomic submission with a conflict
    is written not at all. The schema must exist: run `migrations.upgrade` first.
    """

    def __init__(self, url: str, *, max_batch: int = 500, sqlite_synchronous: str = "FULL") -> None:
        self._engine = create_engine(url, sqlite_synchronous=sqlite_synchronous)
        t = cargo_assessments
        self._insert = keyed_writes.idempotent_insert(
            t, [t.c.report_id, t.c.report_version], ["report", "assessment"], self._engine.dialect.name
        )
        self._links = LinkWriter(self._engine.dialect)
        self._insert_entities = BulkInsert(filing_entities, self._engine.dialect, ignore_conflicts=True)
        self._writer: GroupCommitWriter[CargoRecord, CargoSaveResult] = GroupCommitWriter(
            self._engine, name="cargo-store-writer", max_batch=max_batch, prepare=_row, transaction=self._transaction
        )

    def save_many(self, records: Sequence[CargoRecord], *, atomic: bool = False) -> Future[list[CargoSaveResult]]:
        return self._writer.submit(records, atomic=atomic)

    def _transaction(
        self, conn: sa.Connection, submissions: list[Submission[CargoRecord, CargoSaveResult]]
    ) -> tuple[list[list[CargoSaveResult]], AfterCommit | None]:
        atomic = keyed_writes.atomic_keys(submissions, _key)
        stored = self._stored(conn, atomic, must_exist=False) if atomic else {}
        plan = keyed_writes.plan_writes(submissions, stored, _key, CargoSaveResult)
        inserted: set[_Key] = set()
        if plan.planned:
            inserted = {(r[0], r[1]) for r in conn.execute(self._insert, keyed_writes.insert_rows(plan))}
        missed = [k for k in plan.planned if k not in inserted]
        if not plan.atomic_keys.isdisjoint(missed):
            # Another writer stored a key of an atomic submission after the check; alone, the retry sees it.
            raise RuntimeError(f"{len(missed)} keys stored by another writer meanwhile, e.g. {missed[0]}")
        stored.update(self._stored(conn, missed, must_exist=True))
        created = [plan.planned[k][0] for k in inserted]
        entity_rows = [e for c in created for e in _entity_rows(c.report)]
        entity_rows.sort(key=lambda e: (e["kind"], e["entity_key"], e["declaration_id"]))  # lock order
        self._insert_entities.execute(conn, entity_rows)
        later = self._write_links(conn, created)
        case_events = case_store.open_cases_for_reassessed(
            conn, [x.assessment for c in created for x in c.reassessments]
        )
        # Last in the transaction: the audit chain's head is the last lock it takes.
        audit.append(
            conn,
            [
                *(
                    audit.entry(
                        AuditKind.CARGO_ASSESSMENT,
                        plan.planned[k][0].assessment.assessment_id,
                        audit.SCREENING,
                        plan.planned[k][1]["assessment_json"],
                    )
                    for k in sorted(inserted)
                ),
                *audit.reassessment_entries(later),
                *case_events,
            ],
        )
        return keyed_writes.collect_results(submissions, plan, inserted, stored, _key, CargoSaveResult), None

    def _write_links(self, conn: sa.Connection, created: list[CargoRecord]) -> list[Reassessed]:
        """The new versions' document links, and the declarations re-assessed because they arrived."""
        filings = [_new_filing(c) for c in created]
        later = [_reassessed(x.assessment, x.trigger) for c in created for x in c.reassessments]
        self._links.write(conn, links.CARGO_REPORT, filings, links.DECLARATION, later)
        return later

    @staticmethod
    def _stored(conn: sa.Connection, keys: Sequence[_Key], *, must_exist: bool) -> keyed_writes.Stored:
        t = cargo_assessments
        return keyed_writes.stored_rows(
            conn,
            t.c.report_id,
            t.c.report_version,
            t.c.content_hash,
            t.c.assessment,
            keys,
            cargo_assessment_from_dict,
            must_exist=must_exist,
        )

    # -- reading (short connections of their own, never the writer's) ---------------------------

    def latest_before(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], CargoAssessment]:
        """For each (report id, version), the latest assessment of the highest earlier version stored:
        its own, or the newest re-assessment of it."""
        t = cargo_assessments
        wanted: dict[str, list[int]] = {}
        for report_id, version in keys:
            wanted.setdefault(report_id, []).append(version)
        best: dict[tuple[str, int], tuple[int, Any]] = {}
        with self._engine.connect() as conn:
            for chunk in chunks(sorted(wanted)):
                query = sa.select(t.c.report_id, t.c.report_version, t.c.assessment).where(t.c.report_id.in_(chunk))
                for report_id, stored_version, document in conn.execute(query):
                    for version in wanted[report_id]:
                        key = (report_id, version)
                        if stored_version < version and (key not in best or best[key][0] < stored_version):
                            best[key] = (stored_version, document)
            # A re-assessment of that version (a linked declaration arrived since) is its latest word.
            latest = links.latest_reassessments(conn, links.CARGO_REPORT, {(k[0], v) for k, (v, _) in best.items()})
        return {
            key: cargo_assessment_from_dict(latest.get((key[0], version), document))
            for key, (version, document) in best.items()
        }

    def history(self, report_id: str) -> list[CargoAssessment]:
        """Every assessment of one report: each version's, then its re-assessments, in time order."""
        t = cargo_assessments
        query = sa.select(t.c.report_version, t.c.assessed_at, t.c.assessment).where(t.c.report_id == report_id)
        with self._engine.connect() as conn:
            found = [*conn.execute(query), *links.reassessment_documents(conn, links.CARGO_REPORT, report_id)]
        return [cargo_assessment_from_dict(d) for _, _, d in sorted(found, key=lambda row: (row[0], row[1]))]

    def linked_reports(
        self, keys: Iterable[LinkKey], since: datetime, until: datetime
    ) -> list[tuple[CargoReport, CargoAssessment]]:
        """The newest stored version, with its assessment, of every cargo report that named any of these
        transport documents or containers in a version arriving between since and until. The newest
        version may no longer name them: the caller judges (consistency.linked)."""
        t = cargo_assessments
        with self._engine.connect() as conn:
            ids = links.linked_filings(conn, links.CARGO_REPORT, keys, since, until)
            rows = links.newest_versions(conn, t.c.report_id, t.c.report_version, [t.c.report, t.c.assessment], ids)
        return [(cargo_report_from_dict(r), cargo_assessment_from_dict(a)) for r, a in rows]

    def entity_history(self) -> dict[str, dict[str, tuple[datetime, int]]]:
        """The container kinds of filing_entities: warms the screener's ContainerEntities."""
        return read_entity_history(self._engine, ContainerEntities.counted)

    def count(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(cargo_assessments)).scalar_one())
