"""The audit trail through the real server on SQLite and PostgreSQL: every assessment, re-assessment,
cargo assessment and permit change is chained, `risk audit verify` finds it intact, and finds what
changed when a record or an entry is tampered with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from protos.risk.v1 import permit_service_pb2 as ppb
from protos.risk.v1 import permit_service_pb2_grpc as ppb_grpc
from risk_service.cli import _read_request, main
from risk_service.store import audit
from tests.grpc.permits.helpers import permit_pb, unique
from tests.serving import ServerThread, make_settings

DATA = Path(__file__).parents[1] / "data"


def _request(name: str) -> Any:
    """The request `risk score` sends for the example file."""
    return _read_request(DATA / name)


def _verify(database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    monkeypatch.setenv("RISK_DATABASE_URL", database_url)
    code = main(["audit", "verify"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_every_decision_and_permit_change_is_chained_and_tampering_shows(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path, database_url=database_url, tracking_uri=f"sqlite:///{tmp_path / 'ml.db'}")
    with ServerThread(settings) as server, server.channel() as channel:
        stub = server.stub(channel)
        # the README's cross-check pair: the declaration re-assesses the manifest filed before it
        stub.ScoreCargoReport(_request("cargo_report_manifest.json"), timeout=15)
        stub.ScoreDeclaration(_request("declaration_mass_mismatch.json"), timeout=15)
        stub.ScoreDeclaration(_request("declaration_sample.json"), timeout=15)
        permits = ppb_grpc.PermitServiceStub(channel)
        permit = permit_pb(unique("AUD-P"), agency="NFQS")
        permits.SubmitPermit(ppb.SubmitPermitRequest(permit=permit, request_id=unique("R"), actor="a"), timeout=15)
        revoke = ppb.RevokePermitRequest(permit_id=permit.permit_id, request_id=unique("R"), actor="b", reason="r")
        permits.RevokePermit(revoke, timeout=15)

    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT seq, kind, subject FROM audit_log ORDER BY seq")).all()
        kinds = [r.kind for r in rows]
        assert kinds.count("assessment") == 2 and kinds.count("cargo_assessment") == 1
        assert kinds.count("reassessment") == 1 and kinds.count("permit_change") == 2
        code, out = _verify(database_url, monkeypatch, capsys)
        assert code == 0 and f"audit trail intact: {len(rows)} entries" in out

        # the trail itself refuses changes
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text("UPDATE audit_log SET actor = 'someone else'"))
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM audit_log"))
        if engine.dialect.name == "postgresql":  # TRUNCATE fires no row trigger
            with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(sa.text("TRUNCATE audit_log"))

        # a stored assessment edited behind the service's back
        assessed = next(r for r in rows if r.kind == "assessment")
        with engine.begin() as conn:
            stored = conn.execute(
                sa.text("SELECT assessment FROM assessments WHERE assessment_id = :id"), {"id": assessed.subject}
            ).scalar_one()
            document = stored if isinstance(stored, dict) else json.loads(stored)
            document["channel"] = "CHANNEL_GREEN" if document.get("channel") != "CHANNEL_GREEN" else "CHANNEL_RED"
            conn.execute(
                sa.text("UPDATE assessments SET assessment = :doc WHERE assessment_id = :id").bindparams(
                    sa.bindparam("doc", type_=sa.JSON)
                ),
                {"doc": document, "id": assessed.subject},
            )
        code, out = _verify(database_url, monkeypatch, capsys)
        assert code == 1
        assert f"entry {assessed.seq}: its assessment {assessed.subject} was changed after it was stored" in out

        # an entry rewritten and another removed by someone who first dropped the triggers
        _drop_triggers(engine)
        permit_entry = next(r for r in rows if r.kind == "permit_change")
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE audit_log SET actor = 'nobody' WHERE seq = :s"), {"s": permit_entry.seq})
            conn.execute(sa.text("DELETE FROM audit_log WHERE seq = :s"), {"s": rows[1].seq})
        with engine.begin() as conn:  # an entry of a kind the service never writes
            conn.execute(
                sa.text(
                    "INSERT INTO audit_log (recorded_at, kind, subject, actor, payload_sha256, prev_hash, entry_hash) "
                    "VALUES (CURRENT_TIMESTAMP, 'bogus', 'x', 'x', 'x', 'x', 'x')"
                )
            )
        report = audit.verify(engine)
        messages = [str(p) for p in report.problems]
        assert any("has a kind the service never writes ('bogus')" in m for m in messages)
        assert f"entry {permit_entry.seq}: was changed after it was written (its hash differs)" in messages
        assert f"entry {rows[2].seq}: does not follow the entry before it (removed or inserted)" in messages
    finally:
        engine.dispose()


def _drop_triggers(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("DROP TRIGGER audit_log_append_only ON audit_log"))
        else:
            conn.execute(sa.text("DROP TRIGGER audit_log_no_update"))
            conn.execute(sa.text("DROP TRIGGER audit_log_no_delete"))


def test_numbers_hash_alike_however_the_database_hands_them_back() -> None:
    """PostgreSQL's JSONB returns 1e16 as 10000000000000000 and -0.0 as 0."""
    written = {"value": 1e16, "zero": -0.0, "rate": 0.1, "tiny": 1e-7, "items": [2.0, {"n": 1.5e20}]}
    read_back = {"items": [2, {"n": 150000000000000000000}], "tiny": 1e-07, "rate": 0.1, "zero": 0, "value": 10**16}
    assert audit.canonical_sha256(written) == audit.canonical_sha256(read_back)
    assert audit.canonical_sha256({"rate": 0.1}) != audit.canonical_sha256({"rate": 0.2})
    # past 2**53 JSONB keeps the float's shortest text: 2.0**60 comes back as 1152921504606847000
    assert audit.canonical_sha256({"n": 2.0**60}) == audit.canonical_sha256({"n": 1152921504606847000})


def test_verify_never_migrates_and_says_when_there_is_no_trail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    code, out = _verify(url, monkeypatch, capsys)
    assert code == 2 and "has no audit trail yet; run: risk db upgrade" in out
    assert not (tmp_path / "old.db").exists() or "audit_log" not in sa.inspect(sa.create_engine(url)).get_table_names()


def test_verify_names_a_database_it_cannot_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _verify(f"sqlite:///{tmp_path / 'no-such-folder' / 'risk.db'}", monkeypatch, capsys)
    assert code == 2 and "cannot open the database sqlite:///" in out and "RISK_DATABASE_URL" in out
    code, out = _verify("postgresql+psycopg://postgres:secret@127.0.0.1:5432/no_such_database", monkeypatch, capsys)
    assert code == 2 and "no_such_database" in out and "secret" not in out
