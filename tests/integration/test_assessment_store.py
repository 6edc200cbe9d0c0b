"""The assessment store on SQLite and PostgreSQL: idempotent retries, conflicts, group commit, isolation of failures."""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from risk_service.domain.assessment import Assessment, Channel, FeatureContribution, ModelStatus, RuleHit
from risk_service.domain.declaration import (
    AeoStatus,
    Declaration,
    DeclarationType,
    DutyTax,
    GoodsItem,
    Party,
    TransportMode,
)
from risk_service.domain.errors import Unavailable
from risk_service.store import AssessmentRecord, SaveResult, SqlAssessmentStore, codec, migrations
from risk_service.store.tables import assessments

T0 = datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def make_declaration(
    declaration_id: str = "DEC-1",
    version: int = 1,
    *,
    importer_id: str = "IMP-1",
    incoterm: Any = "FOB",
    invoice_amount: float = 1250.5,
    lodged: datetime | None = T0,
) -> Declaration:
    return Declaration(
        declaration_id=declaration_id,
        version=version,
        type=DeclarationType.IMPORT,
        lodgement_time=lodged,
        customs_office="KR-SEL",
        declarant=Party("DCL-9", "Broker Co"),
        importer=Party(importer_id, "Importer Ltd"),
        exporter=Party("EXP-3"),
        aeo_status=AeoStatus.NONE,
        export_country="CN",
        origin_country="CN",
        destination_country="KR",
        transport_mode=TransportMode.SEA,
        transport_document_number="BL-77",
        container_numbers=("MSCU1234565", "TGHU7654321"),
        incoterm=incoterm,
        invoice_currency="USD",
        invoice_amount=invoice_amount,
        items=(
            GoodsItem(
                item_number=1,
                hs_code="850440",
                description="power supplies",
                quantity=10.0,
                quantity_unit="NAR",
                net_mass_kg=4.2,
                gross_mass_kg=5.0,
                customs_value=0.1 + 0.2,
                origin_country="CN",
                preference_claimed="FTA",
                permit_references=("P-1",),
                duties_and_taxes=(DutyTax("A00", 8.0), DutyTax("B00", 10.25)),
            ),
            GoodsItem(1 + 1, "620342", "trousers", 3.0, "NAR", 1.0, 1.5, 30.0, "VN"),
        ),
    )


def make_assessment(
    declaration: Declaration,
    *,
    assessment_id: str | None = None,
    model_score: float | None = 0.8125,
    at: datetime = T0,
) -> Assessment:
    return Assessment(
        assessment_id=assessment_id or str(uuid.uuid4()),
        declaration_id=declaration.declaration_id,
        declaration_version=declaration.version,
        channel=Channel.YELLOW,
        risk_score=0.61,
        model_score=model_score,
        rule_hits=(
            RuleHit(
                "R-VALUE-LOW", "declared value is low", ("declaration.items[0].customs_value",), 0.4, Channel.YELLOW
            ),
            RuleHit("R-ORIGIN", "origin watch list", (), 0.1, None, (1, 2)),
        ),
        contributions=(
            FeatureContribution("unit_value", 0.03, 0.42, 1),
            FeatureContribution("importer_days_known", math.nan, -0.1, 0),
            FeatureContribution("duty_rate", math.inf, 1e-300, 2),
        ),
        random_control=False,
        model_status=ModelStatus.SCORED if model_score is not None else ModelStatus.UNAVAILABLE,
        model_name="customs-risk",
        model_version="7",
        rule_set_version="2025.03.1",
        assessment_time=at,
    )


def make_record(
    declaration_id: str = "DEC-1", version: int = 1, *, content: str = "a", **declaration_args: Any
) -> AssessmentRecord:
    declaration = make_declaration(declaration_id, version, **declaration_args)
    return AssessmentRecord(make_assessment(declaration), declaration, content_hash=content * 64)


def same_assessment(a: Assessment, b: Assessment) -> bool:
    """Dataclass equality, except that NaN (never equal to itself) matches NaN: compare the exact reprs."""
    return repr(a) == repr(b)


def save(store: SqlAssessmentStore, records: list[AssessmentRecord]) -> list[SaveResult]:
    return store.save_many(records).result(timeout=30)


def save_atomic(store: SqlAssessmentStore, records: list[AssessmentRecord]) -> list[SaveResult]:
    return store.save_many(records, atomic=True).result(timeout=30)


@pytest.fixture
def store(database_url: str) -> Iterator[SqlAssessmentStore]:
    migrations.upgrade(database_url)
    s = SqlAssessmentStore(database_url)
    try:
        yield s
    finally:
        s.close()


