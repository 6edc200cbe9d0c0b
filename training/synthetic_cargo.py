"""Seeded synthetic cargo report history (one row per container) with planted smuggling patterns and biased labels.

The world is the declaration generator's (training.synthetic: its HS catalogue, countries,
anti-dumping chapters, laundering origins, consignee ids `IMP%05d` naming the same traders as its
importers) plus a fixed sea-freight world: loading ports (UN/LOCODEs) on trade lanes to the home
ports, the lanes' transshipment hubs and voyage times, and what goods of each chapter weigh per
package and per cubic metre. `seed` draws the parties, the reports and their containers. Hidden
contraband (smuggled goods concealed behind cover goods, misdeclared goods, laundered origins)
follows these patterns, each visible in columns a model sees:
- concealment on risky routes: transshipment through a few hubs (CONCEALMENT_HUBS) raises the
  rate of concealed contraband several-fold; officers know only some of those hubs;
- vague descriptions: risky consignors (shippers) describe goods as GENERAL CARGO, FAK, PARTS,
  SAID TO CONTAIN and the like (VAGUE_DESCRIPTIONS), and ship more misdeclared and concealed goods;
- mass anomaly: a container hiding contraband, or holding goods other than declared, weighs per
  package far more (sometimes far less) than the declared goods normally do;
- risky consignees: new consignees carry more contraband in their first weeks, and a few shell
  consignees (most of them new) carry it report after report, so a point-in-time consignee finding
  rate helps;
- risky filers and missing seals: a few complicit forwarders file late (pre-loading reports less
  than 24 h before loading, pre-arrival reports a few hours before arrival) and their reports carry
  more contraband; containers hiding contraband often have no seal recorded;
- origin laundering: goods of the anti-dumping chapters loaded in CN or HK are declared of another
  origin (VN, MY, TH, ID) that is neither the loading country nor on the route.
Labels are biased as in real cargo targeting: only inspected containers have findings, officers
target noisily on hidden intelligence and on what they see (listed hubs, vague descriptions, late
filing, no seal, new consignee, origin off the route), a scan misses more than a physical
examination, and a ~2% random control stream is scanned regardless.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv
from stdnum import imo

from features.cargo import LIST_SEPARATOR
from training.cargo_history import CARGO_HISTORY_COLUMNS
from training.synthetic import (
    _COUNTRY_WEIGHTS,
    _LAUNDERING_EXPORTS,
    _LAUNDERING_ORIGINS,
    ANTI_DUMPING_CHAPTERS,
    COUNTRIES,
    NATIONAL_PER_USD,
    _catalogue,
)

HOME_PORTS = ("KRPUS", "KRINC", "KRKAN")
_HOME_PORT_WEIGHTS = np.array([0.78, 0.15, 0.07])


@dataclass(frozen=True)
class _Lane:
    """A trade lane to the home ports: direct voyage days, transshipment hubs, P(0, 1, 2 transshipments)."""

    voyage_days: tuple[float, float]
    hubs: tuple[str, ...]
    transshipments: tuple[float, float, float]


_LANES: dict[str, _Lane] = {
    "NEA": _Lane((1.5, 4.0), ("HKHKG", "CNSHA", "TWKHH", "JPYOK"), (0.85, 0.14, 0.01)),
    "SEA": _Lane((4.0, 9.0), ("SGSIN", "MYPKG", "MYTPP", "HKHKG", "CNSHA"), (0.55, 0.38, 0.07)),
    "SAS": _Lane((12.0, 20.0), ("SGSIN", "MYPKG", "LKCMB", "MYTPP"), (0.3, 0.55, 0.15)),
    "MEA": _Lane((15.0, 21.0), ("SGSIN", "MYPKG", "LKCMB", "OMSLL"), (0.45, 0.45, 0.1)),
    "EUR": _Lane((32.0, 42.0), ("SGSIN", "MYTPP", "MYPKG", "AEJEA", "LKCMB", "EGPSD", "MAPTM"), (0.45, 0.4, 0.15)),
    "MED": _Lane((28.0, 36.0), ("EGPSD", "AEJEA", "LKCMB", "SGSIN", "MYPKG"), (0.3, 0.5, 0.2)),
    "NAW": _Lane((10.0, 16.0), ("JPYOK", "CNSHA", "HKHKG"), (0.85, 0.15, 0.0)),
    "NAE": _Lane((30.0, 38.0), ("PABLB", "JPYOK", "USLAX"), (0.5, 0.45, 0.05)),
    "SAM": _Lane((38.0, 48.0), ("PABLB", "SGSIN", "CNSHA", "ZADUR"), (0.3, 0.55, 0.15)),
    "OCE": _Lane((12.0, 18.0), ("SGSIN", "HKHKG", "MYTPP"), (0.7, 0.28, 0.02)),
}
# Loading ports (UN/LOCODE: the first two letters are the country) and their lane.
_LOADING_PORTS: dict[str, str] = {
    "CNSHA": "NEA", "CNNGB": "NEA", "CNYTN": "NEA", "CNTAO": "NEA", "CNXMN": "NEA", "HKHKG": "NEA",
    "TWKHH": "NEA", "JPTYO": "NEA", "JPYOK": "NEA", "JPUKB": "NEA",
    "VNSGN": "SEA", "VNHPH": "SEA", "THLCH": "SEA", "MYPKG": "SEA", "MYTPP": "SEA", "SGSIN": "SEA",
    "IDTPP": "SEA", "INNSA": "SAS", "INMUN": "SAS", "PKKHI": "SAS", "BDCGP": "SAS", "AEJEA": "MEA",
    "DEHAM": "EUR", "DEBRV": "EUR", "NLRTM": "EUR", "BEANR": "EUR", "GBFXT": "EUR", "FRLEH": "EUR",
    "PLGDN": "EUR", "TRIST": "MED", "ITGOA": "MED", "ESVLC": "MED", "USLAX": "NAW", "USLGB": "NAW",
    "CAVAN": "NAW", "MXZLO": "NAW", "USNYC": "NAE", "USSAV": "NAE", "BRSSZ": "SAM", "AUSYD": "OCE",
    "AUMEL": "OCE",
}  # fmt: skip
# Shippers of a country without a seaport of its own load at a neighbour's.
_GATEWAYS = {"CH": ("DEHAM", "NLRTM", "ITGOA")}
#: Hubs through which concealed contraband moves; officers watch only _LISTED_HUBS (the default
#: cargo rule set's risky transshipment ports), so LKCMB is a risk only the data shows.
CONCEALMENT_HUBS = ("AEJEA", "MYPKG", "LKCMB")
_LISTED_HUBS = ("AEJEA", "MYPKG")
#: Where concealment moves in the second half of a drifting window (Sihanoukville: Cambodia, where
#: the declaration generator's origin laundering moves too); never on a route otherwise.
DRIFT_HUB = "KHKOS"
#: Descriptions too vague to screen against (the WCO / ICS2 lists of unacceptable descriptions).
VAGUE_DESCRIPTIONS = (
    "GENERAL CARGO",
    "FAK",
    "FREIGHT ALL KINDS",
    "CONSOLIDATED CARGO",
    "PARTS",
    "SPARE PARTS",
    "SAID TO CONTAIN",
)

# chapter -> (typical kg per package, stowage density in tonnes per cubic metre)
_PACKING: dict[int, tuple[float, float]] = {
    3: (22.0, 0.55), 8: (14.0, 0.45), 9: (60.0, 0.6), 22: (14.0, 0.75), 27: (190.0, 0.85),
    30: (9.0, 0.3), 33: (11.0, 0.35), 38: (25.0, 0.7), 39: (25.0, 0.6), 40: (35.0, 0.6),
    42: (12.0, 0.18), 52: (220.0, 0.5), 61: (12.0, 0.17), 62: (14.0, 0.18), 64: (10.0, 0.15),
    72: (1800.0, 3.5), 73: (350.0, 1.2), 76: (600.0, 1.0), 84: (280.0, 0.4), 85: (22.0, 0.25),
    87: (90.0, 0.35), 90: (14.0, 0.2), 93: (30.0, 0.5), 94: (30.0, 0.15), 95: (9.0, 0.12),
}  # fmt: skip
_DEFAULT_PACKING = (25.0, 0.4)

SIZE_TYPES = ("22G1", "42G1", "45G1", "22R1", "45R1", "22U1")
_VOLUME_M3 = np.array([33.2, 67.7, 76.3, 28.3, 67.0, 32.0])
_PAYLOAD_KG = np.array([28_000.0, 28_800.0, 28_600.0, 27_400.0, 29_000.0, 28_000.0])
# P(size type) by what the container's first item is: general, heavy, chilled, perishable
_SIZE_TYPE_P = np.array(
    [
        [0.28, 0.17, 0.52, 0.005, 0.005, 0.02],
        [0.70, 0.12, 0.10, 0.0, 0.0, 0.08],
        [0.25, 0.15, 0.40, 0.05, 0.15, 0.0],
        [0.04, 0.02, 0.04, 0.25, 0.65, 0.0],
    ]
)
_HEAVY_CHAPTERS = frozenset({27, 52, 72, 73, 76})
_CHILLED_CHAPTERS = frozenset({22, 30})
_PERISHABLE_CHAPTERS = frozenset({3, 8})

# ISO 6346 letter values: a character's index here, multiples of 11 skipped (as stdnum.iso6346).
_ISO6346_ALPHABET = "0123456789A BCDEFGHIJK LMNOPQRSTU VWXYZ"
_CARRIERS = 20
_LESSORS = 8
_FORWARDERS = 150
_BROKERS = 150  # the declaration generator's declarants, BRK%03d, named as notify parties
_NEW_DAYS = 60.0  # a consignee counts as new this many days after its first report


def generate_cargo_history(n_reports: int, *, seed: int, start: date, days: int, drift: float = 0.0) -> pd.DataFrame:
    """One row per container of `n_reports` sea cargo reports filed over `days` days from `start`.

    Columns: exactly training.cargo_history.CARGO_HISTORY_COLUMNS, in that order, rows in
    filing_time order (UTC). Same arguments, same frame. revenue_recovered (national currency) is
    positive on a finding, 0 on an inspection without one and NaN where nothing was inspected.

    `drift` (0 = none; `risk data generate` uses 1) makes the world change over the window: in its
    second half, reports carrying concealed contraband are rerouted through DRIFT_HUB, a hub never
    used before and unknown to officers, with probability 0.8 times `drift` (at most 0.8). Drift has
    a random stream of its own: it changes only those reports' transshipment ports and, through
    targeting, their inspections and findings.
    """
    if n_reports < 1 or days < 1:
        raise ValueError("need at least one report and one day")
    rng = np.random.default_rng(seed)
    cat = _catalogue()
    n_codes = cat.hs6.size
    ad_codes = np.flatnonzero(np.isin(cat.chapter, list(ANTI_DUMPING_CHAPTERS)))
    packing = np.array([_PACKING.get(int(ch), _DEFAULT_PACKING) for ch in cat.chapter])
    world = np.random.default_rng(20240102)  # the goods' packing is the same for every seed
    log_kg_per_package = np.log(packing[:, 0]) + world.normal(0.0, 0.3, n_codes)
    log_density = np.log(packing[:, 1]) + world.normal(0.0, 0.15, n_codes)
    size_group = np.select(
        [
            np.isin(cat.chapter, list(_HEAVY_CHAPTERS)),
            np.isin(cat.chapter, list(_CHILLED_CHAPTERS)),
            np.isin(cat.chapter, list(_PERISHABLE_CHAPTERS)),
        ],
        [1, 2, 3],
        default=0,
    )

    ports = np.array(list(_LOADING_PORTS))
    lane_names = list(_LANES)
    port_lane = np.array([lane_names.index(_LOADING_PORTS[p]) for p in ports])
    max_hubs = max(len(lane.hubs) for lane in _LANES.values())
    hub_table = np.array([[*lane.hubs, *[""] * (max_hubs - len(lane.hubs))] for lane in _LANES.values()])
    ts_p = np.cumsum([lane.transshipments for lane in _LANES.values()], axis=1)
    voyage = np.array([lane.voyage_days for lane in _LANES.values()])

    # consignors (shippers): where they load, what they ship, a few risky ones
    n_cnr = max(30, n_reports // 12)
    countries = np.array([c for c in COUNTRIES if c != HOME_PORTS[0][:2]])
    country_p = _COUNTRY_WEIGHTS[[COUNTRIES.index(c) for c in countries]]
    cnr_country = rng.choice(countries, size=n_cnr, p=country_p / country_p.sum())
    country_ports = {
        c: np.flatnonzero(np.isin(ports, _GATEWAYS[c]) if c in _GATEWAYS else np.char.startswith(ports, c))
        for c in countries
    }
    # a shipper loads at its home port, sometimes at another port of its country
    cnr_port = np.array([rng.choice(country_ports[c], size=2) for c in cnr_country])
    cnr_activity = _trade_volume(rng, n_cnr)
    risky_cnr = rng.random(n_cnr) < 0.05
    # Risky shippers and shell consignees trade like small firms: none of them dominates a history.
    cnr_activity = np.where(risky_cnr, np.minimum(cnr_activity, np.quantile(cnr_activity, 0.8)), cnr_activity)
    cnr_profile = np.empty((n_cnr, 3), dtype=np.int64)
    for j in range(n_cnr):  # a shipper trades goods of one chapter, now and then of a second
        pool = ad_codes if risky_cnr[j] and rng.random() < 0.6 else np.arange(n_codes)
        main = np.flatnonzero(cat.chapter == cat.chapter[rng.choice(pool)])
        cnr_profile[j] = [*rng.choice(main, size=2), rng.choice(main if rng.random() < 0.7 else pool)]

    # consignees: activity, shells, when they first appear, their suppliers and forwarder
    n_cee = max(40, n_reports // 10)
    cee_activity = _trade_volume(rng, n_cee)
    shell = rng.random(n_cee) < 0.06
    cee_activity = np.where(
        shell, np.clip(cee_activity, np.median(cee_activity), np.quantile(cee_activity, 0.9)), cee_activity
    )
    established = rng.random(n_cee) < np.where(shell, 0.25, 0.65)
    entry_day = np.where(established, 0.0, rng.uniform(0, days * 0.95, n_cee))
    risky_pool = np.flatnonzero(risky_cnr) if risky_cnr.any() else np.arange(n_cnr)
    suppliers = rng.choice(n_cnr, size=(n_cee, 3), p=cnr_activity / cnr_activity.sum())
    shell_suppliers = rng.choice(risky_pool, size=(n_cee, 3))
    suppliers = np.where(shell[:, None] & (rng.random((n_cee, 3)) < 0.5), shell_suppliers, suppliers)
    risky_fwd = rng.random(_FORWARDERS) < 0.04
    risky_fwd[rng.integers(0, _FORWARDERS)] = True  # at least one
    favourite_fwd = np.where(
        shell & (rng.random(n_cee) < 0.6),
        rng.choice(np.flatnonzero(risky_fwd), size=n_cee),
        rng.integers(0, _FORWARDERS, n_cee),
    )

    # carriers, their fleets and the container owners (carriers' codes, then lessors')
    owner_codes = _owner_codes(rng, _CARRIERS + _LESSORS)
    carrier_share = rng.pareto(1.5, _CARRIERS) + 0.3
    fleet = rng.integers(4, 13, _CARRIERS)
    fleet_start = np.cumsum(fleet) - fleet
    hulls = rng.choice(np.arange(900_000, 1_000_000), size=int(fleet.sum()), replace=False)
    imo_numbers = np.array([f"{h}{imo.calc_check_digit(str(h))}" for h in hulls])

    # reports, in filing order
    cee = rng.choice(n_cee, size=n_reports, p=cee_activity / cee_activity.sum())
    day = entry_day[cee] + rng.random(n_reports) * (days - entry_day[cee])
    filed = np.floor(day * 86400.0).astype(np.int64)
    order = np.argsort(filed, kind="stable")
    cee, filed = cee[order], filed[order]
    progress = filed / (days * 86400.0)  # 0 at the start of the window, 1 at its end
    new_cee = ~established[cee] & (filed / 86400.0 - entry_day[cee] < _NEW_DAYS)
    cnr = np.where(
        rng.random(n_reports) < 0.85,
        suppliers[cee, rng.integers(0, 3, n_reports)],
        rng.choice(n_cnr, size=n_reports, p=cnr_activity / cnr_activity.sum()),
    )
    pre_loading = rng.random(n_reports) < 0.3
    by_forwarder = rng.random(n_reports) < 0.6
    fwd = np.where(rng.random(n_reports) < 0.7, favourite_fwd[cee], rng.integers(0, _FORWARDERS, n_reports))
    risky_filer = by_forwarder & risky_fwd[fwd]
    carrier = rng.choice(_CARRIERS, size=n_reports, p=carrier_share / carrier_share.sum())
    vessel = fleet_start[carrier] + (rng.random(n_reports) * fleet[carrier]).astype(np.int64)
    version = np.where(rng.random(n_reports) < np.where(risky_filer, 0.25, 0.1), 2 + (rng.random(n_reports) < 0.25), 1)
    loading = cnr_port[cnr, (rng.random(n_reports) >= 0.85).astype(np.int64)]
    lane = port_lane[loading]
    discharge = rng.choice(len(HOME_PORTS), size=n_reports, p=_HOME_PORT_WEIGHTS)

    # route: up to two distinct hubs of the lane, never the loading port itself
    keys = rng.random((n_reports, max_hubs))
    hubs_of = hub_table[lane]
    keys[(hubs_of == "") | (hubs_of == ports[loading][:, None])] = np.inf
    pick = np.argsort(keys, axis=1)[:, :2]
    hub1 = hubs_of[np.arange(n_reports), pick[:, 0]]
    hub2 = hubs_of[np.arange(n_reports), pick[:, 1]]
    n_ts = (rng.random(n_reports)[:, None] >= ts_p[lane][:, :2]).sum(axis=1)
    hub1 = np.where(n_ts >= 1, hub1, "")
    hub2 = np.where(n_ts >= 2, hub2, "")
    risky_route = np.isin(hub1, CONCEALMENT_HUBS) | np.isin(hub2, CONCEALMENT_HUBS)
    voyage_h = 24.0 * (
        voyage[lane, 0]
        + rng.random(n_reports) * (voyage[lane, 1] - voyage[lane, 0])
        + n_ts * rng.uniform(1.5, 4, n_reports)
    )

    # filing times: most file 24 h or more ahead (past 24 h even when rounded to the minute);
    # late filers (mostly risky forwarders) file less than 24 h before loading, or before arrival
    late = rng.random(n_reports) < np.where(risky_filer, 0.6, 0.02)
    lead_h = np.where(late, rng.uniform(-12.0, 23.9, n_reports), 24.05 + rng.gamma(2.0, 24.0, n_reports))
    # a pre-arrival report is mostly due 24 h before loading too, sometimes only 24 h before arrival
    in_voyage = rng.random(n_reports) < 0.2
    before_arrival_h = np.where(
        late,
        rng.uniform(1.0, 12.0, n_reports),
        24.05 + np.where(in_voyage, rng.random(n_reports) * voyage_h, voyage_h + rng.gamma(2.0, 18.0, n_reports)),
    )
    voyage_s = np.round(voyage_h * 60.0).astype(np.int64) * 60
    arrival_s = np.where(
        pre_loading,
        _to_minute(filed + lead_h * 3600.0) + voyage_s,
        _to_minute(filed + before_arrival_h * 3600.0),
    )
    loading_s = arrival_s - voyage_s

    # containers
    n_cont = np.minimum(rng.geometric(0.5, n_reports), 10)
    r = np.repeat(np.arange(n_reports), n_cont)
    n_c = r.size
    conceal_rate = (
        0.006
        * np.where(risky_route, 20.0, 1.0)
        * np.where(risky_cnr[cnr], 6.0, 1.0)
        * np.where(shell[cee], 12.0, 1.0)
        * np.where(new_cee, 3.0, 1.0)
        * np.where(risky_filer, 6.0, 1.0)
    )
    misdeclare_rate = (
        0.005
        * np.where(risky_cnr[cnr], 20.0, 1.0)
        * np.where(shell[cee], 10.0, 1.0)
        * np.where(new_cee, 2.5, 1.0)
        * np.where(risky_filer, 5.0, 1.0)
    )
    u = rng.random((4, n_c))
    concealed = u[0] < np.minimum(conceal_rate[r], 0.6)
    misdeclared = u[1] < np.minimum(misdeclare_rate[r], 0.5)
    seal_count = np.where(u[2] < np.where(concealed, 0.3, 0.015), 0, 1 + (u[3] < 0.12))

    # items
    n_items = np.minimum(rng.geometric(0.5, n_c), 5)
    c = np.repeat(np.arange(n_c), n_items)
    n_i = c.size
    ri = r[c]
    code = np.where(rng.random(n_i) < 0.9, cnr_profile[cnr[ri], rng.integers(0, 3, n_i)], rng.integers(0, n_codes, n_i))
    first_item = np.cumsum(n_items) - n_items
    vague = rng.random(n_i) < np.minimum(0.015 + 0.5 * risky_cnr[cnr[ri]] + 0.15 * (concealed | misdeclared)[c], 0.9)
    descriptions = np.char.upper(cat.description[code].astype(str))
    descriptions = np.where(
        vague, np.array(VAGUE_DESCRIPTIONS)[rng.integers(0, len(VAGUE_DESCRIPTIONS), n_i)], descriptions
    )
    loading_country = np.array([p[:2] for p in ports])[loading]
    hub1_country = np.array([h[:2] for h in hub1])
    hub2_country = np.array([h[:2] for h in hub2])
    origin = cnr_country[cnr[ri]].astype("<U2")
    other = rng.random(n_i)
    origin = np.where(
        other < 0.06,
        np.array(COUNTRIES)[rng.choice(len(COUNTRIES), size=n_i, p=_COUNTRY_WEIGHTS / _COUNTRY_WEIGHTS.sum())],
        origin,
    )
    origin = np.where((other > 0.97) & (hub1[ri] != ""), hub1_country[ri], origin)
    ad_item = np.isin(cat.chapter[code], list(ANTI_DUMPING_CHAPTERS))
    launder_rate = np.where(shell[cee[ri]], 0.4, np.where(risky_cnr[cnr[ri]], 0.35, 0.01))
    laundered = ad_item & np.isin(loading_country[ri], _LAUNDERING_EXPORTS) & (rng.random(n_i) < launder_rate)
    origin = np.where(
        laundered, _off_route_origin(rng, loading_country[ri], hub1_country[ri], hub2_country[ri]), origin
    )
    laundered_c = np.bincount(c, weights=laundered, minlength=n_c) > 0

    # mass and packages: a share of the container's load per item, at what such goods weigh
    log_rho = np.bincount(c, weights=log_density[code], minlength=n_c) / n_items
    group = size_group[code[first_item]]
    size_type = (rng.random(n_c)[:, None] >= np.cumsum(_SIZE_TYPE_P[group], axis=1)[:, :-1]).sum(axis=1)
    fill = np.where(rng.random(n_c) < 0.1, rng.uniform(0.05, 0.5, n_c), rng.beta(6.0, 1.6, n_c))
    payload = _PAYLOAD_KG[size_type]
    mass = np.minimum(payload * rng.uniform(0.88, 1.0, n_c), 1000.0 * np.exp(log_rho) * _VOLUME_M3[size_type] * fill)
    mass = np.maximum(mass, 150.0)
    share = rng.gamma(2.0, 1.0, n_i)
    share /= np.bincount(c, weights=share, minlength=n_c)[c]
    kg_per_package = np.exp(log_kg_per_package[code] + rng.normal(0.0, 0.2, n_i))
    packages = np.maximum(np.bincount(c, weights=mass[c] * share / kg_per_package, minlength=n_c), 1.0)
    heavy = rng.random(n_c) < 0.75
    factor = np.where(heavy, rng.uniform(1.6, 3.2, n_c), rng.uniform(0.3, 0.6, n_c))
    anomalous = (concealed & (rng.random(n_c) < 0.8)) | (misdeclared & (rng.random(n_c) < 0.35))
    factor = np.where(anomalous, factor, 1.0)
    # the weighed mass holds what is hidden; where it would exceed the payload, fewer packages are declared
    anomalous_mass = np.minimum(mass * factor, payload * rng.uniform(0.9, 1.0, n_c))
    packages = np.where(anomalous, packages * anomalous_mass / (mass * factor), packages)
    mass = np.round(np.where(anomalous, anomalous_mass, mass))
    packages = np.maximum(np.round(packages), n_items).astype(np.int64)

    # drift: concealment moves to a new hub in the second half (a stream of its own)
    if drift > 0:
        drift_rng = np.random.default_rng([seed, 3])
        conceals = np.bincount(r, weights=concealed, minlength=n_reports) > 0
        moved = conceals & (progress > 0.5) & (drift_rng.random(n_reports) < 0.8 * min(1.0, drift))
        first_risky = np.isin(hub1, CONCEALMENT_HUBS) | ~np.isin(hub2, CONCEALMENT_HUBS)
        hub1 = np.where(moved & first_risky, DRIFT_HUB, hub1)
        hub2 = np.where(moved & ~first_risky, DRIFT_HUB, hub2)
        hub1_country = np.array([h[:2] for h in hub1])
        hub2_country = np.array([h[:2] for h in hub2])
    transshipment = np.char.add(np.char.add(hub1, np.where(hub2 != "", LIST_SEPARATOR, "")), hub2)
    listed_route = np.isin(hub1, _LISTED_HUBS) | np.isin(hub2, _LISTED_HUBS)

    # inspections: officers target suspicious containers (noisily); a random control stream is scanned
    fraud = concealed | misdeclared | laundered_c
    on_route = (origin == loading_country[ri]) | (origin == hub1_country[ri]) | (origin == hub2_country[ri])
    off_route_ad = np.bincount(c, weights=ad_item & ~on_route, minlength=n_c) > 0
    vague_c = np.bincount(c, weights=vague, minlength=n_c) > 0
    logit = (
        -3.5
        + 1.9 * fraud
        + 0.4 * listed_route[r]
        + 0.6 * vague_c
        + 0.4 * late[r]
        + 0.9 * (seal_count == 0)
        + 0.5 * new_cee[r]
        + 0.6 * off_route_ad
        + rng.normal(0.0, 0.8, n_reports)[r]
        + rng.normal(0.0, 0.5, n_c)
    )
    random_control = rng.random(n_c) < 0.02
    targeted = rng.random(n_c) < 1.0 / (1.0 + np.exp(-logit))
    inspected = random_control | targeted
    physical = targeted & ~random_control & (rng.random(n_c) < 1.0 / (1.0 + np.exp(-(logit + 1.0))))
    examination = np.where(physical, "physical", np.where(inspected, "scan", ""))
    detected = rng.random(n_c) < np.where(physical, 0.95, 0.8)
    finding = fraud & inspected & detected
    goods_usd = mass * np.exp(cat.log_vpk[code[first_item]])
    recovered_usd = (
        concealed * np.exp(rng.normal(np.log(40_000.0), 0.9, n_c))
        + misdeclared * np.exp(rng.normal(np.log(6_000.0), 0.8, n_c))
        + laundered_c * goods_usd * rng.uniform(0.15, 0.6, n_c)  # the anti-dumping duty evaded
    )
    revenue = np.where(
        finding, np.maximum(np.round(recovered_usd * NATIONAL_PER_USD, 2), 1.0), np.where(inspected, 0.0, np.nan)
    )

    container_number = _container_numbers(rng, r, size_type, owner_codes)
    start_ts = pd.Timestamp(datetime(start.year, start.month, start.day, tzinfo=UTC))
    report_ids = np.char.add(f"C{seed % 1000:03d}", np.char.zfill(np.arange(n_reports).astype(str), 7))
    fwd_ids = np.char.add("FWD", np.char.zfill(fwd.astype(str), 3))
    carrier_ids = np.char.add("CAR", np.char.zfill(carrier.astype(str), 2))
    cee_ids = np.char.add("IMP", np.char.zfill(cee.astype(str), 5))
    notify = np.where(
        rng.random(n_reports) < 0.7,
        cee_ids,
        np.char.add("BRK", np.char.zfill(rng.integers(0, _BROKERS, n_reports).astype(str), 3)),
    )
    master = np.char.add(owner_codes[carrier], np.char.zfill(rng.integers(0, 10**10, n_reports).astype(str), 10))
    house = np.where(
        by_forwarder,
        np.char.add(
            np.char.add("H", np.char.zfill(fwd.astype(str), 3)),
            np.char.zfill(rng.integers(0, 10**8, n_reports).astype(str), 8),
        ),
        "",
    )
    frame = pd.DataFrame(
        {
            "report_id": report_ids[r],
            "report_version": version[r].astype(np.int64),
            "filing_type": np.where(pre_loading, "pre_loading", "pre_arrival")[r],
            "filing_time": start_ts + pd.to_timedelta(filed[r], unit="s"),
            "transport_mode": np.ones(n_c, dtype=np.int64),
            "filer_id": np.where(by_forwarder, fwd_ids, carrier_ids)[r],
            "carrier_id": carrier_ids[r],
            "vessel_imo_number": imo_numbers[vessel][r],
            "master_document": master[r],
            "house_document": house[r],
            "port_of_loading": ports[loading][r],
            "transshipment_ports": transshipment[r],
            "port_of_discharge": np.array(HOME_PORTS)[discharge][r],
            "planned_loading_time": start_ts + pd.to_timedelta(loading_s[r], unit="s"),
            "planned_arrival_time": start_ts + pd.to_timedelta(arrival_s[r], unit="s"),
            "consignor_id": np.char.add("CNR", np.char.zfill(cnr.astype(str), 5))[r],
            "consignee_id": cee_ids[r],
            "notify_party_id": notify[r],
            "container_number": container_number,
            "size_type_code": np.array(SIZE_TYPES)[size_type],
            "seal_count": seal_count.astype(np.int64),
            "gross_mass_kg": mass.astype(np.float64),
            "packages": packages,
            "item_count": n_items.astype(np.int64),
            "hs_codes": _join(cat.hs6[code], n_items),
            "descriptions": _join(descriptions, n_items),
            "origin_countries": _join(origin, n_items),
            "inspected": inspected,
            "examination": examination,
            "finding": finding,
            "random_control": random_control,
            "revenue_recovered": revenue,
        }
    )
    for column in CARGO_HISTORY_COLUMNS:
        if column.kind == "text":
            frame[column.name] = frame[column.name].astype(str)
    return frame[[column.name for column in CARGO_HISTORY_COLUMNS]]


def _trade_volume(rng: np.random.Generator, n: int) -> np.ndarray:
    """Heavy-tailed activity of n traders, the largest few capped so that none files most of a history."""
    activity = rng.pareto(1.3, n) + 0.2
    return np.minimum(activity, np.quantile(activity, 0.99))


def _to_minute(seconds: np.ndarray) -> np.ndarray:
    return (np.round(seconds / 60.0) * 60).astype(np.int64)


def _owner_codes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Distinct made-up ISO 6346 owner codes: three letters and the freight-container category U."""
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    codes: list[str] = []
    while len(codes) < n:
        code = "".join(rng.choice(letters, size=3)) + "U"
        if code not in codes:
            codes.append(code)
    return np.array(codes)


