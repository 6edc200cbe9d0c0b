"""Container features, the one code path for training and serving the container-targeting model.

A container row holds the raw columns of CONTAINER_RAW_COLUMNS: report-level facts (filing type,
times as epoch seconds, route, version), the container's own (size and type, seals, mass,
packages) and its goods as lists joined by ';' (HS codes, descriptions, origins), as the cargo
history stores them and as serving builds them from a report. build_container_matrix turns them
into CONTAINER_FEATURE_NAMES. Entity history (consignee, consignor, filer, loading port by HS
heading) is point in time, as for declarations (features.entity_history with CONTAINER_ENTITIES).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from features.codes import country_code, parse_hs
from features.entity_history import EntityOutcomes, EntitySpec
from features.state import UnitValueBand, robust_band

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

NAN = math.nan
LIST_SEPARATOR = ";"

# consignee; consignor (shipper); filer (carrier or forwarder); loading port by HS heading (a lane)
CONTAINER_KINDS: tuple[str, ...] = ("consignee", "consignor", "filer", "lane")
# Whose filings (count, days since the first) the model reads; of the others only inspections and
# findings (from the model's EntityOutcomes). Serving counts and stores filings of these kinds only.
COUNTED_CONTAINER_KINDS: tuple[str, ...] = ("consignee",)

CONTAINER_RAW_COLUMNS: Mapping[str, str] = MappingProxyType(
    {
        "port_of_loading": "str",  # UN/LOCODE
        "transshipment_ports": "str",  # UN/LOCODEs in route order, ';'-joined
        "size_type_code": "str",  # ISO 6346, e.g. 22G1
        "hs_codes": "str",  # the container's items, ';'-joined
        "descriptions": "str",
        "origin_countries": "str",
        "filing_type": "int",  # 1 pre-loading, 2 pre-arrival
        "transport_mode": "int",  # UN/ECE Rec 19
        "report_version": "int",
        "has_house_document": "int",  # 0/1: a house bill (consolidated cargo)
        "filing_time_s": "float",  # epoch seconds, NaN when unknown
        "planned_loading_s": "float",
        "planned_arrival_s": "float",
        "seal_count": "int",
        "gross_mass_kg": "float",
        "packages": "float",
        "item_count": "int",
        **{f"{kind}_{what}": "float" for kind in COUNTED_CONTAINER_KINDS for what in ("prior_filings", "days_known")},
        **{f"{kind}_{what}": "float" for kind in CONTAINER_KINDS for what in ("prior_inspections", "prior_findings")},
    }
)

CONTAINER_FEATURE_NAMES: tuple[str, ...] = (
    "filing_type",
    "transport_mode",
    "report_version",
    "has_house_document",
    "filing_lead_hours",  # to planned loading (pre-loading) or arrival (pre-arrival); negative: filed late
    "voyage_days",
    "transshipment_count",
    "loading_country_code",
    "transshipment_country_code",  # of the last transshipment port
    "container_length_ft",
    "container_type_code",
    "seal_count",
    "log_gross_mass",
    "log_mass_per_package",
    "mass_per_package_zscore",  # against the band of the main item's HS heading (training window)
    "log_packages",
    "item_count",
    "main_chapter",
    "distinct_chapters",
    "vague_description_share",
    "origin_off_route_share",  # items whose origin is neither the loading country nor on the route
    "consignee_prior_filings",
    "consignee_days_known",
    *(f"{kind}_finding_rate" for kind in CONTAINER_KINDS),
)

CONTAINER_CATEGORICAL_FEATURES: tuple[str, ...] = (
    "filing_type",
    "transport_mode",
    "loading_country_code",
    "transshipment_country_code",
    "container_type_code",
    "main_chapter",
)

# Descriptions a model reads as vague: the WCO / ICS2 lists of unacceptable descriptions. Fixed
# here (not the analysts' rule list) so a model means the same thing for as long as it serves.
VAGUE_TERMS: tuple[str, ...] = (
    "fak",
    "freight all kinds",
    "general cargo",
    "consolidated",
    "consolidation",
    "said to contain",
    "stc",
    "parts",
    "spare parts",
    "accessories",
    "gift",
    "gifts",
    "goods",
    "various",
    "sample",
    "samples",
)
_VAGUE = re.compile(r"\b(" + "|".join(re.escape(t) for t in VAGUE_TERMS) + r")\b", re.IGNORECASE)
_LENGTH_FT = {"2": 20.0, "4": 40.0, "L": 45.0, "M": 48.0}
_TYPE_GROUPS = ("G", "R", "U", "T", "P", "S", "B", "H")  # general, reefer, open top, tank, flat, ...
_SEP = "\x1f"
_F = {name: i for i, name in enumerate(CONTAINER_FEATURE_NAMES)}


def split_list(text: object) -> list[str]:
    """A ';'-joined cell's values, blanks dropped."""
    if not isinstance(text, str) or not text:
        return []
    return [part.strip() for part in text.split(LIST_SEPARATOR) if part.strip()]


