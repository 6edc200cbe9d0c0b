"""History files tests derive from others."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv


def shuffled_labels(history: Path, out: Path) -> Path:
    """The history (declaration or cargo) with its findings shuffled among the inspected rows: a model
    trained on it learns noise, a challenger the gate must refuse."""
    frame = pd.read_csv(history, dtype=str, keep_default_na=False)
    inspected = frame["inspected"].str.lower().isin(["1", "true"])
    labels = frame.loc[inspected, "finding"].to_numpy()
    frame.loc[inspected, "finding"] = np.random.default_rng(0).permutation(labels)
    frame.to_csv(out, index=False)
    return out
