"""The permit registry the agencies would have fed in for a synthetic filing history (training.synthetic).

Every goods item that cites permits (`permit_count` > 0) gets the permits it cites, issued to the
party the service checks them against: the importer, or the exporter on an export declaration.
Which agency issues which kind of permit follows the shipped controlled goods table
(risk_service/domain/permits/default_controlled_goods.yaml) where it has an entry for the synthetic
chapters: pharmaceuticals (30) need an MFDS import licence, arms (93) a YESTRADE strategic trade
permit on export and transit. Arms imports, which the table leaves out, get a police (KNPA) import
permit; the certificates other goods cite come from the agency that issues them in practice.

Two shapes of permit:
- licences drawn down over months (MFDS, KATS, MOE): one chain per holder and kind, renewed when
  one lapses, so some expire mid-period; the first one's end is where the history's
  permit_days_to_expiry says, and a holder whose items cite an expired permit is left a gap.
  Authorised quantities are the holder's volume with headroom, or short of it where the history
  shows the balance overdrawn.
- per-consignment documents (quarantine, health and origin certificates; arms permits): single
  use, one per declaration, for what the declaration carries.

Status is output-only in risk.v1.Permit and the registry registers every imported permit as
active, keeping one current status rather than a dated one: a suspension or revocation sent before
the history is replayed would flag its earlier filings too, so none is generated.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv
from google.protobuf import json_format

from protos.risk.v1 import permit_pb2
from risk_service.domain.permits.units import UNITS
from training.synthetic import PERMIT_CHAPTERS

_DAY: Final = 86_400
# Google's Timestamp ends in 9999; "no expiry" is its last day, as agencies write 9999-12-31.
_NO_EXPIRY: Final = 253_402_214_400  # 9999-12-31T00:00:00Z
_LICENCE_DAYS: Final = np.array([90, 180, 365, 730])
_LICENCE_DAYS_P: Final = np.array([0.2, 0.3, 0.35, 0.15])  # as training.synthetic draws permit validity
# A goods line in any other unit would be refused, so such goods get no quantity limit.
_KNOWN_UNITS: Final = frozenset(UNITS)
# Large mass and volume limits are written in tonnes and cubic metres, as licences state them.
_LARGE_UNITS: Final = {"KGM": "TNE", "LTR": "MTQ"}
_LARGE: Final = 100_000.0
_IMPORT, _EXPORT, _TRANSIT = 1, 2, 3
_OVERDRAWN: Final = 0.85  # permit_balance_used from which the history shows a line drawn to its limit
_COLUMNS: Final = (
    "declaration_id",
    "lodgement_time",
    "importer_id",
    "exporter_id",
    "customs_office",
    "hs_code",
    "origin_country",
    "quantity",
    "quantity_unit",
    "customs_value",
    "declaration_type",
    "permit_count",
    "permit_balance_used",
    "permit_days_to_expiry",
)

_T = permit_pb2.PermitType


@dataclass(frozen=True, slots=True)
class _Kind:
    """A kind of permit one agency issues for some goods."""

    type: permit_pb2.PermitType.ValueType
    agency: str
    what: str  # what the permit is, for goods line descriptions
    end_use: str
    per_consignment: bool  # single use, for one declaration's goods; else a licence drawn down over months
    origins_share: float  # chance the permit names the origins it allows
    offices_share: float  # chance it names the customs offices it may be used at
    days: tuple[int, ...] = (90, 180, 365)  # validity of a per-consignment permit


_MEDICINES = _Kind(_T.PERMIT_TYPE_IMPORT_LICENCE, "MFDS", "medicine import notification", "wholesale", False, 0.5, 0.3)
_STRATEGIC = _Kind(_T.PERMIT_TYPE_STRATEGIC_TRADE_PERMIT, "YESTRADE", "conventional arms licence", "", True, 1.0, 0.8)
# (chapter, declaration type) -> kind, for the chapters training.synthetic says need permits.
_CONTROLLED: Final = {
    (30, _IMPORT): _MEDICINES,
    (30, _TRANSIT): _MEDICINES,
    (30, _EXPORT): _Kind(
        _T.PERMIT_TYPE_EXPORT_LICENCE, "MFDS", "pharmaceutical export approval", "export", False, 0.0, 0.3
    ),
    (93, _IMPORT): _Kind(
        _T.PERMIT_TYPE_IMPORT_LICENCE, "KNPA", "firearms and ammunition import permit", "sporting use", True, 1.0, 0.8
    ),
    (93, _EXPORT): _STRATEGIC,
    (93, _TRANSIT): _STRATEGIC,
}
# A controlled chapter without an entry above still gets a licence, from the trade ministry.
_OTHER_CONTROLLED: Final = _Kind(_T.PERMIT_TYPE_IMPORT_LICENCE, "MOTIE", "import licence", "", False, 0.5, 0.3)
_QUARANTINE = _Kind(
    _T.PERMIT_TYPE_QUARANTINE_CERTIFICATE, "NFQS", "quarantine certificate", "food", True, 1.0, 0.0, (30, 60, 90)
)
_KC = _Kind(_T.PERMIT_TYPE_CONFORMITY_CERTIFICATE, "KATS", "KC safety certification", "resale", False, 0.0, 0.0)
# chapter -> the certificate or licence goods of that chapter cite when they cite one.
_DOCUMENTS: Final = {
    3: _QUARANTINE,
    8: _QUARANTINE,
    9: _QUARANTINE,
    22: _Kind(
        _T.PERMIT_TYPE_HEALTH_CERTIFICATE, "MFDS", "imported food inspection", "food", True, 0.5, 0.0, (30, 60, 90)
    ),
    33: _Kind(_T.PERMIT_TYPE_IMPORT_LICENCE, "MFDS", "cosmetics import clearance", "resale", False, 0.3, 0.0),
    38: _Kind(_T.PERMIT_TYPE_OTHER, "MOE", "chemical import notification", "industrial use", False, 0.3, 0.2),
    84: _KC,
    85: _KC,
    87: _KC,
    94: _KC,
    95: _KC,
    90: _Kind(_T.PERMIT_TYPE_IMPORT_LICENCE, "MFDS", "medical device import licence", "medical use", False, 0.3, 0.0),
}


def _origin_certificate(agency: str) -> _Kind:
    return _Kind(_T.PERMIT_TYPE_CERTIFICATE_OF_ORIGIN, agency, "certificate of origin", "", True, 1.0, 0.0, (365,))


@dataclass(slots=True)
class _Draft:
    """A permit before it is numbered; rows index the cited items it was issued for."""

    kind: _Kind
    holder: str
    valid_from: int  # seconds since the epoch
    valid_to: int
    rows: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Items:
    """The columns of the items that cite permits, as arrays."""

    seconds: np.ndarray  # lodgement, seconds since the epoch
    declaration: np.ndarray
    holder: np.ndarray
    office: np.ndarray
    hs_code: np.ndarray
    origin: np.ndarray
    quantity: np.ndarray
    unit: np.ndarray
    value: np.ndarray
    description: np.ndarray
    used: np.ndarray  # permit_balance_used, NaN where no line limits
    days: np.ndarray  # permit_days_to_expiry, NaN where the permit never expires


def generate_permits(history: pd.DataFrame, *, seed: int) -> list[permit_pb2.Permit]:
    """The permits the items of `history` cite, in the order the agencies issued them.

    `history` is a frame of training.synthetic.generate_history (or a canonical history with its
    columns). Status and version are left unset: the registry sets them on import. Same history
    and seed, same permits.
    """
    missing = [c for c in _COLUMNS if c not in history.columns]
    if missing:
        raise ValueError(f"history lacks {', '.join(missing)}")
    cites = (history["permit_count"].fillna(0).to_numpy() > 0) & (history["hs_code"].astype(str).str.len() >= 2)
    frame = history[cites]
    if frame.empty:
        return []
    items = _items(frame)
    rng = np.random.default_rng([seed, 11])
    drafts = _drafts(frame, items, rng)
    numbers: dict[tuple[str, int], int] = {}
    issued: list[permit_pb2.Permit] = []
    for draft in drafts:
        year = int(pd.Timestamp(draft.valid_from, unit="s").year)
        number = numbers[(draft.kind.agency, year)] = numbers.get((draft.kind.agency, year), 0) + 1
        overdrawn = bool(np.nanmax(items.used[draft.rows], initial=0.0) >= _OVERDRAWN)
        issued.append(_message(f"{draft.kind.agency}-{year}-{number:06d}", draft, items, overdrawn, rng))
    return issued


def write_permits(permits: Sequence[permit_pb2.Permit], path: Path) -> int:
    """Writes `permits` as JSON lines, one risk.v1.Permit in proto JSON per line; returns how many."""
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for permit in permits:
            out.write(json.dumps(json_format.MessageToDict(permit), ensure_ascii=False, separators=(",", ":")))
            out.write("\n")
    return len(permits)


def _drafts(frame: pd.DataFrame, items: _Items, rng: np.random.Generator) -> list[_Draft]:
    """Every permit to issue, in issue order: one chain of licences per holder and kind, one document
    per declaration."""
    chapters = [int(code[:2]) if code[:2].isdigit() else 0 for code in items.hs_code]
    procedures = frame["declaration_type"].fillna(_IMPORT).to_numpy(np.int64)
    counts = frame["permit_count"].to_numpy(np.int64)
    groups: dict[tuple[str, str, str, str], tuple[_Kind, list[int]]] = {}
    for row, (chapter, procedure) in enumerate(zip(chapters, procedures, strict=True)):
        if not items.holder[row]:
            continue  # nobody to issue a permit to
        kinds = [_kind(chapter, int(procedure), items.origin[row])]
        if counts[row] >= 2 and chapter in PERMIT_CHAPTERS:  # the second permit: proof of origin
            kinds.append(_origin_certificate(_origin_agency(int(procedure), items.origin[row])))
        for kind in kinds:
            # A per-consignment document is one per declaration; a licence serves all of them.
            declaration = str(items.declaration[row]) if kind.per_consignment else ""
            key = (str(items.holder[row]), kind.agency, str(kind.type), declaration)
            groups.setdefault(key, (kind, []))[1].append(row)
    drafts: list[_Draft] = []
    for key in sorted(groups):
        kind, rows = groups[key]
        if kind.per_consignment:
            drafts.append(_document(kind, key[0], rows, items, rng))
        else:
            drafts.extend(_licences(kind, key[0], rows, items, rng))
    drafts.sort(key=lambda d: (d.valid_from, d.kind.agency, d.holder, d.rows[0]))
    return drafts


def _items(frame: pd.DataFrame) -> _Items:
    lodged = pd.to_datetime(frame["lodgement_time"], utc=True)
    seconds = ((lodged - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(1, "s")).to_numpy(np.int64)
    exporting = frame["declaration_type"].fillna(_IMPORT).to_numpy(np.int64) == _EXPORT
    # The service checks a permit's holder against the exporter of an export, the importer otherwise.
    holder = np.where(exporting, _text(frame["exporter_id"]), _text(frame["importer_id"]))
    description = _text(frame["description"]) if "description" in frame.columns else np.full(len(frame), "")
    return _Items(
        seconds=seconds,
        declaration=_text(frame["declaration_id"]),
        holder=holder,
        office=_text(frame["customs_office"]),
        hs_code=_text(frame["hs_code"]),
        origin=_text(frame["origin_country"]),
        quantity=frame["quantity"].to_numpy(np.float64),
        unit=_text(frame["quantity_unit"]),
        value=frame["customs_value"].to_numpy(np.float64),
        description=description,
        used=frame["permit_balance_used"].to_numpy(np.float64),
        days=frame["permit_days_to_expiry"].to_numpy(np.float64),
    )


def _text(column: pd.Series) -> np.ndarray:
    values: np.ndarray = column.fillna("").astype(str).str.strip().to_numpy(dtype=object)
    return values


def _kind(chapter: int, procedure: int, origin: str) -> _Kind:
    if chapter in PERMIT_CHAPTERS:
        return _CONTROLLED.get((chapter, procedure), _CONTROLLED.get((chapter, _IMPORT), _OTHER_CONTROLLED))
    document = _DOCUMENTS.get(chapter)
    return document if document is not None else _origin_certificate(_origin_agency(procedure, origin))


def _origin_agency(procedure: int, origin: str) -> str:
    # An export's certificate comes from the Korean chamber of commerce; an import's from the origin country.
    if procedure == _EXPORT:
        return "KCCI"
    return f"CO-{origin}" if _is_country(origin) else "CO"


def _is_country(code: str) -> bool:
    return len(code) == 2 and code.isascii() and code.isalpha() and code.isupper()


def _floor_day(seconds: float) -> int:
    return int(seconds // _DAY) * _DAY


def _expiry(lodged: int, days: float) -> int:
    """The end of validity that leaves `days` days from lodgement, on a day boundary: after it when days >= 0."""
    end = _floor_day(lodged + days * _DAY)
    return end + _DAY if days >= 0 else end


def _document(kind: _Kind, holder: str, rows: list[int], items: _Items, rng: np.random.Generator) -> _Draft:
    """A single-use permit for one declaration's goods, issued shortly before it was lodged."""
    lodged = int(items.seconds[rows[0]])
    days = float(items.days[rows[0]])
    issued = _floor_day(lodged) - int(rng.integers(1, 31)) * _DAY
    if math.isnan(days):
        end = max(issued + int(rng.choice(kind.days)) * _DAY, _floor_day(lodged) + _DAY)
        return _Draft(kind, holder, issued, end, rows)
    end = _expiry(lodged, days)  # the history's days to expiry; negative: it was cited expired
    return _Draft(kind, holder, min(issued, end - min(kind.days) * _DAY), end, rows)