def container_entity_keys(
    consignee: str, consignor: str, filer: str, port_of_loading: str, hs_codes: str
) -> tuple[str, ...]:
    """The row's key per CONTAINER_KINDS, '' where a part is missing; the one definition for both sides."""
    codes = split_list(hs_codes)
    hs = parse_hs(codes[0]) if codes else None
    port = port_of_loading.strip().upper() if isinstance(port_of_loading, str) else ""
    return (
        consignee or "",
        consignor or "",
        filer or "",
        f"{port}{_SEP}{hs.hs4}" if port and hs is not None else "",
    )


def _frame_keys(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    def text(column: str) -> list[str]:
        if column not in frame.columns:
            return [""] * len(frame)
        return [v if isinstance(v, str) else "" for v in frame[column].to_numpy(dtype=object)]

    parts = [text(c) for c in ("consignee_id", "consignor_id", "filer_id", "port_of_loading", "hs_codes")]
    rows = [container_entity_keys(*row) for row in zip(*parts, strict=True)]
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in CONTAINER_KINDS]
    return {kind: np.array(col, dtype=object) for kind, col in zip(CONTAINER_KINDS, columns, strict=True)}


# Outcomes count per report: an examination opens the consignment, and a report's containers share parties.
CONTAINER_ENTITIES = EntitySpec(CONTAINER_KINDS, "report_id", "filing_time", _frame_keys)


