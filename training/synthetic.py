"""Seeded synthetic filing history with planted fraud patterns and biased inspection labels.

The world (HS catalogue, countries, duty rates) is fixed; `seed` draws the filings. Patterns:
- undervaluation: customs value far below the HS band of the goods;
- misclassification: goods declared under a cheaper-duty HS code of the same chapter, so their
  value per kg sits far above the declared code's band;
- origin laundering: anti-dumping goods (chapters 72, 73, 76, 85) declared as of an FTA origin
  with preference claimed while dispatched from a different, risky country (CN, HK);
- missing permits on goods that need one;
- permit abuse: a cited permit drawn close to or past its authorised quantity, or one about to
  expire or already expired (mostly shell importers);
- risky new importers: shell importers file soon after they appear, with more of everything;
- complicit brokers: a few declarants undervalue for whichever importer they file for.
Labels are biased as in real customs data: only inspected declarations have findings, and
officers inspect the suspicious ones more; a ~2% random control stream is inspected regardless.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

COUNTRIES = (
    "CN", "US", "DE", "JP", "KR", "VN", "MY", "TH", "IN", "TR", "IT", "FR", "GB", "NL",
    "ID", "MX", "BR", "PL", "ES", "TW", "BD", "PK", "CA", "AU", "CH", "SG", "HK", "AE",
)  # fmt: skip
_COUNTRY_WEIGHTS = np.array(
    [22, 9, 8, 6, 5, 6, 3, 3, 4, 3, 3, 2.5, 2.5, 2, 2, 1.5, 1, 1.5, 1.5, 2, 1.5, 1, 1, 1, 1, 1, 1, 1]
)
FTA_ORIGINS = frozenset({"JP", "KR", "VN", "MY", "TH", "ID", "CA", "AU", "CH", "GB", "MX", "SG"})
_LAUNDERING_ORIGINS = ("VN", "MY", "TH", "ID")
_LAUNDERING_EXPORTS = ("CN", "HK")
_HUBS = ("NL", "SG", "HK", "AE", "DE", "US")
_DRIFT_HUB = "KH"  # where laundering moves to when the history drifts
ANTI_DUMPING_CHAPTERS = frozenset({72, 73, 76, 85})

# chapter -> (description, mean log value per kg, unit kind)
_CHAPTERS: dict[int, tuple[str, float, str]] = {
    3: ("fish and crustaceans", 2.2, "KGM"),
    8: ("edible fruit and nuts", 1.2, "KGM"),
    9: ("coffee, tea and spices", 2.0, "KGM"),
    22: ("beverages and spirits", 1.5, "LTR"),
    27: ("mineral fuels and oils", 0.0, "KGM"),
    30: ("pharmaceutical products", 4.5, "KGM"),
    33: ("cosmetics and perfumery", 3.2, "NAR"),
    38: ("chemical products", 1.6, "KGM"),
    39: ("plastics and articles thereof", 1.0, "KGM"),
    40: ("rubber and articles thereof", 1.2, "KGM"),
    42: ("leather articles and handbags", 3.4, "NAR"),
    52: ("cotton", 1.3, "KGM"),
    61: ("knitted apparel", 2.9, "NAR"),
    62: ("woven apparel", 3.0, "NAR"),
    64: ("footwear", 2.8, "PR"),
    72: ("iron and steel", -0.3, "KGM"),
    73: ("articles of iron or steel", 0.6, "KGM"),
    76: ("aluminium and articles thereof", 1.1, "KGM"),
    84: ("machinery and mechanical appliances", 2.6, "NAR"),
    85: ("electrical machinery and equipment", 3.3, "NAR"),
    87: ("vehicles and parts", 2.2, "NAR"),
    90: ("optical and medical instruments", 4.0, "NAR"),
    93: ("arms and ammunition", 4.2, "NAR"),
    94: ("furniture and lighting", 1.8, "NAR"),
    95: ("toys and games", 2.1, "NAR"),
}
PERMIT_CHAPTERS = frozenset({30, 93})
_DUTY_RATES = np.array([0.0, 0.03, 0.05, 0.08, 0.13, 0.2])
_VAT = 0.10
# Catalogue values are in US dollars; declarations state customs values in the national currency (KRW).
NATIONAL_PER_USD = 1_400.0


@dataclass(frozen=True)
class _Catalogue:
    hs6: np.ndarray  # str
    chapter: np.ndarray
    log_vpk: np.ndarray  # mean log value per kg
    duty: np.ndarray
    unit: np.ndarray  # str
    kg_per_unit: np.ndarray
    decoy: np.ndarray  # index of a cheaper-duty code of the same chapter, -1 when none
    description: np.ndarray


def _catalogue() -> _Catalogue:
    rng = np.random.default_rng(20240101)  # the world is the same for every seed
    hs6: list[str] = []
    chapter: list[int] = []
    log_vpk: list[float] = []
    duty: list[float] = []
    unit: list[str] = []
    kg_per_unit: list[float] = []
    desc: list[str] = []
    for ch, (text, mu, kind) in _CHAPTERS.items():
        headings = rng.choice(np.arange(1, 40), size=int(rng.integers(2, 4)), replace=False)
        for heading in sorted(headings.tolist()):
            for sub in sorted(rng.choice(np.arange(10, 99), size=int(rng.integers(1, 4)), replace=False).tolist()):
                hs6.append(f"{ch:02d}{heading:02d}{sub:02d}")
                chapter.append(ch)
                log_vpk.append(mu + rng.normal(0.0, 0.7))
                duty.append(float(rng.choice(_DUTY_RATES)))
                unit.append(kind)
                kg_per_unit.append(float(np.exp(rng.normal(0.0, 1.2))) if kind != "KGM" else 1.0)
                desc.append(text)
    ch_arr = np.array(chapter)
    lv = np.array(log_vpk)
    du = np.array(duty)
    decoy = np.full(len(hs6), -1)
    for i in range(len(hs6)):
        # a code of the same chapter with a lower duty and goods clearly cheaper per kg
        cands = np.flatnonzero((ch_arr == ch_arr[i]) & (du < du[i]) & (lv < lv[i] - 0.5))
        if cands.size:
            decoy[i] = cands[np.argmin(du[cands])]
    return _Catalogue(np.array(hs6), ch_arr, lv, du, np.array(unit), np.array(kg_per_unit), decoy, np.array(desc))


_DECLARANTS = 150


def generate_history(n_declarations: int, *, seed: int, start: date, days: int, drift: float = 0.0) -> pd.DataFrame:
    """One row per goods item of `n_declarations` declarations lodged over `days` days from `start`.

    Columns: features.RAW_COLUMNS plus declaration_id, item_number, lodgement_time (UTC),
    importer_id, declarant_id, exporter_id, customs_office, description, inspected, finding,
    random_control; the entity history columns are left to training.train.prepare_history.
    permit_balance_used / permit_days_to_expiry are what the permit
    ledger would have said at lodgement, NaN on items citing no permit. Same arguments, same frame.
    revenue_recovered is what a finding recovered (duties on the undervalued part, the duty
    difference of a misclassification, the preference of a laundered origin, a fine otherwise):
    0 on inspections without a finding, NaN where nothing was inspected.

    `drift` (0 = none; `risk data generate` uses 1) makes the world change over the window as it
    does in practice: undervaluation by established importers rises linearly, by 2 percentage
    points times `drift` at the end, and origin laundering moves to a hub never used before in the
    second half, so a model trained on the early months loses precision on the late ones.
    """
    if n_declarations < 1 or days < 1:
        raise ValueError("need at least one declaration and one day")
    rng = np.random.default_rng(seed)
    cat = _catalogue()
    n_codes = cat.hs6.size
    origin_p = _COUNTRY_WEIGHTS / _COUNTRY_WEIGHTS.sum()
    ad_codes = np.flatnonzero(np.isin(cat.chapter, list(ANTI_DUMPING_CHAPTERS)))

    # importers: activity, shell-company flag, when they appear, what and where they buy
    n_imp = max(40, n_declarations // 12)
    activity = rng.pareto(1.3, n_imp) + 0.2
    shell = rng.random(n_imp) < 0.06
    established = rng.random(n_imp) < np.where(shell, 0.25, 0.65)
    entry_day = np.where(established, 0.0, rng.uniform(0, days * 0.95, n_imp))
    aeo = np.where(
        shell,
        1,
        rng.choice([1, 2, 3, 4], size=n_imp, p=[0.75, 0.1, 0.05, 0.1]),
    )
    aeo = np.where((activity > np.quantile(activity, 0.9)) & ~shell & (rng.random(n_imp) < 0.5), 4, aeo)
    profile = np.empty((n_imp, 3), dtype=np.int64)
    for j in range(n_imp):
        pool = ad_codes if shell[j] and rng.random() < 0.6 else np.arange(n_codes)
        profile[j] = rng.choice(pool, size=3)
    home_origin = rng.choice(len(COUNTRIES), size=n_imp, p=origin_p)

    # declarations
    imp = rng.choice(n_imp, size=n_declarations, p=activity / activity.sum())
    day = entry_day[imp] + rng.random(n_declarations) * (days - entry_day[imp])
    seconds = np.floor(day * 86400.0).astype(np.int64)
    order = np.argsort(seconds, kind="stable")
    imp, seconds = imp[order], seconds[order]
    lodged = pd.Timestamp(datetime(start.year, start.month, start.day, tzinfo=UTC)) + pd.to_timedelta(seconds, unit="s")
    days_since_entry = seconds / 86400.0 - entry_day[imp]
    new_importer = (~established[imp]) & (days_since_entry < 60)
    mode = rng.choice([1, 4, 3, 2, 5], size=n_declarations, p=[0.55, 0.25, 0.15, 0.03, 0.02])
    dtype = rng.choice([1, 3, 2], size=n_declarations, p=[0.92, 0.05, 0.03])
    n_items = np.minimum(rng.geometric(0.45, n_declarations), 15)
    offices = {1: ("PORT-A", "PORT-B", "PORT-C"), 4: ("AIR-1", "AIR-2"), 3: ("ROAD-N",), 2: ("RAIL-E",), 5: ("POST",)}
    office = np.array(
        [offices[m][k % len(offices[m])] for m, k in zip(mode, rng.integers(0, 6, n_declarations), strict=True)]
    )
    declarant = rng.integers(0, _DECLARANTS, n_declarations)

    # items
    d = np.repeat(np.arange(n_declarations), n_items)
    n = d.size
    item_number = np.arange(n) - np.repeat(np.cumsum(n_items) - n_items, n_items) + 1
    ii = imp[d]
    from_profile = rng.random(n) < 0.8
    code = np.where(from_profile, profile[ii, rng.integers(0, 3, n)], rng.integers(0, n_codes, n))
    origin = np.where(rng.random(n) < 0.7, home_origin[ii], rng.choice(len(COUNTRIES), size=n, p=origin_p))
    origin_s = np.array(COUNTRIES)[origin]
    export_s = origin_s.copy()
    via_hub = rng.random(n) < 0.12
    export_s[via_hub] = np.array(_HUBS)[rng.integers(0, len(_HUBS), via_hub.sum())]

    # hidden fraud, by pattern
    is_shell = shell[ii]
    is_new = new_importer[d]
    boost = np.where(is_new, 1.6, 1.0)
    chapter_true = cat.chapter[code]
    u = rng.random((5, n))
    progress = (seconds[d] / 86400.0) / days  # 0 at the start of the window, 1 at its end
    undervalued = u[0] < (np.where(is_shell, 0.2, 0.006) + drift * 0.02 * progress * ~is_shell) * boost
    misclassified = (u[1] < np.where(is_shell, 0.15, 0.005) * boost) & (cat.decoy[code] >= 0)
    laundered = u[2] < np.where(np.isin(chapter_true, list(ANTI_DUMPING_CHAPTERS)), np.where(is_shell, 0.3, 0.006), 0.0)
    # A stream of its own, so adding the pattern left every other column of a seed as it was.
    broker_rng = np.random.default_rng([seed, 2])
    complicit = broker_rng.random(_DECLARANTS) < 0.03
    undervalued |= complicit[declarant[d]] & (broker_rng.random(n) < 0.08)
    smuggling = u[3] < np.where(is_new, np.where(is_shell, 0.08, 0.02), 0.002)  # visible only through the importer

    declared = np.where(misclassified, cat.decoy[code], code)
    net = np.round(np.exp(rng.normal(np.where(cat.unit[code] == "KGM", 6.5, 3.5), 1.4)), 3) + 0.001
    gross = np.round(net * (1.0 + rng.uniform(0.02, 0.15, n)), 3)
    value = net * NATIONAL_PER_USD * np.exp(cat.log_vpk[code] + rng.normal(0.0, 0.3, n))
    true_value = value
    value = np.where(undervalued, value * rng.uniform(0.12, 0.4, n), value)
    unit = cat.unit[declared]
    quantity = np.where(unit == "KGM", net, np.maximum(1.0, np.round(net / cat.kg_per_unit[declared])))
    quantity = np.where(unit == "LTR", np.round(net * rng.uniform(0.95, 1.05, n), 1), quantity)
    n_laundered = int(laundered.sum())
    origin_s[laundered] = np.array(_LAUNDERING_ORIGINS)[rng.integers(0, len(_LAUNDERING_ORIGINS), n_laundered)]
    export_s[laundered] = np.array(_LAUNDERING_EXPORTS)[rng.integers(0, len(_LAUNDERING_EXPORTS), n_laundered)]
    if drift > 0:  # laundering moves to a hub it never used before, in the second half of the window
        late = laundered & (progress > 0.5) & (permit_free_rng(seed).random(n) < min(1.0, drift))
        export_s[late] = _DRIFT_HUB
    # The country of export belongs to the declaration (one consignment): a laundered item's
    # export country wins, otherwise the first item's.
    first_item = np.cumsum(n_items) - n_items
    declaration_export = export_s[first_item]
    laundered_item = np.full(n_declarations, -1)
    laundered_item[d[laundered][::-1]] = np.flatnonzero(laundered)[::-1]
    has_laundered = laundered_item >= 0
    declaration_export[has_laundered] = export_s[laundered_item[has_laundered]]
    export_s = declaration_export[d]
    rate = cat.duty[declared]
    fta = np.isin(origin_s, list(FTA_ORIGINS))
    preference = (fta & (rate > 0) & (rng.random(n) < 0.7)) | laundered
    effective = np.where(preference, 0.0, rate)
    value = np.round(value, 2)
    duties = np.round(value * effective + _VAT * value * (1.0 + effective), 2)
    needs_permit = np.isin(cat.chapter[declared], list(PERMIT_CHAPTERS))
    permit_missing = needs_permit & (u[4] < np.where(is_shell, 0.35, 0.01))
    permits = np.where(needs_permit & ~permit_missing, 1 + (rng.random(n) < 0.2), (rng.random(n) < 0.02).astype(int))
    # Permit facts have a random stream of their own: adding them changed a seed's other columns only
    # where abuse adds fraud (and so inspections and findings).
    permit_rng = np.random.default_rng([seed, 1])
    permit_abuse = (permits > 0) & (permit_rng.random(n) < np.where(is_shell, 0.4, 0.015) * boost)
    balance_used, days_to_expiry = _permit_facts(permit_rng, permits, needs_permit, permit_abuse)
    fraud = undervalued | misclassified | laundered | smuggling | permit_missing | permit_abuse

    # inspections: officers target suspicious declarations (noisily); a random control stream
    suspicious = np.zeros(n_declarations)
    np.maximum.at(suspicious, d, fraud.astype(float))
    aeo_d = aeo[imp]
    logit = (
        -3.0
        + 2.4 * suspicious
        + 0.9 * shell[imp]
        + 0.6 * new_importer
        - 0.8 * (aeo_d == 4)
        + rng.normal(0, 1.0, n_declarations)
    )
    random_control = rng.random(n_declarations) < 0.02
    inspected = random_control | (rng.random(n_declarations) < 1.0 / (1.0 + np.exp(-logit)))
    detected = rng.random(n) < 0.9
    finding = (fraud & inspected[d] & detected).astype(np.int64)
    vat = 1.0 + _VAT
    recovered = np.select(
        [undervalued, misclassified, laundered],
        [
            (np.round(true_value, 2) - value) * (effective + _VAT * (1.0 + effective)),
            value * np.maximum(0.0, cat.duty[code] - rate) * vat,
            value * rate * vat,
        ],
        default=0.1 * value,  # a fine: smuggling through the importer, permit offences
    )
    revenue_recovered = np.where(finding == 1, np.round(recovered, 2), np.where(inspected[d], 0.0, np.nan))

    national = np.array(["0000", "1000", "9000", "00"])[rng.integers(0, 4, n)]
    hs_code = np.char.add(cat.hs6[declared], national)
    decl_ids = np.array([f"D{seed % 1000:03d}{k:07d}" for k in range(n_declarations)])
    frame = pd.DataFrame(
        {
            "declaration_id": decl_ids[d],
            "item_number": item_number.astype(np.int64),
            "lodgement_time": lodged[d],
            "importer_id": np.char.add("IMP", np.char.zfill(imp[d].astype(str), 5)),
            "declarant_id": np.char.add("BRK", np.char.zfill(declarant[d].astype(str), 3)),
            "exporter_id": np.char.add(
                np.char.add("EXP", np.char.zfill(imp[d].astype(str), 5)), (code % 3).astype(str)
            ),
            "customs_office": office[d],
            "description": cat.description[declared],
            "hs_code": hs_code.astype(object),
            "origin_country": origin_s.astype(object),
            "export_country": export_s.astype(object),
            "customs_value": value,
            "net_mass_kg": net,
            "gross_mass_kg": gross,
            "quantity": quantity.astype(np.float64),
            "quantity_unit": unit.astype(object),
            "duties_and_taxes": duties,
            "transport_mode": mode[d].astype(np.int64),
            "declaration_type": dtype[d].astype(np.int64),
            "aeo_status": aeo_d[d].astype(np.int64),
            "preference_claimed": preference.astype(np.int64),
            "permit_count": permits.astype(np.int64),
            "permit_balance_used": balance_used,
            "permit_days_to_expiry": days_to_expiry,
            "item_count": n_items[d].astype(np.int64),
            "inspected": inspected[d],
            "finding": finding,
            "random_control": random_control[d],
            "revenue_recovered": revenue_recovered,
        }
    )
    for col in ("hs_code", "origin_country", "export_country", "quantity_unit", "description"):
        frame[col] = frame[col].astype(str)
    return frame


def permit_free_rng(seed: int) -> np.random.Generator:
    """A stream of its own for drift, so drift=0 leaves every other column of a seed unchanged."""
    return np.random.default_rng([seed, 2])


def _permit_facts(
    rng: np.random.Generator, permits: np.ndarray, needs_permit: np.ndarray, abuse: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(share of the cited line already drawn, days to the earliest expiry) per item; NaN where no permit tells.

    Licences for controlled goods mostly limit quantity; the documents other goods cite
    (certificates) seldom do, and a few never expire. An honest importer draws a licence down
    over several filings, anywhere in its validity, and the ledger keeps it below its balance.
    Abuse draws close to or past the authorised quantity, or leans on a permit about to expire or
    already expired.
    """
    n = permits.size
    cites = permits > 0
    limited = cites & (rng.random(n) < np.where(needs_permit, 0.7, 0.15))
    open_ended = rng.random(n) < 0.05
    used = rng.beta(1.0, 1.6, n)
    validity = rng.choice([90.0, 180.0, 365.0, 730.0], size=(2, n), p=[0.2, 0.3, 0.35, 0.15])
    days_left = validity * rng.random((2, n))  # one draw per cited permit, at most two
    days = np.where(permits >= 2, days_left.min(axis=0), days_left[0])
    overdraw = abuse & limited & (rng.random(n) < 0.6)
    stale = abuse & ~overdraw
    used = np.where(overdraw, rng.uniform(0.85, 1.3, n), used)
    days = np.where(stale, rng.uniform(-45.0, 7.0, n), days)
    balance_used = np.where(limited, np.round(used, 4), np.nan)
    days_to_expiry = np.where(cites & (stale | ~open_ended), np.round(days, 3), np.nan)
    return balance_used, days_to_expiry
