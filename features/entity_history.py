"""Point-in-time importer history for a filings frame: what was known when each declaration arrived."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

_SECONDS_PER_DAY = 86400.0


def add_importer_history(
    df: pd.DataFrame,
    *,
    importer_column: str = "importer_id",
    declaration_column: str = "declaration_id",
    time_column: str = "lodgement_time",
) -> pd.DataFrame:
    """A copy of `df` with importer_prior_filings and importer_days_known for every item row.

    Counts declarations (not items) by the same importer lodged strictly before this one, and
    days since the earliest of them (NaN when there is none), as serving's ImporterHistory does:
    a declaration never counts itself, a later filing or one lodged at the same instant. Rows
    without an importer id get 0 filings and NaN days.
    """
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

    declarations = df[[declaration_column, importer_column, time_column]].drop_duplicates(declaration_column)
    importer = declarations[importer_column]
    known = importer.notna() & (importer.astype(str) != "")
    by_importer = declarations[known].groupby(importer_column, sort=False)[time_column]
    prior = by_importer.rank(method="min").sub(1.0)  # declarations with a strictly earlier time
    first_seen = by_importer.transform("min")
    elapsed = (declarations.loc[known, time_column] - first_seen).dt.total_seconds() / _SECONDS_PER_DAY
    days = elapsed.where(prior > 0)

    per_declaration = pd.DataFrame(
        {
            "importer_prior_filings": prior.reindex(declarations.index).fillna(0.0).astype(np.float64),
            "importer_days_known": days.reindex(declarations.index).astype(np.float64),
        }
    )
    per_declaration.index = declarations[declaration_column].to_numpy()
    out = df.copy()
    keys = out[declaration_column].to_numpy()
    out["importer_prior_filings"] = per_declaration["importer_prior_filings"].reindex(keys).to_numpy()
    out["importer_days_known"] = per_declaration["importer_days_known"].reindex(keys).to_numpy()
    return out