class WriteBlocker:
    """Holds the database's write lock from outside the store, so submissions pile up in its queue."""

    def __init__(self, url: str) -> None:
        parsed = sa.make_url(url)
        self._sqlite: sqlite3.Connection | None = None
        self._pg: sa.Connection | None = None
        self._engine: sa.Engine | None = None
        if parsed.get_backend_name() == "sqlite":
            self._sqlite = sqlite3.connect(str(parsed.database), isolation_level=None, check_same_thread=False)
            self._sqlite.execute("BEGIN IMMEDIATE")
        else:
            self._engine = sa.create_engine(url)
            self._pg = self._engine.connect()
            self._pg.execute(sa.text("LOCK TABLE assessments IN EXCLUSIVE MODE"))

    def release(self) -> None:
        if self._sqlite is not None:
            self._sqlite.rollback()
            self._sqlite.close()
        if self._pg is not None and self._engine is not None:
            self._pg.rollback()
            self._pg.close()
            self._engine.dispose()


def test_stored_assessment_reads_back_unchanged(store: SqlAssessmentStore, database_url: str) -> None:
    record = make_record()
    unscored = make_record("DEC-2")
    unscored = AssessmentRecord(
        make_assessment(
            unscored.declaration, model_score=None, at=datetime(2025, 3, 1, 18, 0, tzinfo=timezone(timedelta(hours=9)))
        ),
        unscored.declaration,
        unscored.content_hash,
    )

    results = save(store, [record, unscored])

    assert [(r.created, r.conflict) for r in results] == [(True, False), (True, False)]
    stored = store.get("DEC-1", 1)
    assert stored is not None and same_assessment(stored, record.assessment)
    assert stored.assessment_time.tzinfo is not None
    assert isinstance(stored.rule_hits, tuple) and isinstance(stored.rule_hits[0].fields, tuple)
    assert stored.rule_hits[1].min_channel is None and stored.rule_hits[0].min_channel is Channel.YELLOW
    assert math.isnan(stored.contributions[1].value) and stored.contributions[2].value == math.inf
    other = store.get("DEC-2", 1)
    assert other is not None and other.model_score is None
    assert other.assessment_time == unscored.assessment.assessment_time
    assert store.get("DEC-1", 2) is None and store.get("NOPE", 1) is None
    assert store.count() == 2
    # The declaration is kept as filed, exactly.
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        document = conn.execute(
            sa.select(assessments.c.declaration).where(assessments.c.declaration_id == "DEC-1")
        ).scalar_one()
    engine.dispose()
    assert codec.declaration_from_dict(document) == record.declaration


def test_retry_with_same_content_returns_the_stored_assessment(store: SqlAssessmentStore) -> None:
    first = make_record()
    save(store, [first])
    retry = make_record(content="a")  # rescored: new assessment id, same filing

    (result,) = save(store, [retry])

    assert not result.created and not result.conflict
    assert result.assessment.assessment_id == first.assessment.assessment_id
    assert same_assessment(result.assessment, first.assessment)
    assert store.count() == 1


def test_reused_version_with_different_content_is_a_conflict_and_overwrites_nothing(
    store: SqlAssessmentStore,
) -> None:
    first = make_record()
    save(store, [first])

    (result,) = save(store, [make_record(content="b", invoice_amount=99.0)])

    assert result.conflict and not result.created
    assert result.assessment.assessment_id == first.assessment.assessment_id
    stored = store.get("DEC-1", 1)
    assert stored is not None and stored.assessment_id == first.assessment.assessment_id
    assert store.count() == 1


def test_new_version_is_stored_alongside_the_old(store: SqlAssessmentStore) -> None:
    v1 = make_record(version=1)
    v2 = make_record(version=2, content="b")
    save(store, [v2])
    save(store, [v1])

    history = store.history("DEC-1")

    assert [a.declaration_version for a in history] == [1, 2]
    assert [a.assessment_id for a in history] == [v1.assessment.assessment_id, v2.assessment.assessment_id]
    assert store.history("NOPE") == []


def test_duplicates_in_one_batch_behave_like_sequential_saves(store: SqlAssessmentStore) -> None:
    first, retry, clash = make_record(), make_record(), make_record(content="b")
    other = make_record("DEC-2")

    results = save(store, [first, retry, other, clash])

    assert [(r.created, r.conflict) for r in results] == [(True, False), (False, False), (True, False), (False, True)]
    assert {results[i].assessment.assessment_id for i in (0, 1, 3)} == {first.assessment.assessment_id}
    assert store.count() == 2


