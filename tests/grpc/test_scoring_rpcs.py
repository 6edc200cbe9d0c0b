"""Scoring RPCs end to end: real server, real store (SQLite and PostgreSQL), real MLflow champion."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from protos.risk.v1 import assessment_pb2
from protos.risk.v1 import risk_scoring_service_pb2 as pb
from risk_service.store import SqlAssessmentStore
from tests.builders import declaration, declaration_to_pb, item, load_declaration_json
from tests.grpc.conftest import MODEL_NAME, Registry
from tests.grpc.status import error_reason, field_violations
from tests.serving import ServerThread

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "declaration_sample.json"


def score(stub, message):  # type: ignore[no-untyped-def]
    return stub.ScoreDeclaration(pb.ScoreDeclarationRequest(declaration=message), timeout=10).assessment


def test_sample_declaration_scores_with_model_and_rule_provenance(stub, registry: Registry) -> None:  # type: ignore[no-untyped-def]
    a = score(stub, load_declaration_json(str(SAMPLE)))
    assert a.declaration_id == "DEMO-2026-000001" and a.declaration_version == 1
    assert a.assessment_id
    assert a.model_status == assessment_pb2.MODEL_STATUS_SCORED
    assert a.model_name == MODEL_NAME and a.model_version == registry.version
    assert a.HasField("model_score") and 0.0 <= a.model_score <= 1.0
    assert 0.0 <= a.risk_score <= 1.0 and a.risk_score >= a.model_score
    assert a.rule_set_version
    assert a.assessment_time.seconds > 0
    # The sample is a new importer filing vague "parts": rules name the item and field they read.
    hits = {h.rule_id: h for h in a.rule_hits}
    assert any("items[0].description" in f for h in hits.values() for f in h.fields)
    assert a.channel != assessment_pb2.CHANNEL_GREEN
    assert a.contributions, "a flagged declaration carries model contributions"
    assert all(c.item_number == 1 for c in a.contributions)


def test_green_assessments_carry_no_contributions(stub) -> None:  # type: ignore[no-untyped-def]
    greens = []
    for _ in range(40):
        a = score(stub, declaration_to_pb(declaration(aeo_status=3)))
        if a.channel == assessment_pb2.CHANNEL_GREEN:
            greens.append(a)
    assert greens, "an ordinary AEO filing of laptops should be released"
    assert all(not a.contributions for a in greens)


def test_retry_returns_the_stored_assessment_unchanged(stub) -> None:  # type: ignore[no-untyped-def]
    message = declaration_to_pb(declaration())
    first = score(stub, message)
    again = score(stub, message)
    assert again == first


def test_same_version_with_other_content_is_refused(stub) -> None:  # type: ignore[no-untyped-def]
    d = declaration()
    score(stub, declaration_to_pb(d))
    changed = replace(d, invoice_amount=d.invoice_amount + 1)
    with pytest.raises(grpc.RpcError) as info:
        score(stub, declaration_to_pb(changed))
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_reason(info.value) == "DECLARATION_VERSION_CONFLICT"


def test_an_amendment_is_assessed_afresh_and_both_versions_stay(server: ServerThread, stub) -> None:  # type: ignore[no-untyped-def]
    d = declaration()
    v1 = score(stub, declaration_to_pb(d))
    v2 = score(stub, declaration_to_pb(replace(d, version=2, items=(item(customs_value=1000.0),))))
    assert v2.assessment_id != v1.assessment_id and v2.declaration_version == 2
    store = SqlAssessmentStore(server.settings.resolved_database_url)
    try:
        stored = store.history(d.declaration_id)
    finally:
        store.close()
    assert [(a.declaration_version, a.assessment_id) for a in stored] == [(1, v1.assessment_id), (2, v2.assessment_id)]


def test_batch_scores_in_request_order(stub) -> None:  # type: ignore[no-untyped-def]
    ds = [declaration() for _ in range(50)]
    response = stub.ScoreDeclarations(
        pb.ScoreDeclarationsRequest(declarations=[declaration_to_pb(d) for d in ds]), timeout=30
    )
    assert [a.declaration_id for a in response.assessments] == [d.declaration_id for d in ds]


def test_an_invalid_batch_is_refused_whole_and_nothing_is_stored(server: ServerThread, stub) -> None:  # type: ignore[no-untyped-def]
    good = declaration()
    bad = declaration(items=(item(), item(item_number=2, hs_code="12AB")))
    request = pb.ScoreDeclarationsRequest(declarations=[declaration_to_pb(good), declaration_to_pb(bad)])
    with pytest.raises(grpc.RpcError) as info:
        stub.ScoreDeclarations(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(info.value)) == {"declarations[1].items[1].hs_code"}
    store = SqlAssessmentStore(server.settings.resolved_database_url)
    try:
        assert store.get(good.declaration_id, 1) is None
    finally:
        store.close()


def test_a_batch_over_the_limit_is_refused(stub, server: ServerThread) -> None:  # type: ignore[no-untyped-def]
    limit = server.settings.server.max_batch_size
    request = pb.ScoreDeclarationsRequest(declarations=[declaration_to_pb(declaration()) for _ in range(limit + 1)])
    with pytest.raises(grpc.RpcError) as info:
        stub.ScoreDeclarations(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "declarations" in field_violations(info.value)


def test_stream_answers_each_declaration_in_order_and_survives_bad_ones(stub) -> None:  # type: ignore[no-untyped-def]
    ds = [declaration() for _ in range(120)]
    ds[7] = declaration(invoice_currency="???")
    requests = [pb.StreamScoreDeclarationsRequest(declaration=declaration_to_pb(d)) for d in ds]
    responses = list(stub.StreamScoreDeclarations(iter(requests), timeout=60))
    assert [r.declaration_id for r in responses] == [d.declaration_id for d in ds]
    assert responses[7].WhichOneof("result") == "error"
    assert responses[7].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert all(r.WhichOneof("result") == "assessment" for i, r in enumerate(responses) if i != 7)


def test_health_is_serving_with_a_model(channel) -> None:  # type: ignore[no-untyped-def]
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "risk.v1.RiskScoringService", "risk.v1.RiskScoringService/model"):
        response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert response.status == health_pb2.HealthCheckResponse.SERVING, service


def test_reflection_lists_the_services(channel) -> None:  # type: ignore[no-untyped-def]
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert {"risk.v1.RiskScoringService", "grpc.health.v1.Health"} <= names


def test_a_batch_with_a_conflicting_version_stores_nothing_and_names_it(server: ServerThread, stub) -> None:  # type: ignore[no-untyped-def]
    earlier = declaration()
    score(stub, declaration_to_pb(earlier))
    fresh = [declaration(), declaration()]
    batch = [fresh[0], replace(earlier, invoice_amount=earlier.invoice_amount * 2), fresh[1]]
    request = pb.ScoreDeclarationsRequest(declarations=[declaration_to_pb(d) for d in batch])
    with pytest.raises(grpc.RpcError) as info:
        stub.ScoreDeclarations(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_reason(info.value) == "DECLARATION_VERSION_CONFLICT"
    assert "declarations[1]" in (info.value.details() or "")
    store = SqlAssessmentStore(server.settings.resolved_database_url)
    try:
        assert all(store.get(d.declaration_id, 1) is None for d in fresh)
    finally:
        store.close()
    # the batch without the conflict goes through, and a retry of it returns the same assessments
    ok = pb.ScoreDeclarationsRequest(declarations=[declaration_to_pb(d) for d in fresh])
    first = stub.ScoreDeclarations(ok, timeout=10)
    assert stub.ScoreDeclarations(ok, timeout=10) == first


def test_health_watch_streams_the_status(channel) -> None:  # type: ignore[no-untyped-def]
    health = health_pb2_grpc.HealthStub(channel)
    call = health.Watch(health_pb2.HealthCheckRequest(service="risk.v1.RiskScoringService"), timeout=5)
    first = next(iter(call))
    call.cancel()
    assert first.status == health_pb2.HealthCheckResponse.SERVING
