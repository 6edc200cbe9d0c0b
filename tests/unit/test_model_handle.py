"""The model handle swaps only fully loaded versions and keeps serving through bad promotions."""

from __future__ import annotations

import threading

import numpy as np

from risk_service.domain.model_handle import ModelHandle


class ConstantModel:
    feature_names = ("a",)
    feature_state = None

    def __init__(self, p: float) -> None:
        self.p = p

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        return np.full(len(matrix), self.p)

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        return np.zeros((len(matrix), 2))


class FakeSource:
    """An in-memory registry: `alias` names a version, `broken` versions fail to load."""

    name = "declaration-risk"

    def __init__(self) -> None:
        self.alias: str | None = None
        self.broken: set[str] = set()
        self.loads = 0

    def resolve(self) -> str | None:
        return self.alias

    def load(self, version: str) -> ConstantModel:
        self.loads += 1
        if version in self.broken:
            raise ValueError("feature schema mismatch")
        return ConstantModel(int(version) / 10)


def test_no_alias_means_no_model_and_a_reason() -> None:
    handle = ModelHandle(FakeSource())
    assert handle.refresh() is False
    assert handle.current is None
    assert handle.last_error and "alias" in handle.last_error


def test_a_new_alias_target_is_loaded_then_swapped() -> None:
    source = FakeSource()
    handle = ModelHandle(source)
    source.alias = "1"
    assert handle.refresh() is True
    assert handle.current is not None and handle.current.version == "1"
    source.alias = "2"
    assert handle.refresh() is True
    assert handle.current.version == "2"


def test_unchanged_alias_does_not_reload() -> None:
    source = FakeSource()
    source.alias = "1"
    handle = ModelHandle(source)
    handle.refresh()
    handle.refresh()
    assert source.loads == 1


def test_a_broken_version_never_replaces_the_serving_one() -> None:
    source = FakeSource()
    source.alias = "1"
    handle = ModelHandle(source)
    handle.refresh()
    source.alias = "2"
    source.broken.add("2")
    assert handle.refresh() is False
    assert handle.current is not None and handle.current.version == "1"
    assert handle.last_error and "version 2" in handle.last_error


def test_a_registry_outage_keeps_the_serving_model() -> None:
    source = FakeSource()
    source.alias = "1"
    handle = ModelHandle(source)
    handle.refresh()

    def down() -> str | None:
        raise ConnectionError("registry down")

    source.resolve = down  # type: ignore[method-assign]
    assert handle.refresh() is False
    assert handle.current is not None and handle.current.version == "1"


def test_readers_always_see_a_whole_model_during_swaps() -> None:
    source = FakeSource()
    source.alias = "1"
    handle = ModelHandle(source)
    handle.refresh()
    seen: list[tuple[str, float]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            loaded = handle.current
            assert loaded is not None
            seen.append((loaded.version, float(loaded.model.predict_proba(np.zeros((1, 1)))[0])))

    reader = threading.Thread(target=read)
    reader.start()
    for v in range(2, 9):
        source.alias = str(v)
        handle.refresh()
    stop.set()
    reader.join()
    # Each observation pairs a version with that version's own model.
    assert all(abs(p - int(v) / 10) < 1e-12 for v, p in seen)
