"""The Prometheus endpoint says whether a model scores, which versions serve, and what was assessed."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

from protos.risk.v1 import risk_scoring_service_pb2 as pb
from tests.builders import declaration_pb
from tests.grpc.conftest import Registry
from tests.serving import ServerThread, make_settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def metric(text: str, prefix: str) -> float:
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)]
    assert values, f"no sample starting with {prefix}"
    return sum(values)


def test_metrics_report_the_model_in_service_and_assessments(tmp_path: Path, registry: Registry) -> None:
    port = free_port()
    settings = make_settings(tmp_path, tracking_uri=registry.tracking_uri, server={"metrics_port": port})
    with ServerThread(settings) as server, server.channel() as channel:
        before = metric(scrape(port), "risk_assessments_total{") if "risk_assessments_total{" in scrape(port) else 0
        server.stub(channel).ScoreDeclaration(pb.ScoreDeclarationRequest(declaration=declaration_pb()), timeout=10)
        text = scrape(port)
    assert metric(text, "risk_model_available") == 1.0
    assert f'model_version="{registry.version}"' in text
    assert 'cargo_model_name="container-risk"' in text and 'cargo_model_version="none"' in text  # none trained
    assert metric(text, 'risk_assessments_total{channel="') == before + 1
    assert metric(text, "risk_rules_reload_failed") == 0.0


def test_metrics_say_when_rules_alone_score(tmp_path: Path) -> None:
    port = free_port()
    with ServerThread(make_settings(tmp_path, server={"metrics_port": port})):
        text = scrape(port)
    assert metric(text, "risk_model_available") == 0.0
    assert 'model_status="UNAVAILABLE"' in text


def test_a_rolled_back_batch_is_not_counted_as_scored(tmp_path: Path, registry: Registry) -> None:
    import grpc
    import pytest

    from tests.builders import declaration, declaration_to_pb

    port = free_port()
    settings = make_settings(tmp_path, tracking_uri=registry.tracking_uri, server={"metrics_port": port})
    with ServerThread(settings) as server, server.channel() as channel:
        stub = server.stub(channel)
        earlier = declaration()
        stub.ScoreDeclaration(pb.ScoreDeclarationRequest(declaration=declaration_to_pb(earlier)), timeout=10)
        text = scrape(port)
        before = metric(text, 'risk_assessments_total{channel="')
        rolled_back = 'risk_refused_total{reason="BATCH_ROLLED_BACK"}'
        refused_before = metric(text, rolled_back) if rolled_back in text else 0.0
        changed = declaration(declaration_id=earlier.declaration_id, invoice_amount=1.0)
        batch = [declaration_to_pb(d) for d in (declaration(), changed, declaration())]
        with pytest.raises(grpc.RpcError):
            stub.ScoreDeclarations(pb.ScoreDeclarationsRequest(declarations=batch), timeout=10)
        text = scrape(port)
    assert metric(text, 'risk_assessments_total{channel="') == before
    assert metric(text, rolled_back) == refused_before + 3


def test_cargo_reports_and_their_containers_are_counted(tmp_path: Path) -> None:
    from risk_service.domain.declaration import Party
    from risk_service.grpc.cargo_convert import cargo_report_to_pb
    from tests.cargo_builders import cargo_report

    def count(text: str, prefix: str) -> float:
        return metric(text, prefix) if prefix in text else 0.0

    port = free_port()
    with ServerThread(make_settings(tmp_path, server={"metrics_port": port})) as server, server.channel() as channel:
        held = 'risk_cargo_reports_total{filing_type="PRE_LOADING",pre_loading_outcome="DO_NOT_LOAD"}'
        before = scrape(port)
        watched = cargo_report(report_id="CR-METRICS", consignee=Party("NL000000000003"))
        request = pb.ScoreCargoReportRequest(cargo_report=cargo_report_to_pb(watched))
        server.stub(channel).ScoreCargoReport(request, timeout=10)
        text = scrape(port)
    assert count(text, held) == count(before, held) + 1
    opened = 'risk_cargo_containers_total{outcome="PHYSICAL_EXAMINATION",random_control="false"}'
    assert count(text, opened) == count(before, opened) + 1
    assert count(text, "risk_cargo_scoring_seconds_count") == count(before, "risk_cargo_scoring_seconds_count") + 1


def test_officers_actions_and_their_refusals_are_counted(tmp_path: Path) -> None:
    import grpc

    from protos.risk.v1 import review_service_pb2 as rpb
    from protos.risk.v1 import review_service_pb2_grpc as rpb_grpc
    from risk_service.domain.declaration import Party
    from tests.builders import declaration, declaration_to_pb

    def count(text: str, prefix: str) -> float:
        return metric(text, prefix) if prefix in text else 0.0

    done = 'risk_review_actions_total{action="claim",outcome="DONE"}'
    stale = 'risk_review_actions_total{action="claim",outcome="ABORTED"}'
    port = free_port()
    with ServerThread(make_settings(tmp_path, server={"metrics_port": port})) as server, server.channel() as channel:
        before = scrape(port)
        d = declaration(exporter=Party("DE000000000002"))  # watch-listed: RED, so a case opens
        server.stub(channel).ScoreDeclaration(pb.ScoreDeclarationRequest(declaration=declaration_to_pb(d)), timeout=10)
        review = rpb_grpc.ReviewServiceStub(channel)
        claim = rpb.ClaimCaseRequest(case_id=d.declaration_id, expected_version=1, officer="kim")
        review.ClaimCase(claim, timeout=10)
        try:
            review.ClaimCase(
                rpb.ClaimCaseRequest(case_id=d.declaration_id, expected_version=1, officer="lee"), timeout=10
            )
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.ABORTED
        else:
            raise AssertionError("a stale claim was accepted")
        text = scrape(port)
    assert count(text, done) == count(before, done) + 1
    assert count(text, stale) == count(before, stale) + 1
