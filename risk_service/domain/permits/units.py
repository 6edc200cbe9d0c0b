"""Quantity units of permits and goods items (UN/ECE Recommendation 20 codes) and conversion between them."""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Final

MASS: Final = "mass"
VOLUME: Final = "volume"
COUNT: Final = "count"

#: code -> (dimension, size in the dimension's smallest unit: gram, millilitre, piece). Whole numbers
#: keep conversions exact where they can be (120 KGM is 0.12 TNE, not 0.12000000000000001).
#: Pairs (PR, NPR) count as two pieces each, so a permit for 100 pieces of gloves covers 50 pairs;
#: a dozen (DZN) is twelve pieces. NAR, C62, PCE and H87 are all "one item" in Rec 20.
UNITS: Final = MappingProxyType(
    {
        "KGM": (MASS, 1000),
        "TNE": (MASS, 1_000_000),
        "GRM": (MASS, 1),
        "LTR": (VOLUME, 1000),
        "MTQ": (VOLUME, 1_000_000),
        "MLT": (VOLUME, 1),
        "NAR": (COUNT, 1),
        "C62": (COUNT, 1),
        "PCE": (COUNT, 1),
        "H87": (COUNT, 1),
        "DZN": (COUNT, 12),
        "PR": (COUNT, 2),
        "NPR": (COUNT, 2),
    }
)


def is_known_unit(code: str) -> bool:
    """True for a code this table converts; codes are case-sensitive, as Rec 20 writes them."""
    return code in UNITS


def dimension(code: str) -> str | None:
    """MASS, VOLUME or COUNT for a known code, else None."""
    entry = UNITS.get(code)
    return entry[0] if entry is not None else None


def convert(quantity: float, from_unit: str, to_unit: str) -> float | None:
    """`quantity` in `from_unit` expressed in `to_unit`; None when the units do not convert.

    A unit converts to itself even when the table does not know it. A quantity that is not a
    finite number converts to nothing: it cannot be drawn from a balance.
    """
    if not math.isfinite(quantity) or not from_unit or not to_unit:
        return None
    if from_unit == to_unit:
        return float(quantity)
    source = UNITS.get(from_unit)
    target = UNITS.get(to_unit)
    if source is None or target is None or source[0] != target[0]:
        return None
    return quantity * source[1] / target[1]