def _licences(kind: _Kind, holder: str, rows: list[int], items: _Items, rng: np.random.Generator) -> list[_Draft]:
    """A chain of licences covering the holder's filings: each renewed when it lapses.

    The first ends where the first filing's permit_days_to_expiry says. An item the history says
    cited an expired licence (negative days) is left in the gap before the renewal; every other
    item falls inside the validity of the licence it is assigned to.
    """
    rows = sorted(rows, key=lambda r: (items.seconds[r], r))
    first = rows[0]
    lodged = int(items.seconds[first])
    days = float(items.days[first])
    if math.isnan(days):  # a licence that never expires
        return [_Draft(kind, holder, _floor_day(lodged) - int(rng.integers(30, 720)) * _DAY, _NO_EXPIRY, rows)]
    end = _expiry(lodged, days)
    start = min(end - _validity(rng), _floor_day(lodged) - int(rng.integers(0, 31)) * _DAY)
    chain = [_Draft(kind, holder, start, end, [first])]
    last_stale = lodged if days < 0 else -1  # lodgement of the latest item citing the lapsed licence
    for row in rows[1:]:
        current = chain[-1]
        at = int(items.seconds[row])
        if at < current.valid_to or items.days[row] < 0:
            current.rows.append(row)  # inside its validity, or citing it after it lapsed
            if at >= current.valid_to:
                last_stale = at
            continue
        if last_stale >= current.valid_to:  # renewed only after the lapse the history shows
            start = _floor_day(at) if _floor_day(at) > last_stale else last_stale + 1
        else:  # renewed a little before it lapsed, or applied for again when needed
            start = max(
                current.valid_to - int(rng.integers(0, 15)) * _DAY, _floor_day(at) - int(rng.integers(0, 31)) * _DAY
            )
        chain.append(_Draft(kind, holder, start, start + _validity(rng), [row]))
    return chain


