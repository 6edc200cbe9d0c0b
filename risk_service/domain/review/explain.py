"""Model contributions said in words, for the officer reviewing a flagged declaration.

An assessment keeps the model's top contributions as feature names, values and log-odds
(`unit_value_ratio 0.125 +0.8`); an officer acts on "value per kg 8.0x below the reference for
HS 851712 (raised the risk)". Each feature has its own template, written from how `features`
computes it, so the wording states what the number is and nothing more: the unit value reference
is per HS code (HS6, else HS4, else all goods) over all origins; finding rates are smoothed toward
the training window's rate. Whether a contribution raised or lowered the risk depends on the other
features, so every sentence says it. A missing value (NaN) reads as missing; a feature this module
does not know (a newer model) or an item the declaration lacks gets a generic sentence, because an
explanation must never keep an assessment from being shown.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from features import QUANTITY_UNITS
from features.codes import parse_hs
from risk_service.domain.assessment import FeatureContribution
from risk_service.domain.declaration import Declaration, GoodsItem

__all__ = ["Explanation", "explain"]


@dataclass(frozen=True, slots=True)
class Explanation:
    item_number: int
    feature: str
    contribution: float  # log-odds, positive raised the risk
    text: str


@dataclass(frozen=True, slots=True)
class _Subject:
    """What a template may name: the declaration, the goods item, and the reference level used for it."""

    declaration: Declaration
    item: GoodsItem
    band_level: float  # the item's unit_value_band_level when among the contributions, else NaN


_Template = Callable[[float, _Subject], str]


def explain(declaration: Declaration, contributions: Sequence[FeatureContribution]) -> list[Explanation]:
    """One explanation per contribution, in the same order."""
    items: dict[int, GoodsItem] = {}
    for goods in declaration.items:
        items.setdefault(goods.item_number, goods)  # unique in a valid declaration
    band_levels: dict[int, float] = {}
    for c in contributions:
        if c.feature == "unit_value_band_level":
            band_levels.setdefault(c.item_number, c.value)
    out: list[Explanation] = []
    for c in contributions:
        item = items.get(c.item_number)
        template = _TEMPLATES.get(c.feature)
        if item is None:
            text = (
                f"Model input {c.feature} was {_plain(c.value)} on goods item {c.item_number}, not in this declaration"
            )
        elif template is None:
            text = f"Model input {c.feature} was {_plain(c.value)}"
        else:
            subject = _Subject(declaration, item, band_levels.get(c.item_number, math.nan))
            text = template(c.value, subject)
        out.append(Explanation(c.item_number, c.feature, c.contribution, text + _direction(c.contribution)))
    return out


def _direction(contribution: float) -> str:
    if contribution > 0:
        return " (raised the risk)"
    if contribution < 0:
        return " (lowered the risk)"
    return ""  # zero or NaN: no direction to report


# -- formatting -----------------------------------------------------------------------------------

_MAX_SHOWN = 1e12  # beyond this a number is garbage, not a fact to spell out digit by digit


def _known(v: float) -> bool:
    return math.isfinite(v)


def _plain(v: float) -> str:
    return f"{v:.4g}" if _known(v) else "missing"


def _amount(v: float, decimals: int = 0) -> str:
    return f"{v:,.{decimals}f}" if abs(v) < _MAX_SHOWN else f"{v:.3g}"


def _exp(v: float) -> float:
    return math.exp(min(v, 700.0))  # the feature is a log; past e^700 the float overflows


def _percent(share: float) -> str:
    p = share * 100.0
    return f"{_amount(p, 1 if abs(p) < 10 else 0)}%"


def _times(m: float) -> str:
    return f"{_amount(m, 1 if m < 100 else 0)}x"


def _whole(v: float) -> int | None:
    """v as an int when it is a whole number (a code or a count), else None."""
    return int(v) if _known(v) and v.is_integer() and abs(v) < _MAX_SHOWN else None


def _count(v: float, noun: str) -> str:
    shown = _amount(v)
    return f"{shown} {noun}" if shown == "1" else f"{shown} {noun}s"


def _days(v: float) -> str:
    return "less than a day" if v < 1 else _count(math.floor(v), "day")


# -- what the item is ----------------------------------------------------------------------------


def _hs(item: GoodsItem) -> str:
    hs = parse_hs(item.hs_code)
    if hs is not None:
        return f"HS {hs.hs6 or hs.hs4}"
    code = item.hs_code.strip()
    return f"HS code {code}" if code else "its HS code"


def _origin(item: GoodsItem) -> str:
    return item.origin_country.strip().upper() or "an unstated origin"


def _reference(s: _Subject) -> str:
    """The unit value reference the item was compared with, as far as the contributions tell."""
    hs = parse_hs(s.item.hs_code)
    if s.band_level == 4 and hs is not None:
        return f"the reference for HS heading {hs.hs4}"
    if s.band_level == 0:
        return "the reference for all goods"
    return f"the reference for {_hs(s.item)}"


def _importer(s: _Subject) -> str:
    return f"importer {s.declaration.importer.id}" if s.declaration.importer.id else "the importer"


def _declarant(s: _Subject) -> str:
    return f"declarant {s.declaration.declarant.id}" if s.declaration.declarant.id else "the declarant"


def _trade_lane(s: _Subject) -> str:
    return f"{_hs(s.item)} goods from {_origin(s.item)}"


def _importer_at_office(s: _Subject) -> str:
    office = s.declaration.customs_office
    return f"{_importer(s)} at office {office}" if office else _importer(s)


# -- templates, one per features.FEATURE_NAMES entry ----------------------------------------------


def _no_unit_value(s: _Subject) -> str:
    value, mass = s.item.customs_value, s.item.net_mass_kg
    if _known(value) and _known(mass) and value > 0 and mass > 0:
        return f"No reference value per kg for {_hs(s.item)}"
    return f"No value per kg to compare with the reference for {_hs(s.item)}: customs value or net mass missing"


def _unit_value_ratio(v: float, s: _Subject) -> str:
    # value per kg over the reference's (geometric) median value per kg: a plain ratio, above 1 is dearer
    if not (_known(v) and v > 0):
        return _no_unit_value(s)
    if v >= 1:
        m, side = v, "above"
    else:
        m, side = 1 / v, "below"
    if _times(m) == "1.0x":
        return f"Value per kg close to {_reference(s)}"
    return f"Value per kg {_times(m)} {side} {_reference(s)}"


def _unit_value_zscore(v: float, s: _Subject) -> str:
    if not _known(v):
        return _no_unit_value(s)
    size = _amount(abs(v), 1)
    if size == "0.0":
        return f"Value per kg at {_reference(s)}"
    side = "above" if v > 0 else "below"
    return f"Value per kg {size} standard deviations {side} {_reference(s)}"


def _unit_value_band_level(v: float, s: _Subject) -> str:
    hs = parse_hs(s.item.hs_code)
    if v == 6:
        return f"Value per kg compared with the reference for {_hs(s.item)}"
    if v == 4:
        heading = f"HS heading {hs.hs4}" if hs is not None else "its HS heading"
        return f"Value per kg compared with the reference for {heading}, too few filings of {_hs(s.item)}"
    if v == 0:
        return f"Value per kg compared with the reference for all goods, too few filings of {_hs(s.item)}"
    if not _known(v):
        return _no_unit_value(s)
    return f"Value per kg compared with a reference of level {_plain(v)}"


def _log_customs_value(v: float, s: _Subject) -> str:
    if not _known(v):
        return "Customs value missing"
    return f"Customs value {_amount(math.expm1(min(v, 700.0)))}"


def _log_value_per_kg(v: float, s: _Subject) -> str:
    if not _known(v):
        return "Value per kg unknown: customs value or net mass missing"
    return f"Customs value {_amount(_exp(v), 2)} per kg"


_UNIT_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "KGM": "kg",
        "GRM": "gram",
        "TNE": "tonne",
        "NAR": "piece",
        "C62": "piece",
        "PCE": "piece",
        "H87": "piece",
        "LTR": "litre",
        "MTR": "metre",
        "MTK": "square metre",
        "MTQ": "cubic metre",
        "PR": "pair",
        "SET": "set",
        "DZN": "dozen",
        "KWH": "kWh",
    }
)


def _per_unit(item: GoodsItem) -> str:
    unit = item.quantity_unit.strip().upper()
    return _UNIT_NAMES.get(unit, f"unit ({unit})" if unit else "unit of quantity")


def _log_value_per_unit(v: float, s: _Subject) -> str:
    if not _known(v):
        return "Value per unit of quantity unknown: customs value or quantity missing"
    return f"Customs value {_amount(_exp(v), 2)} per {_per_unit(s.item)}"


def _tax_per_value(v: float, s: _Subject) -> str:
    if not _known(v):
        return "Duties and taxes as a share of the customs value unknown"
    return f"Duties and taxes {_percent(v)} of the customs value"


def _gross_net_ratio(v: float, s: _Subject) -> str:
    if not _known(v):
        return "Gross to net mass ratio unknown: a mass missing"
    return f"Gross mass {_amount(v, 2)}x the net mass"


def _bad_hs(what: str, s: _Subject) -> str:
    code = s.item.hs_code.strip()
    if not code:
        return "HS code missing"
    return f"HS code {code} not a 4 to 10 digit code" if parse_hs(code) is None else f"{what} unknown"


def _hs_chapter(v: float, s: _Subject) -> str:
    n = _whole(v)
    return f"HS chapter {n:02d}" if n is not None else _bad_hs("HS chapter", s)


def _hs_heading(v: float, s: _Subject) -> str:
    n = _whole(v)
    return f"HS heading {n:04d}" if n is not None else _bad_hs("HS heading", s)


def _hs_digits(v: float, s: _Subject) -> str:
    n = _whole(v)
    return f"HS code declared to {n} digits" if n is not None else _bad_hs("HS code length", s)


def _country(v: float) -> str | None:
    """features.codes.country_code reversed: 26*a + b back to two letters."""
    n = _whole(v)
    if n is None or not 0 <= n < 26 * 26:
        return None
    return chr(65 + n // 26) + chr(65 + n % 26)


def _no_country(what: str, declared: str) -> str:
    declared = declared.strip()
    return f"{what} {declared} not a two-letter country code" if declared else f"{what} missing"


def _origin_code(v: float, s: _Subject) -> str:
    country = _country(v)
    return f"Origin {country}" if country else _no_country("Country of origin", s.item.origin_country)


def _export_code(v: float, s: _Subject) -> str:
    country = _country(v)
    return (
        f"Country of dispatch {country}"
        if country
        else _no_country("Country of dispatch", s.declaration.export_country)
    )


def _origin_differs_from_export(v: float, s: _Subject) -> str:
    origin, dispatch = _origin(s.item), s.declaration.export_country.strip().upper()
    if v == 1:
        return f"Origin {origin} differs from the country of dispatch {dispatch}"
    if v == 0:
        return f"Origin {origin} is also the country of dispatch"
    return "Origin or country of dispatch missing, so not compared"


def _quantity_unit_code(v: float, s: _Subject) -> str:
    n = _whole(v)
    if n is not None and 0 <= n < len(QUANTITY_UNITS):
        unit = QUANTITY_UNITS[n]
        return f"Quantity unit {unit}: {_UNIT_NAMES.get(unit, 'other')}"
    if n == len(QUANTITY_UNITS):
        return f"Quantity in an uncommon unit, {s.item.quantity_unit.strip()}"
    return "Quantity unit missing"


def _coded(what: str, labels: Mapping[int, str]) -> _Template:
    """A template for a coded raw number: its label, 'not stated' for 0 (unspecified) or missing."""

    def template(v: float, s: _Subject) -> str:
        n = _whole(v)
        if n is None or n == 0:
            return f"{what} not stated"
        return labels.get(n, f"{what} code {n}")

    return template


# TransportMode, DeclarationType and AeoStatus values
_transport_mode = _coded(
    "Transport mode",
    {
        1: "Transport by sea",
        2: "Transport by rail",
        3: "Transport by road",
        4: "Transport by air",
        5: "Sent by post",
        7: "Transport by fixed installation",
        8: "Transport by inland waterway",
    },
)
_declaration_type = _coded(
    "Declaration type", {1: "Import declaration", 2: "Export declaration", 3: "Transit declaration"}
)
_aeo_status = _coded(
    "AEO status",
    {
        1: "Trader has no AEO authorisation",
        2: "Trader is AEO for customs simplifications",
        3: "Trader is AEO for security and safety",
        4: "Trader is a full AEO",
    },
)


def _preference_claimed(v: float, s: _Subject) -> str:
    if v == 1:
        code = s.item.preference_claimed.strip()
        return f"Tariff preference {code} claimed" if code else "Tariff preference claimed"
    if v == 0:
        return "No tariff preference claimed"
    return "Tariff preference claim unknown"


def _permit_count(v: float, s: _Subject) -> str:
    if not _known(v):
        return "Number of cited permits unknown"
    return "No permit cited" if v == 0 else f"{_count(v, 'permit')} cited"


def _permit_balance_used(v: float, s: _Subject) -> str:
    # the largest share among the cited permit lines, of the authorised quantity or else value
    if not _known(v):
        return "No cited permit line with an authorised quantity or value"
    if v > 1:
        return f"A cited permit line overdrawn: {_percent(v)} of it drawn before this filing"
    return f"A cited permit line {_percent(v)} drawn before this filing"


def _permit_days_to_expiry(v: float, s: _Subject) -> str:
    # the earliest end of validity among the cited permits, negative once it has passed
    if not _known(v):
        return "No cited permit with an end of validity"
    if v < 0:
        return f"A cited permit expired {_days(-v)} before lodgement"
    return f"A cited permit expires {_days(v)} after lodgement"


def _item_count(v: float, s: _Subject) -> str:
    if not _known(v):
        return "Number of goods items unknown"
    return f"Declaration has {_count(v, 'goods item')}"


def _importer_prior_filings(v: float, s: _Subject) -> str:
    importer = s.declaration.importer.id
    if not importer:
        return "Importer not named, so no filing history"
    if not _known(v):
        return f"Earlier filings of importer {importer} unknown"
    if v == 0:
        return f"Importer {importer} is new: no earlier filings"
    return f"Importer {importer} filed {_count(v, 'declaration')} before"


def _importer_days_known(v: float, s: _Subject) -> str:
    # days since the importer's first earlier filing; NaN for a new importer or none named
    importer = s.declaration.importer.id
    if _known(v):
        return f"Importer {importer} first filed {_days(v)} ago" if importer else f"Importer first filed {_days(v)} ago"
    if not importer:
        return "Importer not named, so no filing history"
    if s.declaration.lodgement_time is None:
        return f"Time since importer {importer} first filed unknown"
    return f"Importer {importer} is new: no earlier filings"


def _finding_rate(who: Callable[[_Subject], str]) -> _Template:
    def template(v: float, s: _Subject) -> str:
        if not _known(v):
            return f"Finding rate of {who(s)} unknown"
        return f"Past inspections of {who(s)} found irregularities at a smoothed rate of {_percent(v)}"

    return template


_TEMPLATES: Mapping[str, _Template] = MappingProxyType(
    {
        "unit_value_ratio": _unit_value_ratio,
        "unit_value_zscore": _unit_value_zscore,
        "unit_value_band_level": _unit_value_band_level,
        "log_customs_value": _log_customs_value,
        "log_value_per_kg": _log_value_per_kg,
        "log_value_per_unit": _log_value_per_unit,
        "tax_per_value": _tax_per_value,
        "gross_net_ratio": _gross_net_ratio,
        "hs_chapter": _hs_chapter,
        "hs_heading": _hs_heading,
        "hs_digits": _hs_digits,
        "origin_code": _origin_code,
        "export_code": _export_code,
        "origin_differs_from_export": _origin_differs_from_export,
        "quantity_unit_code": _quantity_unit_code,
        "transport_mode": _transport_mode,
        "declaration_type": _declaration_type,
        "aeo_status": _aeo_status,
        "preference_claimed": _preference_claimed,
        "permit_count": _permit_count,
        "permit_balance_used": _permit_balance_used,
        "permit_days_to_expiry": _permit_days_to_expiry,
        "item_count": _item_count,
        "importer_prior_filings": _importer_prior_filings,
        "importer_days_known": _importer_days_known,
        "importer_finding_rate": _finding_rate(_importer),
        "declarant_finding_rate": _finding_rate(_declarant),
        "hs_origin_finding_rate": _finding_rate(_trade_lane),
        "office_importer_finding_rate": _finding_rate(_importer_at_office),
    }
)