class ContainerFeatureState:
    """What container features learn from the training window: bands of log kg per package by HS
    heading (and a global one), and the entity outcomes serving reads finding rates from."""

    FORMAT_VERSION = 1

    def __init__(
        self,
        mass_bands: Mapping[str, UnitValueBand],
        global_band: UnitValueBand | None,
        outcomes: EntityOutcomes | None = None,
        *,
        min_count: int = 20,
    ) -> None:
        self.mass_bands = dict(mass_bands)
        self.global_band = global_band
        self.outcomes = outcomes
        self.min_count = min_count

    def with_outcomes(self, outcomes: EntityOutcomes | None) -> ContainerFeatureState:
        return ContainerFeatureState(self.mass_bands, self.global_band, outcomes, min_count=self.min_count)

    @classmethod
    def fit(cls, columns: Mapping[str, np.ndarray], *, min_count: int = 20) -> ContainerFeatureState:
        log_mpp = _log_mass_per_package(columns)
        groups: dict[str, list[float]] = {}
        finite: list[float] = []
        for codes, value in zip(columns["hs_codes"], log_mpp.tolist(), strict=True):
            if not math.isfinite(value):
                continue
            finite.append(value)
            hs4 = _goods(codes).main_hs4
            if hs4 is not None:
                groups.setdefault(hs4, []).append(value)
        bands = {k: robust_band(np.asarray(v)) for k, v in sorted(groups.items()) if len(v) >= min_count}
        return cls(bands, robust_band(np.asarray(finite)) if finite else None, min_count=min_count)

    def to_dict(self) -> dict[str, Any]:
        def enc(b: UnitValueBand) -> list[float | int]:
            return [b.median, b.scale, b.count]

        return {
            "format_version": self.FORMAT_VERSION,
            "kind": "container",
            "min_count": self.min_count,
            "global": enc(self.global_band) if self.global_band else None,
            "mass_bands": {k: enc(b) for k, b in self.mass_bands.items()},
            "entity_outcomes": self.outcomes.to_dict() if self.outcomes is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContainerFeatureState:
        if data.get("format_version") != cls.FORMAT_VERSION or data.get("kind") != "container":
            raise ValueError(f"unsupported container feature state format {data.get('format_version')!r}")

        def dec(v: Any) -> UnitValueBand:
            return UnitValueBand(float(v[0]), float(v[1]), int(v[2]))

        return cls(
            {str(k): dec(v) for k, v in data["mass_bands"].items()},
            dec(data["global"]) if data.get("global") is not None else None,
            EntityOutcomes.from_dict(data["entity_outcomes"]) if data.get("entity_outcomes") else None,
            min_count=int(data["min_count"]),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ContainerFeatureState):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        known = "no entity outcomes" if self.outcomes is None else f"entity outcomes as of {self.outcomes.as_of}"
        return f"ContainerFeatureState({len(self.mass_bands)} mass bands, {known})"


def build_container_matrix(columns: Mapping[str, np.ndarray], state: ContainerFeatureState | None) -> np.ndarray:
    """float64 matrix (rows, len(CONTAINER_FEATURE_NAMES)); NaN where an input is missing or meaningless.

    Without a state the mass band z-score and the finding rates are NaN.
    """
    missing = [k for k in CONTAINER_RAW_COLUMNS if k not in columns]
    if missing:
        raise KeyError(f"missing raw columns: {', '.join(missing)}")
    n = len(columns["hs_codes"])
    out = np.full((len(CONTAINER_FEATURE_NAMES), n), NAN)
    if n == 0:
        return np.ascontiguousarray(out.T)

    def num(name: str) -> np.ndarray:
        values = np.asarray(columns[name], dtype=np.float64)
        if values.shape != (n,):
            raise ValueError("raw columns differ in length")
        return values

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        filing_type = num("filing_type")
        filed, loading, arrival = num("filing_time_s"), num("planned_loading_s"), num("planned_arrival_s")
        target = np.where(filing_type == 1, loading, np.where(filing_type == 2, arrival, NAN))
        for name in ("filing_type", "transport_mode", "report_version", "has_house_document", "seal_count"):
            out[_F[name]] = num(name)
        out[_F["item_count"]] = num("item_count")
        out[_F["filing_lead_hours"]] = (target - filed) / 3600.0
        out[_F["voyage_days"]] = (arrival - loading) / 86400.0
        mass, packages = num("gross_mass_kg"), num("packages")
        out[_F["log_gross_mass"]] = np.log(mass)
        log_mpp = _log_mass_per_package(columns)
        out[_F["log_mass_per_package"]] = log_mpp
        out[_F["log_packages"]] = np.log1p(packages)
        outcomes = state.outcomes if state is not None else None
        out[_F["consignee_prior_filings"]] = num("consignee_prior_filings")
        out[_F["consignee_days_known"]] = num("consignee_days_known")
        if outcomes is not None:  # smoothed toward the prior, as for declarations
            m, p0 = outcomes.prior.strength, outcomes.prior.rate
            for kind in CONTAINER_KINDS:
                findings, inspections = num(f"{kind}_prior_findings"), num(f"{kind}_prior_inspections")
                out[_F[f"{kind}_finding_rate"]] = (findings + m * p0) / (inspections + m)

        ports, routes, sizes = columns["port_of_loading"], columns["transshipment_ports"], columns["size_type_code"]
        codes, descriptions, origins = columns["hs_codes"], columns["descriptions"], columns["origin_countries"]
        bands = state.mass_bands if state is not None else {}
        global_band = state.global_band if state is not None else None
        # Per distinct text, not per container: a report's containers share their route, and goods repeat.
        for i in range(n):
            route = _route(ports[i], routes[i])
            out[_F["transshipment_count"], i] = route.transshipments
            out[_F["loading_country_code"], i] = route.loading_code
            out[_F["transshipment_country_code"], i] = route.last_hub_code
            out[_F["container_length_ft"], i], out[_F["container_type_code"], i] = _size_type(sizes[i])
            goods = _goods(codes[i])
            out[_F["main_chapter"], i] = goods.main_chapter
            out[_F["distinct_chapters"], i] = goods.distinct_chapters
            out[_F["vague_description_share"], i] = _vague_share(descriptions[i])
            out[_F["origin_off_route_share"], i] = _off_route_share(origins[i], route.countries)
            lv = log_mpp[i]
            if state is not None and math.isfinite(lv):
                band = bands.get(goods.main_hs4) if goods.main_hs4 is not None else None
                band = band if band is not None else global_band
                if band is not None:
                    out[_F["mass_per_package_zscore"], i] = (lv - band.median) / band.scale
        out[~np.isfinite(out)] = NAN
    return np.ascontiguousarray(out.T)


def container_columns_from_frame(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Training side: the CONTAINER_RAW_COLUMNS of a cargo history frame (training.cargo_history)
    with its entity history (features.entity_history.add_entity_history with CONTAINER_ENTITIES)."""
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

    def text(name: str) -> np.ndarray:
        return np.array([v if isinstance(v, str) else "" for v in df[name].to_numpy(dtype=object)], dtype=object)

    def seconds(name: str) -> np.ndarray:
        # Through a Timedelta: the stored resolution (ns, us) differs by how the history was read.
        times = pd.to_datetime(df[name], utc=True)
        elapsed = (times - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
        return np.asarray(elapsed.to_numpy(dtype=np.float64, na_value=NAN), dtype=np.float64)

    filing_type = df["filing_type"].map({"pre_loading": 1, "pre_arrival": 2}).fillna(0).to_numpy(dtype=np.int64)
    out: dict[str, np.ndarray] = {
        "port_of_loading": text("port_of_loading"),
        "transshipment_ports": text("transshipment_ports"),
        "size_type_code": text("size_type_code"),
        "hs_codes": text("hs_codes"),
        "descriptions": text("descriptions"),
        "origin_countries": text("origin_countries"),
        "filing_type": filing_type,
        "has_house_document": (text("house_document") != "").astype(np.int64),
        "filing_time_s": seconds("filing_time"),
        "planned_loading_s": seconds("planned_loading_time"),
        "planned_arrival_s": seconds("planned_arrival_time"),
    }
    for name in ("transport_mode", "report_version", "seal_count", "gross_mass_kg", "packages", "item_count"):
        out[name] = df[name].to_numpy(dtype=np.float64)
    for name in CONTAINER_RAW_COLUMNS:
        if name not in out:
            out[name] = df[name].to_numpy(dtype=np.float64)
    return out


def _log_mass_per_package(columns: Mapping[str, np.ndarray]) -> np.ndarray:
    mass = np.asarray(columns["gross_mass_kg"], dtype=np.float64)
    packages = np.asarray(columns["packages"], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(mass) - np.log(packages)
    out[~np.isfinite(out)] = NAN
    return out


class _Route(NamedTuple):
    transshipments: float
    loading_code: float
    last_hub_code: float
    countries: frozenset[str]  # the loading country and every transshipment port's


class _Goods(NamedTuple):
    main_chapter: float
    distinct_chapters: float
    main_hs4: str | None  # the first item's heading: its mass band


@lru_cache(maxsize=4096)
def _port_country(locode: str) -> str:
    code = locode.strip().upper() if isinstance(locode, str) else ""
    return code[:2] if len(code) == 5 and code[:2].isalpha() else ""


@lru_cache(maxsize=4096)
def _route(port_of_loading: str, transshipments: str) -> _Route:
    loading = _port_country(port_of_loading)
    hubs = [_port_country(p) for p in split_list(transshipments)]
    countries = frozenset(c for c in (loading, *hubs) if c) if loading else frozenset()
    last = country_code(hubs[-1]) if hubs else NAN
    return _Route(float(len(hubs)), country_code(loading), last, countries)


@lru_cache(maxsize=256)
def _size_type(code: str) -> tuple[float, float]:
    """ISO 6346 size and type code -> (length in feet, type group index); NaN where unknown."""
    code = code.strip().upper() if isinstance(code, str) else ""
    if len(code) != 4:
        return NAN, NAN
    group = _TYPE_GROUPS.index(code[2]) if code[2] in _TYPE_GROUPS else len(_TYPE_GROUPS)
    return _LENGTH_FT.get(code[0], NAN), float(group)


@lru_cache(maxsize=65536)
def _goods(codes: str) -> _Goods:
    parsed = [parse_hs(c) for c in split_list(codes)]
    chapters = [hs.chapter for hs in parsed if hs is not None]
    first = parsed[0] if parsed else None
    if not chapters:
        return _Goods(NAN, NAN, first.hs4 if first is not None else None)
    return _Goods(chapters[0], float(len(set(chapters))), first.hs4 if first is not None else None)


@lru_cache(maxsize=65536)
def _vague_share(descriptions: str) -> float:
    texts = split_list(descriptions)
    if not texts:
        return NAN
    return sum(bool(_VAGUE.search(t)) or len(t) < 8 for t in texts) / len(texts)


@lru_cache(maxsize=65536)
def _off_route_share(origins: str, route_countries: frozenset[str]) -> float:
    """Share of items whose known origin is neither the loading country nor on the route; NaN when unknown."""
    known = [o.upper() for o in split_list(origins)]
    if not known or not route_countries:
        return NAN
    return sum(o not in route_countries for o in known) / len(known)
