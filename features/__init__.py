"""Feature engineering shared by training and serving: raw item columns to a float64 model matrix."""

from features.entity_history import EntityOutcomes, OutcomePrior, add_entity_history, entity_keys
from features.matrix import build_feature_matrix, columns_from_frame
from features.schema import (
    CATEGORICAL_FEATURES,
    ENTITY_COLUMNS,
    ENTITY_COUNT_FEATURES,
    ENTITY_KINDS,
    ENTITY_RATE_FEATURES,
    FEATURE_INDEX,
    FEATURE_NAMES,
    QUANTITY_UNITS,
    RAW_COLUMNS,
)
from features.state import FeatureState, UnitValueBand

__all__ = [
    "CATEGORICAL_FEATURES",
    "ENTITY_COLUMNS",
    "ENTITY_COUNT_FEATURES",
    "ENTITY_KINDS",
    "ENTITY_RATE_FEATURES",
    "FEATURE_INDEX",
    "FEATURE_NAMES",
    "QUANTITY_UNITS",
    "RAW_COLUMNS",
    "EntityOutcomes",
    "FeatureState",
    "OutcomePrior",
    "UnitValueBand",
    "add_entity_history",
    "build_feature_matrix",
    "columns_from_frame",
    "entity_keys",
]
