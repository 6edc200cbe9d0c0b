"""The container-targeting model served: scores, contributions, hot swap and entity history, through
the real server on SQLite and PostgreSQL with real LightGBM models in a temporary MLflow store."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import grpc
import pytest

from features.cargo import CONTAINER_FEATURE_NAMES
from protos.risk.v1 import assessment_pb2, cargo_pb2
from risk_service.domain.cargo.model import CargoReport, FilingType
from risk_service.domain.declaration import Party
from risk_service.store.cargo_store import SqlCargoStore
from tests.cargo_builders import PLANNED_LOADING, cargo_item
from tests.grpc.conftest import Registry, train_and_register
from tests.grpc.test_cargo_rpcs import clean_report, score
from tests.serving import ServerThread, make_settings, wait_for

CONTAINER_MODEL = "container-risk"


@dataclass(frozen=True)
class ContainerRegistry:
    tracking_uri: str
    version: str


def register_container_model(root: Path, *, seed: int) -> ContainerRegistry:
    from features.kinds import CONTAINER
    from models.registry import log_and_register
    from training.synthetic_cargo import generate_cargo_history
    from training.train import train_model

    history = generate_cargo_history(3000, seed=seed, start=date(2025, 1, 1), days=300)
    model, metrics = train_model(history, seed=seed, num_boost_round=60, kind=CONTAINER, name=CONTAINER_MODEL)
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    version = log_and_register(
        model,
        tracking_uri=tracking_uri,
        model_name=CONTAINER_MODEL,
        experiment="tests",
        artifact_location=(root / "mlartifacts").as_uri(),
        params={"seed": seed},
        metrics=metrics,
        alias="champion",
    )
    return ContainerRegistry(tracking_uri, version)


@pytest.fixture(scope="module")
def both_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Registry, ContainerRegistry]:
    """A declaration champion and a container champion in one MLflow store, as `risk serve --demo` leaves them."""
    root = tmp_path_factory.mktemp("mlflow")
    return train_and_register(root), register_container_model(root, seed=2)


def suspicious_report(**overrides: object) -> CargoReport:
    """Pre-arrival: one clean container, and one unsealed, vaguely described, far heavier than its packages."""
    first, second = clean_report().containers
    odd = replace(
        second,
        seal_numbers=(),
        gross_mass_kg=9000.0,
        packages=12,
        items=(cargo_item(description="General cargo", packages=12, gross_mass_kg=9000.0),),
    )
    base = clean_report(
        report_id="CR-MODEL-1",
        filing_type=FilingType.PRE_ARRIVAL,
        filing_time=PLANNED_LOADING + timedelta(days=1),
        transshipment_ports=("MYPKG",),
        containers=(first, odd),
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def test_the_container_model_scores_every_container_and_explains_the_flagged_ones(
    both_models: tuple[Registry, ContainerRegistry], tmp_path: Path, database_url: str
) -> None:
    _, containers = both_models
    settings = make_settings(tmp_path, database_url=database_url, tracking_uri=containers.tracking_uri)
    with ServerThread(settings) as server, server.channel() as channel:
        a = score(server.stub(channel), suspicious_report())
    assert a.model_status == assessment_pb2.MODEL_STATUS_SCORED
    assert (a.model_name, a.model_version) == (CONTAINER_MODEL, containers.version)
    by_number = {c.container_number: c for c in a.containers}
    clean, odd = (by_number[c.container_number] for c in suspicious_report().containers)
    for c in (clean, odd):
        assert c.HasField("model_score") and 0.0 <= c.model_score <= 1.0
        assert c.risk_score >= c.model_score  # rule weights only add to the model's probability
    assert odd.model_score > clean.model_score  # no seal, vague, heavy: the planted patterns
    assert odd.outcome != cargo_pb2.CONTAINER_OUTCOME_NO_ACTION
    assert odd.contributions, "a container an officer acts on says why"
    assert {f.feature for f in odd.contributions} <= set(CONTAINER_FEATURE_NAMES)
    assert all(f.contribution != 0.0 for f in odd.contributions)
    if clean.outcome == cargo_pb2.CONTAINER_OUTCOME_NO_ACTION:
        assert not clean.contributions  # contributions cost time: only where an officer will read them


def test_without_a_container_model_cargo_is_scored_by_rules_and_says_so(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url=database_url, tracking_uri=f"sqlite:///{tmp_path / 'empty.db'}")
    with ServerThread(settings) as server, server.channel() as channel:
        a = score(server.stub(channel), suspicious_report())
    assert a.model_status == assessment_pb2.MODEL_STATUS_UNAVAILABLE and a.model_name == ""
    assert all(not c.HasField("model_score") and not c.contributions for c in a.containers)


def test_a_new_container_champion_is_swapped_in_while_scoring_without_an_error(tmp_path: Path) -> None:
    first = register_container_model(tmp_path / "reg", seed=3)
    settings = make_settings(tmp_path, tracking_uri=first.tracking_uri)
    with ServerThread(settings) as server, server.channel() as channel:
        stub = server.stub(channel)
        versions: list[str] = []
        errors: list[grpc.RpcError] = []
        stop = threading.Event()

        def keep_scoring(worker: int) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                report = suspicious_report(report_id=f"CR-SWAP-{worker}-{n}")
                try:
                    versions.append(score(stub, report).model_version)
                except grpc.RpcError as err:
                    errors.append(err)

        workers = [threading.Thread(target=keep_scoring, args=(w,)) for w in range(3)]
        for w in workers:
            w.start()
        second = register_container_model(tmp_path / "reg", seed=4)  # the alias moves to a new version
        wait_for(lambda: bool(versions) and versions[-1] == second.version, timeout=60)
        stop.set()
        for w in workers:
            w.join()
    assert not errors
    assert set(versions) == {first.version, second.version} and versions[0] == first.version


def test_stored_reports_feed_the_consignee_history_the_model_reads(
    both_models: tuple[Registry, ContainerRegistry], tmp_path: Path, database_url: str
) -> None:
    _, containers = both_models
    settings = make_settings(tmp_path, database_url=database_url, tracking_uri=containers.tracking_uri)
    consignee = Party("KR-NEW-CONSIGNEE", "New Trading Co")
    early = suspicious_report(report_id="CR-HIST-1", consignee=consignee)
    later_time = PLANNED_LOADING + timedelta(days=3)
    later = suspicious_report(report_id="CR-HIST-2", consignee=consignee, filing_time=later_time)
    with ServerThread(settings) as server, server.channel() as channel:
        stub = server.stub(channel)
        score(stub, early)
        score(stub, replace(early, version=2, voyage_number="047W"))  # an amendment is not a second filing
        score(stub, later)
    with SqlCargoStore(settings.resolved_database_url) as store:
        known = store.entity_history()
    first_seen, filings = known["consignee"][consignee.id]
    assert filings == 2 and first_seen == early.filing_time
    # only the counts the model reads are kept; the declaration kinds are the declaration store's
    assert set(known) == {"consignee"}