def test_concurrent_submissions_store_exactly_one_row_per_key(store: SqlAssessmentStore) -> None:
    keys = [(f"DEC-{i % 40}", 1 + i % 2) for i in range(80)]  # 80 distinct keys
    futures: list[Future[list[SaveResult]]] = []
    lock = threading.Lock()

    def submit(thread_no: int) -> None:
        for n in range(60):
            declaration_id, version = keys[(thread_no * 7 + n) % len(keys)]
            record = make_record(declaration_id, version)
            records = [record, make_record("HOT", 1)]  # every submission also retries one hot key
            future = store.save_many(records)
            with lock:
                futures.append(future)

    threads = [threading.Thread(target=submit, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    created: dict[tuple[str, int], str] = {}
    returned: dict[tuple[str, int], set[str]] = {}
    for future in futures:
        for result in future.result(timeout=60):
            assert not result.conflict
            key = (result.assessment.declaration_id, result.assessment.declaration_version)
            returned.setdefault(key, set()).add(result.assessment.assessment_id)
            if result.created:
                assert key not in created, f"{key} created twice"
                created[key] = result.assessment.assessment_id

    assert store.count() == len(set(keys)) + 1 == len(created)
    # Every caller of a key got the one stored assessment back.
    assert all(ids == {created[key]} for key, ids in returned.items())


def test_atomic_submission_with_a_stored_conflict_writes_nothing(store: SqlAssessmentStore) -> None:
    stored_v1, stored_retry = make_record("DEC-1"), make_record("DEC-3")
    save(store, [stored_v1, stored_retry])
    clash = make_record("DEC-1", content="b")
    new = make_record("DEC-2")
    retry = make_record("DEC-3")  # the same content again: not a conflict, but nothing is written either

    results = save_atomic(store, [new, clash, retry])

    assert [(r.created, r.conflict) for r in results] == [(False, False), (False, True), (False, False)]
    assert results[0].assessment.assessment_id == new.assessment.assessment_id  # its own, unstored
    assert results[1].assessment.assessment_id == stored_v1.assessment.assessment_id
    assert results[2].assessment.assessment_id == stored_retry.assessment.assessment_id
    assert store.get("DEC-2", 1) is None
    assert store.count() == 2


def test_atomic_submission_with_a_conflict_inside_itself_writes_nothing(store: SqlAssessmentStore) -> None:
    first, other, same, clash = make_record(), make_record("DEC-2"), make_record(), make_record(content="b")

    results = save_atomic(store, [first, other, same, clash])

    assert [(r.created, r.conflict) for r in results] == [(False, False)] * 3 + [(False, True)]
    assert {results[i].assessment.assessment_id for i in (0, 2, 3)} == {first.assessment.assessment_id}
    assert results[1].assessment.assessment_id == other.assessment.assessment_id
    assert store.count() == 0


def test_atomic_submission_without_conflicts_is_written_like_any_other(store: SqlAssessmentStore) -> None:
    stored = make_record("DEC-1")
    save(store, [stored])
    retry, new, copy = make_record("DEC-1"), make_record("DEC-2"), make_record("DEC-2")

    results = save_atomic(store, [retry, new, copy])

    assert [(r.created, r.conflict) for r in results] == [(False, False), (True, False), (False, False)]
    assert results[0].assessment.assessment_id == stored.assessment.assessment_id
    assert results[2].assessment.assessment_id == new.assessment.assessment_id
    assert store.count() == 2


def test_atomic_lookup_tells_versions_of_one_declaration_apart(store: SqlAssessmentStore) -> None:
    v1, v2 = make_record("DEC-1", 1), make_record("DEC-1", 2)
    save(store, [v1, v2])

    results = save_atomic(store, [make_record("DEC-1", 2), make_record("DEC-1", 3)])

    assert [(r.created, r.conflict) for r in results] == [(False, False), (True, False)]
    assert results[0].assessment.assessment_id == v2.assessment.assessment_id
    assert [a.declaration_version for a in store.history("DEC-1")] == [1, 2, 3]


def test_writer_reads_assessments_by_index_not_by_scan(tmp_path: Any) -> None:
    """The writer's lookups stay cheap as the table grows (SQLite scanned it for (id, version) IN lists)."""
    url = f"sqlite:///{tmp_path / 'plans.db'}"
    migrations.upgrade(url)
    plans: list[str] = []
    with SqlAssessmentStore(url) as store:

        def explain(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
            if statement.lstrip().upper().startswith("SELECT") and "assessments" in statement:
                plan = cursor.connection.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
                plans.extend(row[-1] for row in plan)

        sa.event.listen(store._engine, "before_cursor_execute", explain)
        save(store, [make_record("DEC-1"), make_record("DEC-2")])
        save_atomic(store, [make_record("DEC-1"), make_record("DEC-3")])
        save(store, [make_record("DEC-1", content="b")])  # a conflict: the writer reads the stored row

    assert plans, "the writer ran no lookups on assessments"
    assert not [p for p in plans if p.startswith("SCAN assessments")], plans


def test_atomic_rollback_leaves_the_rest_of_the_group_commit_alone(
    store: SqlAssessmentStore, database_url: str
) -> None:
    save(store, [make_record("STORED")])
    blocker = WriteBlocker(database_url)  # everything below shares one batch, in this order
    try:
        before = store.save_many([make_record("EARLY"), make_record("SHARED")])
        against_stored = store.save_many([make_record("A-1"), make_record("STORED", content="b")], atomic=True)
        against_batch = store.save_many([make_record("A-2"), make_record("EARLY", content="b")], atomic=True)
        clean = store.save_many([make_record("A-3"), make_record("SHARED")], atomic=True)
        after = store.save_many([make_record("A-1"), make_record("LATE")])
    finally:
        blocker.release()

    assert [(r.created, r.conflict) for r in before.result(timeout=30)] == [(True, False), (True, False)]
    assert [(r.created, r.conflict) for r in against_stored.result(timeout=30)] == [(False, False), (False, True)]
    assert [(r.created, r.conflict) for r in against_batch.result(timeout=30)] == [(False, False), (False, True)]
    assert [(r.created, r.conflict) for r in clean.result(timeout=30)] == [(True, False), (False, False)]
    # A-1 was left out by the rolled-back submission, so the later one creates it.
    assert [(r.created, r.conflict) for r in after.result(timeout=30)] == [(True, False), (True, False)]
    assert store.get("A-2", 1) is None
    assert {a for a in ("STORED", "EARLY", "SHARED", "A-1", "A-3", "LATE") if store.get(a, 1) is None} == set()
    assert store.count() == 6


@pytest.mark.parametrize("poison", ["unserialisable", "duplicate_assessment_id", "too_long_id"])
def test_a_poison_submission_fails_alone(
    store: SqlAssessmentStore, database_url: str, poison: str, caplog: pytest.LogCaptureFixture
) -> None:
    if poison == "too_long_id" and database_url.startswith("sqlite"):
        pytest.skip("SQLite does not enforce VARCHAR lengths")
    existing = make_record("EXISTING")
    save(store, [existing])
    if poison == "unserialisable":  # fails while encoding, before any SQL
        bad = make_record("BAD", incoterm=object())
    elif poison == "duplicate_assessment_id":  # fails in the database on both backends
        declaration = make_declaration("BAD")
        bad = AssessmentRecord(
            make_assessment(declaration, assessment_id=existing.assessment.assessment_id), declaration, "a" * 64
        )
    else:  # PostgreSQL refuses a value longer than the column
        bad = make_record("X" * 80)
    good = [[make_record(f"OK-{i}"), make_record(f"OK-{i}", 2)] for i in range(10)]
    caplog.set_level(logging.WARNING, logger="risk_service.store")

    blocker = WriteBlocker(database_url)  # so everything below queues up and shares a batch
    try:
        good_futures = [store.save_many(records) for records in good[:5]]
        bad_future = store.save_many([make_record("OK-with-bad"), bad])
        good_futures += [store.save_many(records) for records in good[5:]]
    finally:
        blocker.release()

    with pytest.raises(Exception) as failure:  # the driver's or the encoder's error, whatever it is
        bad_future.result(timeout=30)
    # Neither the error (which callers log) nor the store's log lines carry the filings.
    for payload_text in ('{"format":', "Broker Co", "power supplies", "R-VALUE-LOW"):
        assert payload_text not in str(failure.value)
        assert payload_text not in caplog.text
    for future in good_futures:
        assert [r.created for r in future.result(timeout=30)] == [True, True]
    assert store.count() == 21
    assert store.get("OK-with-bad", 1) is None  # the poison's whole submission is left out, not half-written
    if poison != "unserialisable":
        assert "retrying each on its own" in caplog.text


def test_close_writes_what_is_queued(database_url: str) -> None:
    migrations.upgrade(database_url)
    store = SqlAssessmentStore(database_url)
    blocker = WriteBlocker(database_url)
    futures = [store.save_many([make_record(f"Q-{i}")]) for i in range(50)]
    releaser = threading.Timer(0.3, blocker.release)
    releaser.start()

    store.close()
    store.close()  # idempotent

    releaser.join()
    assert all(f.done() and f.result()[0].created for f in futures)
    assert not store.ping()
    with pytest.raises(Unavailable):
        store.save_many([make_record("LATE")]).result(timeout=5)
    reopened = SqlAssessmentStore(database_url)
    try:
        assert reopened.count() == 50
    finally:
        reopened.close()


def test_entity_history_counts_distinct_declarations_from_the_earliest_lodgement(
    store: SqlAssessmentStore, database_url: str
) -> None:
    def record(
        declaration_id: str, version: int, importer_id: str, lodged: datetime | None, assessed: datetime
    ) -> AssessmentRecord:
        declaration = make_declaration(declaration_id, version, importer_id=importer_id, lodged=lodged)
        return AssessmentRecord(make_assessment(declaration, at=assessed), declaration, "h" * 64)

    day = timedelta(days=1)
    b1_lodged = datetime(2025, 3, 1, 18, 0, tzinfo=timezone(timedelta(hours=9)))
    save(
        store,
        [
            # Assessed in the opposite order to lodgement: lodgement time decides, not assessment time.
            record("A-1", 1, "IMP-A", T0 + 3 * day, T0),
            record("A-1", 2, "IMP-A", T0 + 4 * day, T0 + day),  # a new version is not a new filing
            record("A-2", 1, "IMP-A", T0 + day, T0 + 9 * day),
            record("A-3", 1, "IMP-A", None, T0 - 9 * day),  # no lodgement time: left out
            record("B-1", 1, "IMP-B", b1_lodged, T0),
            record("C-1", 1, "IMP-C", None, T0),
            record("N-1", 1, "", T0, T0),
        ],
    )

    history = store.entity_history()

    b1 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    assert history["importer"] == {"IMP-A": (T0 + day, 2), "IMP-B": (b1, 1)}
    # every filing names broker DCL-9 and two trade lanes; N-1 names no importer, so no office pair
    assert history["declarant"] == {"DCL-9": (b1, 4)}  # B-1 was lodged first
    assert history["hs_origin"] == {"850440\x1fCN": (b1, 4), "620342\x1fVN": (b1, 4)}
    assert history["office_importer"] == {"KR-SEL\x1fIMP-A": (T0 + day, 2), "KR-SEL\x1fIMP-B": (b1, 1)}
    assert all(first.tzinfo is not None for kind in history.values() for first, _ in kind.values())
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        lodged = dict(conn.execute(sa.select(assessments.c.declaration_id, assessments.c.lodged_at)).all())
    engine.dispose()
    assert lodged["A-2"] == T0 + day and lodged["C-1"] is None


def test_store_history_agrees_with_the_training_features(store: SqlAssessmentStore) -> None:
    import pandas as pd  # type: ignore[import-untyped]

    from features import add_entity_history

    day = timedelta(days=1)
    filings = [("F-1", "IMP-F", T0 + 2 * day), ("F-2", "IMP-F", T0), ("F-3", "IMP-F", T0 + 5 * day)]
    save(store, [make_record(d, importer_id=i, lodged=t) for d, i, t in filings])
    later = T0 + 30 * day
    rows = [(d, i, t) for d, i, t in filings] + [("NEXT", "IMP-F", later)]
    frame = pd.DataFrame(
        [(d, i, "DCL-9", "KR-SEL", "850440", "CN", False, False, t) for d, i, t in rows],
        columns=["declaration_id", "importer_id", "declarant_id", "customs_office", "hs_code", "origin_country",
                 "inspected", "finding", "lodgement_time"],
    )  # fmt: skip

    expected = add_entity_history(frame).set_index("declaration_id").loc["NEXT"]
    history = store.entity_history()
    for kind, key in [("importer", "IMP-F"), ("declarant", "DCL-9"), ("hs_origin", "850440\x1fCN"),
                      ("office_importer", "KR-SEL\x1fIMP-F")]:  # fmt: skip
        first_seen, filings_count = history[kind][key]
        assert filings_count == expected[f"{kind}_prior_filings"], kind
        assert (later - first_seen).total_seconds() / 86400.0 == pytest.approx(expected[f"{kind}_days_known"])


def test_empty_save_and_ping(store: SqlAssessmentStore) -> None:
    assert store.save_many([]).result(timeout=1) == []
    assert store.ping()
    assert store.count() == 0


def test_mismatched_assessment_and_declaration_are_refused(store: SqlAssessmentStore) -> None:
    record = make_record()
    wrong = AssessmentRecord(record.assessment, make_declaration("OTHER"), record.content_hash)

    with pytest.raises(ValueError, match="not for the declaration"):
        save(store, [wrong])
    assert store.count() == 0
