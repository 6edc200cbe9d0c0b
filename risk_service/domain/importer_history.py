"""What the service knows of each importer's past filings, kept in memory for the scoring path."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime


class ImporterHistory:
    """Importer id -> (first filing time, filings): warmed from the store, updated as filings are stored.

    Only the scoring event loop mutates it; the screening worker thread only reads, and each read
    or write is a single dict operation, atomic under the GIL. Replicas each hold their own view;
    the store stays the source of truth and is re-read at start-up.
    """

    def __init__(self, known: Mapping[str, tuple[datetime, int]] | None = None) -> None:
        self._known: dict[str, tuple[datetime, int]] = dict(known or {})

    def lookup(self, importer_id: str, at: datetime | None) -> tuple[float, float]:
        """(prior filings, days since first seen) as of `at`; days are NaN for an unknown importer."""
        entry = self._known.get(importer_id)
        if entry is None:
            return 0.0, math.nan
        first_seen, filings = entry
        if at is None:
            return float(filings), math.nan
        return float(filings), max(0.0, (at - first_seen).total_seconds() / 86400.0)

    def record(self, importer_id: str, at: datetime) -> None:
        """Counts one newly stored declaration (call once per declaration id, not per version)."""
        if not importer_id:
            return
        entry = self._known.get(importer_id)
        if entry is None:
            self._known[importer_id] = (at, 1)
        else:
            self._known[importer_id] = (min(entry[0], at), entry[1] + 1)

    def __len__(self) -> int:
        return len(self._known)
