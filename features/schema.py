"""The fixed column contract: raw item columns in, named model features out."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

RAW_COLUMNS: Mapping[str, str] = MappingProxyType(
    {
        "hs_code": "str",  # 6-10 digits, national subheadings allowed
        "origin_country": "str",  # ISO 3166 alpha-2
        "export_country": "str",  # ISO 3166 alpha-2, country of dispatch
        "customs_value": "float",  # national currency
        "net_mass_kg": "float",
        "gross_mass_kg": "float",
        "quantity": "float",  # in quantity_unit
        "quantity_unit": "str",  # UN/ECE Rec 20 code, e.g. KGM, NAR, LTR
        "duties_and_taxes": "float",  # total, national currency
        "transport_mode": "int",  # UN/ECE Rec 19 code
        "declaration_type": "int",  # 1 import, 2 export, 3 transit
        "aeo_status": "int",  # 1 none .. 4 full
        "preference_claimed": "int",  # 0/1
        "permit_count": "int",
        # largest share of a cited permit line's authorised quantity drawn before this filing (above 1:
        # overdrawn); NaN when no cited permit limits quantity
        "permit_balance_used": "float",
        # days from lodgement to the earliest end of validity among cited permits, negative once expired;
        # NaN when no cited permit has an end
        "permit_days_to_expiry": "float",
        "item_count": "int",  # goods items in the declaration
        "importer_prior_filings": "float",  # declarations by this importer strictly before this one
        "importer_days_known": "float",  # days since the importer was first seen; NaN when new
    }
)

FEATURE_NAMES: tuple[str, ...] = (
    # HS reference band of log value per kg (NaN without a fitted FeatureState)
    "unit_value_ratio",
    "unit_value_zscore",
    "unit_value_band_level",  # 6 HS6 band, 4 HS4 fallback, 0 global fallback
    # values, masses and taxes
    "log_customs_value",
    "log_value_per_kg",
    "log_value_per_unit",
    "tax_per_value",
    "gross_net_ratio",
    # codes
    "hs_chapter",
    "hs_heading",
    "hs_digits",
    "origin_code",
    "export_code",
    "origin_differs_from_export",
    "quantity_unit_code",
    # raw numbers passed through, in RAW_COLUMNS order (build_feature_matrix copies them as one block)
    "transport_mode",
    "declaration_type",
    "aeo_status",
    "preference_claimed",
    "permit_count",
    "permit_balance_used",
    "permit_days_to_expiry",  # the one signed raw number: negative means cited after expiry
    "item_count",
    "importer_prior_filings",
    "importer_days_known",
)

CATEGORICAL_FEATURES: tuple[str, ...] = (
    "hs_chapter",
    "origin_code",
    "export_code",
    "transport_mode",
    "declaration_type",
    "aeo_status",
    "quantity_unit_code",
)

# Fixed vocabulary of UN/ECE Rec 20 units, so the code of a unit never depends on training data.
# Any other non-empty unit is coded len(QUANTITY_UNITS); a missing unit is NaN.
QUANTITY_UNITS: tuple[str, ...] = (
    "KGM",
    "GRM",
    "TNE",
    "NAR",
    "C62",
    "PCE",
    "H87",
    "LTR",
    "MTR",
    "MTK",
    "MTQ",
    "PR",
    "SET",
    "DZN",
    "KWH",
)

FEATURE_INDEX: Mapping[str, int] = MappingProxyType({name: i for i, name in enumerate(FEATURE_NAMES)})
