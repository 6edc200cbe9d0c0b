"""`risk serve` owns its process: it freezes what start-up built and collects garbage less often."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from risk_service.bootstrap import GC_YOUNG_THRESHOLD, tune_gc_for_serving
from tests.serving import ServerThread, make_settings


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    built_at_start_up = {"model": [1, 2, 3]}  # a container the collector tracks
    tune_gc_for_serving()
    assert gc.get_freeze_count() > 0
    assert not any(o is built_at_start_up for o in gc.get_objects())  # no longer scanned
    assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD

    garbage = [[]]  # a cycle made after start-up is still collected
    garbage[0].append(garbage)
    del garbage
    assert gc.collect() > 0


def test_risk_serve_tunes_its_own_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from risk_service import bootstrap, cli

    seen: dict[str, Any] = {}

    async def fake_serve(settings: Any, **kwargs: Any) -> None:
        seen.update(kwargs)

    monkeypatch.setattr(bootstrap, "serve", fake_serve)
    monkeypatch.setenv("RISK_DATA_DIR", str(tmp_path))
    assert cli.main(["serve"]) == 0
    assert seen["own_process"] is True


def test_a_server_inside_another_process_leaves_its_collector_alone(tmp_path: Path) -> None:
    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    with ServerThread(make_settings(tmp_path)):  # serve() as tests and embedders run it
        assert gc.get_threshold() == threshold
        assert gc.get_freeze_count() == frozen
