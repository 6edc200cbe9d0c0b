"""What the service knows of each importer, broker and trade lane, kept in memory for the scoring path."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime

from features import ENTITY_KINDS, EntityOutcomes, entity_keys
from features.cargo import CONTAINER_KINDS, COUNTED_CONTAINER_KINDS, LIST_SEPARATOR, container_entity_keys
from risk_service.domain.cargo.model import CargoReport
from risk_service.domain.declaration import Declaration

_NO_OUTCOME = (math.nan, math.nan)
KnownEntities = Mapping[str, Mapping[str, tuple[datetime, int]]]  # kind -> key -> (first lodgement, filings)


def declaration_keys(declaration: Declaration) -> Iterator[tuple[str, ...]]:
    """Each goods item's key per features.ENTITY_KINDS: the same strings training builds from a history row."""
    d = declaration
    for item in d.items:
        yield entity_keys(d.importer.id, d.declarant.id, d.customs_office, item.hs_code, item.origin_country)


class _KnownEntities:
    """Per entity kind, key -> (first filing time, filings); the part both kinds of filing share."""

    kinds: tuple[str, ...] = ENTITY_KINDS
    counted: tuple[str, ...] = ENTITY_KINDS  # whose filings are counted (and stored); the rest read as new

    def __init__(self, known: KnownEntities | None = None) -> None:
        self._known: dict[str, dict[str, tuple[datetime, int]]] = {kind: {} for kind in self.kinds}
        for kind, entries in (known or {}).items():
            if kind not in self.counted:
                raise ValueError(f"unknown entity kind {kind!r}; expected one of {', '.join(self.counted)}")
            self._known[kind].update(entries)

    def _entity_rows(
        self,
        rows_keys: Iterable[tuple[str, ...]],
        at: datetime | None,
        outcomes: EntityOutcomes | None,
        *,
        counted_already: bool = False,
    ) -> list[tuple[float, ...]]:
        """Per row, the kind-major entity columns (filings, days, inspections per kind, then findings).

        `counted_already`: the filing itself is among the recorded ones (an amendment of a stored
        filing), so it is left out of its own history.
        """
        rows = []
        for keys in rows_keys:
            counts: list[float] = []
            found: list[float] = []
            for kind, key in zip(self.kinds, keys, strict=True):
                filings, days = self._seen(kind, key, at, counted_already)
                inspections, findings = outcomes.lookup(kind, key) if outcomes is not None and key else _NO_OUTCOME
                counts += (filings, days, inspections)
                found.append(findings)
            rows.append((*counts, *found))
        return rows

    def _seen(self, kind: str, key: str, at: datetime | None, counted_already: bool = False) -> tuple[float, float]:
        entry = self._known[kind].get(key) if key else None
        if entry is None:
            return 0.0, math.nan
        first_seen, filings = entry
        if counted_already and kind in self.counted:
            # Its own earlier version is the first filing when nothing else is left; otherwise the first
            # seen stays (slightly early if its own version came first and others followed).
            filings -= 1
            if filings <= 0:
                return 0.0, math.nan
        if at is None:
            return float(filings), math.nan
        return float(filings), max(0.0, (at - first_seen).total_seconds() / 86400.0)

    def filings(self, kind: str, key: str) -> int:
        entry = self._known[kind].get(key)
        return 0 if entry is None else entry[1]

    def _record(self, rows_keys: Iterable[tuple[str, ...]], at: datetime | None) -> None:
        if at is None:
            return
        seen: set[tuple[str, str]] = set()
        for keys in rows_keys:
            for kind, key in zip(self.kinds, keys, strict=True):
                if key and kind in self.counted and (kind, key) not in seen:
                    seen.add((kind, key))
                    known = self._known[kind]
                    entry = known.get(key)
                    known[key] = (at, 1) if entry is None else (min(entry[0], at), entry[1] + 1)

    def __len__(self) -> int:
        return sum(len(v) for v in self._known.values())


class EntityHistory(_KnownEntities):
    """Per entity kind, key -> (first filing time, filings): warmed from the store, updated as filings are stored.

    Inspections and findings come from the served model's EntityOutcomes (what was known when it was
    trained), so training and serving count them alike. Only the scoring event loop mutates this;
    the screening worker thread only reads, and each read or write is a single dict operation,
    atomic under the GIL. Replicas each hold their own view; the store stays the source of truth
    and is re-read at start-up.
    """

    def lookup(self, declaration: Declaration, outcomes: EntityOutcomes | None) -> list[tuple[float, ...]]:
        """Per goods item, features.ENTITY_COLUMNS in order, as of the declaration's lodgement.

        Without outcomes (no model, or one that predates them) inspections and findings are NaN.
        """
        return self._entity_rows(declaration_keys(declaration), declaration.lodgement_time, outcomes)

    def record(self, declaration: Declaration) -> None:
        """Counts one newly stored declaration once per entity it names (call once per declaration id)."""
        self._record(declaration_keys(declaration), declaration.lodgement_time)


class ContainerEntities(_KnownEntities):
    """The same for cargo reports: consignee, consignor, filer and lane (features.cargo.CONTAINER_KINDS),
    as of the report's filing time. Filings are counted per report, as the cargo history counts them,
    for the kinds whose counts the model reads (COUNTED_CONTAINER_KINDS); the others' counts read as
    none, and their inspections and findings come from the model's outcomes like every kind's."""

    kinds = CONTAINER_KINDS
    counted = COUNTED_CONTAINER_KINDS

    def lookup(
        self,
        report: CargoReport,
        outcomes: EntityOutcomes | None,
        keys: Iterable[tuple[str, ...]] | None = None,
        *,
        counted_already: bool = False,
    ) -> list[tuple[float, ...]]:
        """Per container, the columns of features.cargo.CONTAINER_ENTITIES in order; `keys` when the
        caller already has report_keys(report); `counted_already` for an amendment of a stored report
        (training counts each report once, so it is not in its own history)."""
        rows_keys = report_keys(report) if keys is None else keys
        return self._entity_rows(rows_keys, report.filing_time, outcomes, counted_already=counted_already)

    def record(self, report: CargoReport) -> None:
        """Counts one newly stored report (call once per report id, not per version)."""
        self._record(report_keys(report), report.filing_time)


def report_keys(report: CargoReport) -> Iterator[tuple[str, ...]]:
    """Each container's key per CONTAINER_KINDS: the strings training builds from a cargo history row."""
    r = report
    for container in r.containers:
        codes = LIST_SEPARATOR.join(item.hs_code for item in container.items)
        yield container_entity_keys(r.consignee.id, r.consignor.id, r.filer.id, r.port_of_loading, codes)
