"""Rules-only mode, hot model swap under load, and rule-set reload without restart."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos.risk.v1 import assessment_pb2
from protos.risk.v1 import risk_scoring_service_pb2 as pb
from risk_service.domain.rules import DEFAULT_RULES_PATH
from tests.builders import declaration_pb
from tests.grpc.conftest import train_and_register
from tests.serving import ServerThread, make_settings, wait_for


def score(stub) -> assessment_pb2.Assessment:  # type: ignore[no-untyped-def]
    return stub.ScoreDeclaration(pb.ScoreDeclarationRequest(declaration=declaration_pb()), timeout=10).assessment


def model_health(channel: grpc.Channel) -> int:
    health = health_pb2_grpc.HealthStub(channel)
    return health.Check(health_pb2.HealthCheckRequest(service="risk.v1.RiskScoringService/model"), timeout=5).status


def test_without_a_model_rules_alone_score_and_say_so(tmp_path: Path, database_url: str) -> None:
    with ServerThread(make_settings(tmp_path, database_url=database_url)) as server, server.channel() as channel:
        a = score(server.stub(channel))
        assert a.model_status == assessment_pb2.MODEL_STATUS_UNAVAILABLE
        assert not a.HasField("model_score") and a.model_name == "" and a.model_version == ""
        assert not a.contributions
        assert a.rule_set_version
        assert model_health(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
        overall = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert overall.status == health_pb2.HealthCheckResponse.SERVING


def test_a_promotion_is_swapped_in_while_scoring_without_a_single_error(tmp_path: Path) -> None:
    registry = train_and_register(tmp_path / "reg", seed=3)
    settings = make_settings(tmp_path, tracking_uri=registry.tracking_uri)
    with ServerThread(settings) as server, server.channel() as channel:
        stub = server.stub(channel)
        versions: list[str] = []
        errors: list[BaseException] = []
        stop = threading.Event()

        def keep_scoring() -> None:
            while not stop.is_set():
                try:
                    versions.append(score(stub).model_version)
                except grpc.RpcError as err:
                    errors.append(err)

        workers = [threading.Thread(target=keep_scoring) for _ in range(4)]
        for w in workers:
            w.start()
        promoted = train_and_register(tmp_path / "reg", seed=4)  # same store: the alias moves to a new version
        wait_for(lambda: versions and versions[-1] == promoted.version, timeout=60)
        stop.set()
        for w in workers:
            w.join()
        assert not errors
        assert set(versions) == {registry.version, promoted.version}
        assert versions.index(promoted.version) > 0
        # once the new version answered, the old one never did again
        first_new = versions.index(promoted.version)
        assert all(v == promoted.version for v in versions[first_new + 8 :])


def test_rule_set_reloads_without_restart_and_a_broken_file_keeps_the_old_set(tmp_path: Path) -> None:
    shutil.copytree(
        DEFAULT_RULES_PATH.parent, tmp_path / "rules", ignore=shutil.ignore_patterns("*.py", "*.md", "__pycache__")
    )
    rules = tmp_path / "rules" / DEFAULT_RULES_PATH.name
    original = score_version = None
    settings = make_settings(tmp_path, rules_path=rules, reload_interval_s=0.1)
    with ServerThread(settings) as server, server.channel() as channel:
        stub = server.stub(channel)
        original = score(stub).rule_set_version
        text = rules.read_text()
        rules.write_text(text.replace(f'version: "{original}"', 'version: "test-reloaded"', 1))
        wait_for(lambda: score(stub).rule_set_version == "test-reloaded")
        rules.write_text("version: broken\nrules:\n  - id: X\n    condition: 'item.nope >'\n")
        wait_for(rules_reload_failed)
        score_version = score(stub).rule_set_version
        # a nesting too deep for the parser is refused the same way and the server keeps serving
        rules.write_text("rules: " + "[" * 5000 + "\n")
        time.sleep(0.5)
        assert score(stub).rule_set_version == "test-reloaded"
    assert original and score_version == "test-reloaded"


def rules_reload_failed() -> bool:
    """Read off the gauge the service exports (the server runs in this process)."""
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("risk_rules_reload_failed") == 1.0
