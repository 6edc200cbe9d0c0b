"""A whole day at the border, through the real server with real credentials, on SQLite and PostgreSQL.

The clearance system files a day's declarations; every non-GREEN one opens a case; two officers race
for one case; officers record what their inspections found (the synthetic history's own outcomes, so
the truth is known for every declaration filed here); one case is released by an override with its
reason; an analyst reads the rule statistics; the results are exported as history and a model is
retrained on them with `risk train`, tracked in a real MLflow store.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from google.type import money_pb2
from mlflow import MlflowClient

from protos.risk.v1 import assessment_pb2, review_pb2
from protos.risk.v1 import review_service_pb2 as rpb
from protos.risk.v1 import review_service_pb2_grpc as rpb_grpc
from protos.risk.v1 import risk_scoring_service_pb2 as pb
from protos.risk.v1 import risk_scoring_service_pb2_grpc as pb_grpc
from risk_service.cli import main
from risk_service.settings import PermitSettings, PolicySettings, Role
from tests.builders import declaration_to_pb, declarations_from_history
from tests.grpc.conftest import Registry
from tests.grpc.test_review import race_to_claim, review_server
from tests.serving import ServerThread
from training.history import read_history
from training.synthetic import generate_history

START = date(2026, 8, 1)
CALLERS = {"clearance": [Role.CLEARANCE], "kim": [Role.OFFICER], "lee": [Role.OFFICER], "park": [Role.ANALYST]}


def secret(who: str) -> str:
    return f"day-token-{who}-0123456789"


def as_(who: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {secret(who)}")]


@pytest.fixture
def server(tmp_path: Path, database_url: str, registry: Registry) -> Iterator[ServerThread]:
    running = review_server(tmp_path, database_url, registry, CALLERS, secret)
    # Random controls give the next model unbiased labels; the synthetic permits are not registered here.
    running.settings.policy = PolicySettings(random_control_rate=0.15)
    running.settings.permits = PermitSettings(enabled=False)
    with running:
        yield running


def test_a_whole_day_from_filing_to_a_retrained_model(
    server: ServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = generate_history(5000, seed=11, start=START, days=90)
    # Only declarations the history inspected: their outcome is known whatever the service flags.
    known = history[history.groupby("declaration_id")["inspected"].transform("any")]
    truth = known.groupby("declaration_id").agg(finding=("finding", "max"), revenue=("revenue_recovered", "sum"))
    finding_items = known[known["finding"] == 1].groupby("declaration_id")["item_number"].apply(list).to_dict()
    declarations = declarations_from_history(known)
    assert len(declarations) > 300

    with server.channel() as channel:
        scoring = pb_grpc.RiskScoringServiceStub(channel)
        review = rpb_grpc.ReviewServiceStub(channel)

        # -- the clearance system files the day's declarations ---------------------------------
        assessments = []
        for start in range(0, len(declarations), 100):
            batch = [declaration_to_pb(d) for d in declarations[start : start + 100]]
            request = pb.ScoreDeclarationsRequest(declarations=batch)
            assessments += scoring.ScoreDeclarations(request, metadata=as_("clearance"), timeout=60).assessments
        flagged = {a.declaration_id: a for a in assessments if a.channel != assessment_pb2.CHANNEL_GREEN}
        assert 50 < len(flagged) < len(declarations)
        assert any(a.random_control for a in flagged.values())

        # -- every non-GREEN assessment opened a case ---------------------------------------------
        cases: list[review_pb2.Case] = []
        token = ""
        while True:
            page = review.ListCases(
                rpb.ListCasesRequest(page_size=100, page_token=token), metadata=as_("kim"), timeout=30
            )
            cases += page.cases
            token = page.next_page_token
            if not token:
                break
        assert {c.case_id for c in cases} == set(flagged)
        assert all(c.status == review_pb2.CASE_STATUS_OPEN for c in cases)
        scores = [c.risk_score for c in cases]
        assert scores == sorted(scores, reverse=True)  # the riskiest first

        # -- two officers race for the riskiest case ----------------------------------------------
        outcomes = race_to_claim(review, cases[0].case_id, ("kim", "lee"), as_)
        winners = [who for who, o in outcomes.items() if isinstance(o, review_pb2.Case)]
        assert len(winners) == 1, outcomes
        holder = {cases[0].case_id: winners[0]}

        # -- one case is released without inspection, with its reason ------------------------------
        released = cases[1]
        claimed = review.ClaimCase(
            rpb.ClaimCaseRequest(case_id=released.case_id, expected_version=released.version),
            metadata=as_("lee"),
            timeout=15,
        ).case
        override = review_pb2.ChannelOverride(
            channel=assessment_pb2.CHANNEL_GREEN,
            reason_code="SUPERVISOR_INSTRUCTION",
            reason_text="perishable goods, released on the shift supervisor's order",
        )
        overridden = review.OverrideChannel(
            rpb.OverrideChannelRequest(case_id=released.case_id, expected_version=claimed.version, override=override),
            metadata=as_("lee"),
            timeout=15,
        ).case
        review.CloseCase(
            rpb.CloseCaseRequest(case_id=released.case_id, expected_version=overridden.version),
            metadata=as_("lee"),
            timeout=15,
        )

        # -- officers inspect the rest and record what they found -----------------------------------
        recorded = Counter[str]()
        for n, case in enumerate(cases[2:] + cases[:1]):
            officer = holder.get(case.case_id) or ("kim" if n % 2 else "lee")
            current = review.GetCase(rpb.GetCaseRequest(case_id=case.case_id), metadata=as_(officer), timeout=15)
            version = current.detail.case.version
            if case.case_id not in holder:
                version = review.ClaimCase(
                    rpb.ClaimCaseRequest(case_id=case.case_id, expected_version=version),
                    metadata=as_(officer),
                    timeout=15,
                ).case.version
            found = bool(truth.loc[case.case_id, "finding"])
            revenue = float(truth.loc[case.case_id, "revenue"]) if found else 0.0
            result = review_pb2.InspectionResult(
                outcome=review_pb2.INSPECTION_OUTCOME_DISCREPANCY
                if found
                else review_pb2.INSPECTION_OUTCOME_NO_DISCREPANCY,
                finding_codes=["UNDERVALUATION"] if found else [],
                revenue_recovered=money_pb2.Money(currency_code="KRW", units=int(revenue)),
                item_numbers=finding_items.get(case.case_id, []) if found else [],
            )
            version = review.RecordInspectionResult(
                rpb.RecordInspectionResultRequest(case_id=case.case_id, expected_version=version, result=result),
                metadata=as_(officer),
                timeout=15,
            ).case.version
            closed = review.CloseCase(
                rpb.CloseCaseRequest(case_id=case.case_id, expected_version=version), metadata=as_(officer), timeout=15
            ).case
            assert closed.status == review_pb2.CASE_STATUS_CLOSED
            recorded["finding" if found else "clean"] += 1
        assert recorded["finding"] >= 10 and recorded["clean"] >= 10

        closed_ids = {
            c.case_id
            for c in review.ListCases(
                rpb.ListCasesRequest(statuses=[review_pb2.CASE_STATUS_CLOSED], page_size=500),
                metadata=as_("park"),
                timeout=30,
            ).cases
        }
        assert closed_ids == set(flagged)

        # -- the analyst reads what each rule found ----------------------------------------------
        since, until = datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
        stats_request = rpb.GetRuleStatsRequest()
        stats_request.since.FromDatetime(since)
        stats_request.until.FromDatetime(until)
        stats = review.GetRuleStats(stats_request, metadata=as_("park"), timeout=60)
        assert stats.declarations == len(declarations) and stats.inspected == len(flagged) - 1
        assert stats.currency == "KRW"
        inspected_ids = set(flagged) - {released.case_id}
        for stat in stats.stats:
            hit = {a.declaration_id for a in assessments if stat.rule_id in {h.rule_id for h in a.rule_hits}}
            assert stat.hits == len(hit), stat.rule_id
            assert stat.inspected_hits == len(hit & inspected_ids), stat.rule_id
            assert stat.findings == sum(bool(truth.loc[i, "finding"]) for i in hit & inspected_ids), stat.rule_id
            if stat.inspected_hits:
                assert stat.finding_rate == pytest.approx(stat.findings / stat.inspected_hits)
        assert any(s.findings for s in stats.stats)

    # -- the results become labels, and a model is retrained on them ------------------------------
    monkeypatch.setenv("RISK_DATABASE_URL", server.settings.resolved_database_url)
    monkeypatch.setenv("RISK_DATA_DIR", str(tmp_path / "cli"))
    tracking_uri = f"sqlite:///{tmp_path / 'retrain.db'}"
    monkeypatch.setenv("RISK_MODEL__TRACKING_URI", tracking_uri)
    exported = tmp_path / "labels.csv"
    assert main(["data", "export", str(exported)]) == 0
    labels = read_history(exported)
    per_declaration = labels.groupby("declaration_id").agg(inspected=("inspected", "max"), finding=("finding", "max"))
    assert set(per_declaration.index[per_declaration["inspected"]]) == inspected_ids
    assert per_declaration.loc[list(inspected_ids), "finding"].sum() == recorded["finding"]
    randoms = labels[labels["random_control"]]["declaration_id"].unique()
    # random controls stay marked, so the next evaluation can be unbiased (the released one was not inspected)
    assert set(randoms) == {a.declaration_id for a in assessments if a.random_control} - {released.case_id}

    assert main(["train", str(exported), "--valid-from", "2026-10-01", "--experiment", "day-retrain"]) == 0
    versions = MlflowClient(tracking_uri).search_model_versions("name='declaration-risk'")
    assert len(versions) == 1
    run = MlflowClient(tracking_uri).get_run(versions[0].run_id)
    assert run.data.metrics  # trained and evaluated on the officers' labels
