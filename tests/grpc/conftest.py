"""A real MLflow store with a real LightGBM champion, and a real server per test on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import grpc
import pytest

from protos.risk.v1 import review_service_pb2_grpc as rpb_grpc
from protos.risk.v1 import risk_scoring_service_pb2_grpc as pb_grpc
from tests.serving import ServerThread, make_settings

MODEL_NAME = "declaration-risk"


@dataclass(frozen=True)
class Registry:
    tracking_uri: str
    artifact_location: str
    version: str


def train_and_register(root: Path, *, seed: int = 1, alias: str | None = "champion") -> Registry:
    from models.registry import log_and_register
    from training.synthetic import generate_history
    from training.train import train_model

    history = generate_history(3000, seed=seed, start=date(2025, 1, 1), days=330)
    model, metrics = train_model(history, seed=seed, num_boost_round=60)
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    artifact_location = (root / "mlartifacts").as_uri()
    version = log_and_register(
        model,
        tracking_uri=tracking_uri,
        model_name=MODEL_NAME,
        experiment="tests",
        artifact_location=artifact_location,
        params={"seed": seed},
        metrics=metrics,
        alias=alias,
    )
    return Registry(tracking_uri, artifact_location, version)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return train_and_register(tmp_path_factory.mktemp("mlflow"))


@pytest.fixture
def server(database_url: str, registry: Registry, tmp_path: Path) -> Iterator[ServerThread]:
    settings = make_settings(tmp_path, database_url=database_url, tracking_uri=registry.tracking_uri)
    with ServerThread(settings) as running:
        yield running


@pytest.fixture
def channel(server: ServerThread) -> Iterator[grpc.Channel]:
    with server.channel() as ch:
        yield ch


@pytest.fixture
def stub(channel: grpc.Channel) -> pb_grpc.RiskScoringServiceStub:
    return pb_grpc.RiskScoringServiceStub(channel)


@pytest.fixture
def scoring(stub: pb_grpc.RiskScoringServiceStub) -> pb_grpc.RiskScoringServiceStub:
    """The scoring stub, by the name the review tests give it beside `review`."""
    return stub


@pytest.fixture
def review(channel: grpc.Channel) -> rpb_grpc.ReviewServiceStub:
    return rpb_grpc.ReviewServiceStub(channel)
