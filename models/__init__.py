"""Risk models: the LightGBM artifact, its calibration and the MLflow naming contract (models.registry)."""

from models.calibration import Calibrator, fit_calibrator
from models.risk_model import ModelSchemaError, RiskModel

__all__ = ["Calibrator", "ModelSchemaError", "RiskModel", "fit_calibrator"]
