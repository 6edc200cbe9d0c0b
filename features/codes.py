"""Parsing of the coded string columns (HS codes, ISO country codes, units) into numbers."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

from features.schema import QUANTITY_UNITS

NAN = math.nan
_UNIT_CODES = {unit: float(i) for i, unit in enumerate(QUANTITY_UNITS)}
_OTHER_UNIT = float(len(QUANTITY_UNITS))


class HsCode(NamedTuple):
    """An HS code split into the levels the features use; keys are None below their length."""

    digits: int
    chapter: float
    heading: float
    hs4: str
    hs6: str | None


@lru_cache(maxsize=65536)
def parse_hs(value: object) -> HsCode | None:
    """'8517.12.00' or '8517120000' -> its levels; None unless 4-10 digits after dropping dots and spaces."""
    if not isinstance(value, str):
        return None
    code = value.replace(".", "").replace(" ", "")
    n = len(code)
    if n < 4 or n > 10 or not code.isascii() or not code.isdigit():
        return None
    return HsCode(n, float(code[:2]), float(code[:4]), code[:4], code[:6] if n >= 6 else None)


@lru_cache(maxsize=4096)
def country_code(value: object) -> float:
    """ISO 3166 alpha-2 -> 26*a + b (stable, no vocabulary); NaN unless two ASCII letters."""
    if not isinstance(value, str):
        return NAN
    code = value.strip().upper()
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        return NAN
    return float(26 * (ord(code[0]) - 65) + (ord(code[1]) - 65))


@lru_cache(maxsize=1024)
def unit_code(value: object) -> float:
    """UN/ECE Rec 20 unit -> index in QUANTITY_UNITS, len(QUANTITY_UNITS) for others, NaN when missing."""
    if not isinstance(value, str):
        return NAN
    unit = value.strip().upper()
    if not unit:
        return NAN
    return _UNIT_CODES.get(unit, _OTHER_UNIT)
