"""One real server per test module and database for the permit tests; tests keep apart by unique ids."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from protos.risk.v1 import permit_service_pb2_grpc as ppb_grpc
from protos.risk.v1 import risk_scoring_service_pb2_grpc as pb_grpc
from tests.grpc.conftest import Registry
from tests.grpc.permits.helpers import DATABASES, module_server
from tests.serving import ServerThread


@pytest.fixture(scope="module", params=DATABASES)
def server(
    request: pytest.FixtureRequest,
    registry: Registry,
    postgres_available: bool,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerThread]:
    with module_server(request, registry, postgres_available, tmp_path_factory) as running:
        yield running


@pytest.fixture(scope="module")
def channel(server: ServerThread) -> Iterator[grpc.Channel]:
    with server.channel() as ch:
        yield ch


@pytest.fixture(scope="module")
def permits(channel: grpc.Channel) -> ppb_grpc.PermitServiceStub:
    return ppb_grpc.PermitServiceStub(channel)


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> pb_grpc.RiskScoringServiceStub:
    return pb_grpc.RiskScoringServiceStub(channel)
