"""The handle to the serving model: resolve the alias, load the new version fully, then swap."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from features import FeatureState
from features.cargo import ContainerFeatureState

log = logging.getLogger(__name__)


class ScoringModel(Protocol):
    """What screening needs of a model (models.RiskModel is one)."""

    @property
    def feature_names(self) -> Sequence[str]: ...

    @property
    def feature_state(self) -> FeatureState | ContainerFeatureState | None:
        """What the features learned with the model (of its kind); None when it has none."""
        ...

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray: ...

    def contributions(self, matrix: np.ndarray) -> np.ndarray: ...


class ModelSource(Protocol):
    """Where model versions come from (the MLflow registry in production)."""

    name: str

    def resolve(self) -> str | None:
        """The version the serving alias points at, or None when there is none."""
        ...

    def load(self, version: str) -> ScoringModel:
        """Loads one version fully; raises when it cannot be loaded or its schema is wrong."""
        ...


@dataclass(frozen=True, slots=True)
class LoadedModel:
    name: str
    version: str
    model: ScoringModel


class ModelHandle:
    """Holds the current model; readers take `current` once per request and use that object only."""

    def __init__(self, source: ModelSource | None) -> None:
        self._source = source
        self._current: LoadedModel | None = None
        self._lock = threading.Lock()  # one refresh at a time; readers never wait
        self.last_error: str | None = None

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    def refresh(self) -> bool:
        """Swaps in the version the alias names if it differs; returns True when a swap happened.

        On any failure the model in service stays, so scoring never stops for a bad promotion.
        """
        if self._source is None:
            return False
        with self._lock:
            try:
                version = self._source.resolve()
            except Exception as err:
                self._fail(f"cannot resolve the serving alias of {self._source.name}: {type(err).__name__}")
                return False
            current = self._current
            if version is None:
                if current is None:
                    self.last_error = f"no version of {self._source.name} carries the serving alias"
                return False
            if current is not None and current.version == version:
                return False
            try:
                model = self._source.load(version)
            except Exception as err:
                self._fail(f"cannot load {self._source.name} version {version}: {type(err).__name__}: {err}")
                return False
            self._current = LoadedModel(self._source.name, version, model)
            self.last_error = None
            log.info(
                "model %s version %s now serving (was %s)",
                self._source.name,
                version,
                current.version if current else "none",
            )
            return True

    def _fail(self, message: str) -> None:
        self.last_error = message
        log.error("%s; the current model stays in service", message)