def _validity(rng: np.random.Generator) -> int:
    return int(rng.choice(_LICENCE_DAYS, p=_LICENCE_DAYS_P)) * _DAY


def _message(
    permit_id: str, draft: _Draft, items: _Items, overdrawn: bool, rng: np.random.Generator
) -> permit_pb2.Permit:
    kind = draft.kind
    rows = draft.rows
    origins = sorted({items.origin[r] for r in rows})
    offices = sorted({items.office[r] for r in rows if items.office[r]})
    permit = permit_pb2.Permit(
        permit_id=permit_id,
        issuing_agency=kind.agency,
        type=kind.type,
        holder_id=draft.holder,
        end_use=kind.end_use,
        single_use=kind.per_consignment,
    )
    if rng.random() < kind.origins_share and all(_is_country(o) for o in origins):
        permit.allowed_origin_countries.extend(origins)
    if rng.random() < kind.offices_share:
        permit.allowed_customs_offices.extend(offices)
    permit.valid_from_time.seconds = draft.valid_from
    permit.valid_to_time.seconds = draft.valid_to
    # Specific licences name subheadings; the rest cover a heading. Arms permits always name subheadings.
    digits = 6 if kind.agency in ("KNPA", "YESTRADE") or rng.random() < 0.5 else 4
    lines: dict[str, list[int]] = {}
    for r in rows:
        lines.setdefault(items.hs_code[r][:digits], []).append(r)
    limited = bool(np.isfinite(items.used[rows]).any())  # the history's balance_used tells a limited line
    value_limited = limited and not kind.per_consignment and rng.random() < 0.3
    # Headroom over the holder's volume; short of it where the history shows the balance overdrawn.
    factor = rng.uniform(0.8, 1.0) if overdrawn else 1.0 if kind.per_consignment else rng.uniform(1.3, 2.5)
    for number, prefix in enumerate(sorted(lines), start=1):
        line_rows = lines[prefix]
        described = items.description[line_rows[0]] or kind.what
        line = permit.goods_lines.add(
            line_number=number, hs_prefix=prefix, description=f"{described.capitalize()}, HS {prefix}: {kind.what}"
        )
        unit = _unit(items.unit[line_rows])
        quantity = float(np.nansum(items.quantity[[r for r in line_rows if items.unit[r] == unit]]))
        if limited and unit and quantity > 0:
            authorised = quantity * factor
            if unit in _LARGE_UNITS and authorised >= _LARGE:
                unit, authorised = _LARGE_UNITS[unit], authorised / 1000.0
            line.unit = unit
            line.authorised_quantity = _round_up(authorised, exact=kind.per_consignment)
        value = float(np.nansum(items.value[line_rows]))
        if (value_limited or (limited and not line.HasField("authorised_quantity"))) and value > 0:
            line.authorised_value = _round_up(value * factor, exact=kind.per_consignment)
    return permit


def _unit(units: np.ndarray) -> str:
    """The most common known unit of the items (first in code order on a tie), or "" when none is known."""
    known = [u for u in units if u in _KNOWN_UNITS]
    if not known:
        return ""
    counts: dict[str, int] = {}
    for u in known:
        counts[u] = counts.get(u, 0) + 1
    return min(counts, key=lambda u: (-counts[u], u))


def _round_up(amount: float, *, exact: bool) -> float:
    """A consignment's amount to three decimals; a licence's up to two significant digits, as issued."""
    if exact:
        return math.ceil(amount * 1000.0) / 1000.0
    step = 10.0 ** (math.floor(math.log10(amount)) - 1)
    return round(math.ceil(amount / step) * step, 6)