def _off_route_origin(rng: np.random.Generator, loading: np.ndarray, via1: np.ndarray, via2: np.ndarray) -> np.ndarray:
    """A laundering origin that is neither the loading country nor a transshipment country."""
    candidates = np.array(_LAUNDERING_ORIGINS)
    first = rng.integers(0, candidates.size, loading.size)
    out = np.full(loading.size, "", dtype="<U2")
    for k in range(candidates.size):
        option = candidates[(first + k) % candidates.size]
        free = (out == "") & (option != loading) & (option != via1) & (option != via2)
        out[free] = option[free]
    return out


def _container_numbers(
    rng: np.random.Generator, report: np.ndarray, size_type: np.ndarray, owner_codes: np.ndarray
) -> np.ndarray:
    """ISO 6346 numbers with a valid check digit, from a pool per size type, so containers recur
    over the window (each about three times); never twice in one report."""
    n = report.size
    counts = np.bincount(size_type, minlength=len(SIZE_TYPES))
    pool_size = np.maximum(50, np.ceil(counts / 3.0)).astype(np.int64)
    pool_start = np.cumsum(pool_size) - pool_size
    serial = rng.choice(1_000_000, size=int(pool_size.sum()), replace=False)
    owner = rng.integers(0, owner_codes.size, serial.size)
    within = (rng.random(n) * pool_size[size_type]).astype(np.int64)
    while True:
        repeated = pd.DataFrame({"report": report, "size_type": size_type, "within": within}).duplicated().to_numpy()
        if not repeated.any():
            break
        within[repeated] = (within[repeated] + 1) % pool_size[size_type][repeated]
    index = pool_start[size_type] + within
    letter_values = {ch: v for v, ch in enumerate(_ISO6346_ALPHABET) if ch != " "}
    owner_sum = np.array([sum(letter_values[ch] << i for i, ch in enumerate(code)) for code in owner_codes])
    digits = serial[index][:, None] // 10 ** np.arange(5, -1, -1) % 10
    total = owner_sum[owner[index]] + (digits << np.arange(4, 10)).sum(axis=1)
    check = total % 11 % 10
    serial_text = np.char.zfill(serial[index].astype(str), 6)
    return np.char.add(np.char.add(owner_codes[owner[index]], serial_text), check.astype(str))


def _join(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Consecutive runs of `values` (`counts` long) joined by the list separator, one string per run."""
    items = values.astype(str).tolist()
    ends = np.cumsum(counts).tolist()
    starts = [0, *ends[:-1]]
    return np.array([LIST_SEPARATOR.join(items[a:b]) for a, b in zip(starts, ends, strict=True)], dtype=object)
