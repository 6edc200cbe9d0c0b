"""Durable assessment storage with group commit: one writer thread, one transaction per batch of submissions."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from features import ENTITY_KINDS
from risk_service.domain.assessment import Assessment
from risk_service.domain.cargo.assessment import CargoAssessment
from risk_service.domain.consistency import declaration_link_keys, declaration_time
from risk_service.domain.declaration import Declaration
from risk_service.domain.entity_history import declaration_keys
from risk_service.domain.permits.model import LineBalance
from risk_service.domain.ports import AssessmentRecord, BalancesChanged, SaveResult, SettleRefusals
from risk_service.store import audit, case_store, codec, keyed_writes, links
from risk_service.store.audit import AuditKind
from risk_service.store.cargo_codec import cargo_assessment_to_dict
from risk_service.store.db import BulkInsert, create_engine
from risk_service.store.entities import filing_entity_rows, read_entity_history
from risk_service.store.group_commit import AfterCommit, GroupCommitWriter, Submission, WritingStore
from risk_service.store.ledger import LineKey, Settlement, needs_ledger, settle_claims
from risk_service.store.links import LinkKey, LinkWriter, NewFiling, Reassessed
from risk_service.store.tables import assessments, filing_entities

log = logging.getLogger(__name__)

_Key = tuple[str, int]
_Row = dict[str, Any]


_Submission = Submission[AssessmentRecord, SaveResult]


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
        "declaration_json": codec.to_json(codec.declaration_to_dict(d)),
        "assessment_json": codec.to_json(codec.assessment_to_dict(a)),
    }


def _entity_rows(d: Declaration) -> list[dict[str, Any]]:
    """The filing_entities rows of one declaration: each entity it names, once."""
    return filing_entity_rows(d.declaration_id, d.lodgement_time, declaration_keys(d), ENTITY_KINDS, ENTITY_KINDS)


def _audit_entry(record: AssessmentRecord, row: _Row) -> audit.AuditEntry:
    a = record.assessment
    return audit.entry(AuditKind.ASSESSMENT, a.assessment_id, audit.SCREENING, row["assessment_json"])


def _new_filing(r: AssessmentRecord) -> NewFiling:
    d = r.declaration
    return NewFiling(
        d.declaration_id, d.version, declaration_time(d, r.assessment.assessment_time), declaration_link_keys(d)
    )


def _reassessed(a: CargoAssessment, trigger: str) -> Reassessed:
    return Reassessed(
        a.assessment_id, a.report_id, a.report_version, trigger, a.assessment_time, cargo_assessment_to_dict(a)
    )


class SqlAssessmentStore(WritingStore):
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
        self._engine = create_engine(url, sqlite_synchronous=sqlite_synchronous)
        self._settle = settle
        self._on_balances = on_balances
        t = assessments
        self._insert = keyed_writes.idempotent_insert(
            t, [t.c.declaration_id, t.c.declaration_version], ["declaration", "assessment"], self._engine.dialect.name
        )
        # A later version naming the same entities adds nothing: the first stored version's time stands.
        self._insert_entities = BulkInsert(filing_entities, self._engine.dialect, ignore_conflicts=True)
        self._links = LinkWriter(self._engine.dialect)
        self._writer: GroupCommitWriter[AssessmentRecord, SaveResult] = GroupCommitWriter(
            self._engine,
            name="assessment-store-writer",
            max_batch=max_batch,
            prepare=_row,
            transaction=self._transaction,
        )

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
        return self._writer.submit(records, atomic=atomic)

    def _notify(self, balances: Mapping[LineKey, LineBalance]) -> None:
        if not balances or self._on_balances is None:
            return
        try:
            self._on_balances(balances)
        except Exception:  # the draws are committed; a listener's failure must not fail their callers
            log.exception("the balances listener failed on %d goods lines", len(balances))

    def _transaction(
        self, conn: sa.Connection, submissions: list[_Submission]
    ) -> tuple[list[list[SaveResult]], AfterCommit | None]:
        """Writes the submissions in the writer's transaction, with the results of writing them one after another.

        After the commit, and before the callers hear of it (so a caller's next screening sees its
        own draws), the balances listener hears the new totals of the permit lines drawn from.
        """
        # Rows stored before this batch, for the keys whose conflicts decide an atomic submission.
        atomic = keyed_writes.atomic_keys(submissions, _key)
        stored = self._stored(conn, atomic, must_exist=False) if atomic else {}
        plan = keyed_writes.plan_writes(submissions, stored, _key, SaveResult)
        planned = plan.planned
        settlement = self._settle_claims(conn, planned)
        inserted: set[_Key] = set()
        if planned:
            inserted = {(r[0], r[1]) for r in conn.execute(self._insert, keyed_writes.insert_rows(plan))}
        missed = [k for k in planned if k not in inserted]
        if not plan.atomic_keys.isdisjoint(missed):
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
        later = self._write_links(conn, [planned[k][0] for k in inserted])
        case_events = case_store.open_cases(
            conn, [(planned[k][0].declaration, planned[k][0].assessment) for k in inserted]
        )
        # Last in the transaction: the audit chain's head is the last lock it takes.
        audit.append(
            conn,
            [
                *(_audit_entry(*planned[k]) for k in sorted(inserted)),
                *audit.reassessment_entries(later),
                *case_events,
            ],
        )
        out = keyed_writes.collect_results(submissions, plan, inserted, stored, _key, SaveResult)
        if plan.rolled_back:
            log.info(
                "%d atomic submissions with conflicts were not written: %s",
                len(plan.rolled_back),
                ", ".join(f"{len(submissions[n].records)} records" for n in plan.rolled_back),
            )
        balances = settlement.balances
        return out, (lambda: self._notify(balances)) if balances else None

    def _write_links(self, conn: sa.Connection, created: list[AssessmentRecord]) -> list[Reassessed]:
        """The new versions' document links, and the cargo reports re-assessed because they arrived."""
        filings = [_new_filing(r) for r in created]
        later = [_reassessed(x.assessment, x.trigger) for r in created for x in r.reassessments]
        self._links.write(conn, links.DECLARATION, filings, links.CARGO_REPORT, later)
        return later

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
    def _stored(conn: sa.Connection, keys: Sequence[_Key], *, must_exist: bool) -> keyed_writes.Stored:
        """(content hash, assessment) of the stored rows with these keys."""
        t = assessments
        return keyed_writes.stored_rows(
            conn,
            t.c.declaration_id,
            t.c.declaration_version,
            t.c.content_hash,
            t.c.assessment,
            keys,
            codec.assessment_from_dict,
            must_exist=must_exist,
        )

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
        """Every assessment of one declaration: each version's, then its re-assessments, in time order."""
        with self._engine.connect() as conn:
            return case_store.declaration_assessments(conn, declaration_id)

    def linked_declarations(
        self, keys: Iterable[LinkKey], since: datetime, until: datetime
    ) -> list[tuple[Declaration, Assessment]]:
        """The newest stored version, with its assessment, of every declaration that named any of these
        transport documents or containers in a version lodged between since and until. The newest
        version may no longer name them: the caller judges (consistency.linked)."""
        t = assessments
        with self._engine.connect() as conn:
            ids = links.linked_filings(conn, links.DECLARATION, keys, since, until)
            rows = links.newest_versions(
                conn, t.c.declaration_id, t.c.declaration_version, [t.c.declaration, t.c.assessment], ids
            )
        return [(codec.declaration_from_dict(d), codec.assessment_from_dict(a)) for d, a in rows]

    def entity_history(self, kinds: Sequence[str] = ENTITY_KINDS) -> dict[str, dict[str, tuple[datetime, int]]]:
        """The declaration kinds of filing_entities (store.entities.read_entity_history)."""
        return read_entity_history(self._engine, kinds)

    def count(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(assessments)).scalar_one())
