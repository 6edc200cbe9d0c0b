"""The fixed column contract: raw item columns in, named model features out."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# importer; declarant (broker); HS6 by country of origin (a trade lane); customs office by importer
ENTITY_KINDS: tuple[str, ...] = ("importer", "declarant", "hs_origin", "office_importer")
# Per kind, point in time (features.entity_history): declarations with the same key lodged strictly
# before this one; days since the first of them (NaN when new); inspections and findings among them
# whose outcome was known before this one (NaN without a key: nothing to look up).
ENTITY_COUNT_COLUMNS: tuple[str, ...] = tuple(
    f"{kind}_{what}" for kind in ENTITY_KINDS for what in ("prior_filings", "days_known", "prior_inspections")
)
ENTITY_FINDING_COLUMNS: tuple[str, ...] = tuple(f"{kind}_prior_findings" for kind in ENTITY_KINDS)
ENTITY_COLUMNS: tuple[str, ...] = ENTITY_COUNT_COLUMNS + ENTITY_FINDING_COLUMNS
# What the model reads of them: the finding rate of every kind, and the importer's filings and days
# known (a new importer is a risk pattern in itself). The other cumulative counts stay raw columns:
# everyone's history starts where the data starts, so counts and days grow with the calendar, and
# on the KCS data they taught the model the date (validation AUC 0.885 and precision at 10 % 0.886
# with all of them, against about 0.90 and 0.915 without; docs/entity_features.md has the runs).
ENTITY_COUNT_FEATURES: tuple[str, ...] = ("importer_prior_filings", "importer_days_known")
# Smoothed toward the training window's finding rate (FeatureState.outcomes.prior); NaN without it.
ENTITY_RATE_FEATURES: tuple[str, ...] = tuple(f"{kind}_finding_rate" for kind in ENTITY_KINDS)

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
        **{column: "float" for column in ENTITY_COLUMNS},  # entity history, see above
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
    # raw numbers passed through, in RAW_COLUMNS order (build_feature_matrix copies them as one block),
    # then the entity history
    "transport_mode",
    "declaration_type",
    "aeo_status",
    "preference_claimed",
    "permit_count",
    "permit_balance_used",
    "permit_days_to_expiry",  # the one signed raw number: negative means cited after expiry
    "item_count",
    *ENTITY_COUNT_FEATURES,
    *ENTITY_RATE_FEATURES,
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
