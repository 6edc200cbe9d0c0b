"""Feature engineering shared by training and serving: raw item columns to a float64 model matrix."""

from features.matrix import build_feature_matrix, columns_from_frame
from features.schema import CATEGORICAL_FEATURES, FEATURE_INDEX, FEATURE_NAMES, QUANTITY_UNITS, RAW_COLUMNS
from features.state import FeatureState, UnitValueBand

__all__ = [
    "CATEGORICAL_FEATURES",
    "FEATURE_INDEX",
    "FEATURE_NAMES",
    "QUANTITY_UNITS",
    "RAW_COLUMNS",
    "FeatureState",
    "UnitValueBand",
    "build_feature_matrix",
    "columns_from_frame",
]
