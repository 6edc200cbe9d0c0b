"""The two things a risk model scores: declaration goods items and cargo-report containers.

A FeatureKind bundles what training, registry and serving need to treat both alike: the feature
names and categorical ones, the entity history it tracks, and its feature state and matrix
functions. A model artifact names its kind, so a version always loads with its own features.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from features.cargo import (
    CONTAINER_CATEGORICAL_FEATURES,
    CONTAINER_ENTITIES,
    CONTAINER_FEATURE_NAMES,
    ContainerFeatureState,
    build_container_matrix,
    container_columns_from_frame,
)
from features.entity_history import DECLARATION_ENTITIES, EntitySpec
from features.matrix import build_feature_matrix, columns_from_frame
from features.schema import CATEGORICAL_FEATURES, FEATURE_NAMES
from features.state import FeatureState

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv


@dataclass(frozen=True)
class FeatureKind:
    name: str
    feature_names: tuple[str, ...]
    categorical: tuple[str, ...]
    entities: EntitySpec
    fit_state: Callable[[Mapping[str, np.ndarray]], Any]  # the training window's columns -> its state
    state_from_dict: Callable[[Mapping[str, Any]], Any]
    build_matrix: Callable[[Mapping[str, np.ndarray], Any], np.ndarray]
    columns_from_frame: Callable[[pd.DataFrame], dict[str, np.ndarray]]

    def matrix_of(self, frame: pd.DataFrame, state: Any) -> np.ndarray:
        return self.build_matrix(self.columns_from_frame(frame), state)


DECLARATION = FeatureKind(
    "declaration",
    FEATURE_NAMES,
    CATEGORICAL_FEATURES,
    DECLARATION_ENTITIES,
    FeatureState.fit,
    FeatureState.from_dict,
    build_feature_matrix,
    columns_from_frame,
)
CONTAINER = FeatureKind(
    "container",
    CONTAINER_FEATURE_NAMES,
    CONTAINER_CATEGORICAL_FEATURES,
    CONTAINER_ENTITIES,
    ContainerFeatureState.fit,
    ContainerFeatureState.from_dict,
    build_container_matrix,
    container_columns_from_frame,
)
FEATURE_KINDS: Mapping[str, FeatureKind] = {k.name: k for k in (DECLARATION, CONTAINER)}


def feature_kind(name: str) -> FeatureKind:
    try:
        return FEATURE_KINDS[name]
    except KeyError:
        raise ValueError(f"unknown model kind {name!r}; expected one of {', '.join(FEATURE_KINDS)}") from None
