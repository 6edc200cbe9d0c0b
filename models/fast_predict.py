"""LightGBM's single-row fast prediction C API, for the one-row calls that dominate unary scoring.

`Booster.predict` re-parses parameters and wraps the matrix on every call (~60-90 us for one row
here); the FastInit/Fast pair prepares that once per booster and then costs a few microseconds.
lightgbm does not wrap this API, so it is called through the library's own ctypes handle.
"""

from __future__ import annotations

import ctypes
import threading

import lightgbm as lgb
import numpy as np
from lightgbm.basic import _LIB, _safe_call  # type: ignore[attr-defined]

_C_API_PREDICT_NORMAL = 0
_C_API_DTYPE_FLOAT64 = 1
_ROW_MAJOR = 1


class SingleRowPredictor:
    """Predicts one float64 row with one thread; safe to share (calls are serialised by a lock)."""

    def __init__(self, booster: lgb.Booster) -> None:
        self._booster = booster  # keeps the native booster alive as long as the fast config
        self._n_features = booster.num_feature()
        self._config = ctypes.c_void_p()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(_C_API_PREDICT_NORMAL),
                ctypes.c_int(0),  # start iteration
                ctypes.c_int(-1),  # all iterations (the best one, as saved)
                ctypes.c_int(_C_API_DTYPE_FLOAT64),
                ctypes.c_int32(self._n_features),
                ctypes.c_char_p(b"num_threads=1"),
                ctypes.byref(self._config),
            )
        )
        self._out = np.zeros(1, dtype=np.float64)
        self._out_len = ctypes.c_int64(0)
        self._out_ptr = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._lock = threading.Lock()

    def predict(self, row: np.ndarray) -> float:
        """The booster's probability for one row of exactly num_feature float64 values."""
        data = np.ascontiguousarray(row, dtype=np.float64)
        if data.size != self._n_features:
            raise ValueError(f"expected {self._n_features} features, got {data.size}")
        with self._lock:
            _safe_call(
                _LIB.LGBM_BoosterPredictForMatSingleRowFast(
                    self._config,
                    data.ctypes.data_as(ctypes.c_void_p),
                    ctypes.byref(self._out_len),
                    self._out_ptr,
                )
            )
            return float(self._out[0])

    def __del__(self) -> None:
        config = getattr(self, "_config", None)
        if config is not None and config.value:
            _LIB.LGBM_FastConfigFree(config)
