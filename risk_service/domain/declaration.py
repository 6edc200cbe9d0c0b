"""Goods declarations as the domain sees them; attribute names match the risk.v1 proto fields."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class DeclarationType(enum.IntEnum):
    UNSPECIFIED = 0
    IMPORT = 1
    EXPORT = 2
    TRANSIT = 3


class TransportMode(enum.IntEnum):
    """UN/ECE Recommendation 19 codes."""

    UNSPECIFIED = 0
    SEA = 1
    RAIL = 2
    ROAD = 3
    AIR = 4
    POSTAL = 5
    FIXED_INSTALLATION = 7
    INLAND_WATERWAY = 8


class AeoStatus(enum.IntEnum):
    UNSPECIFIED = 0
    NONE = 1
    CUSTOMS_SIMPLIFICATIONS = 2
    SECURITY_AND_SAFETY = 3
    FULL = 4


@dataclass(frozen=True, slots=True)
class Party:
    id: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class DutyTax:
    type_code: str
    amount: float


@dataclass(frozen=True, slots=True, repr=False)
class GoodsItem:
    item_number: int
    hs_code: str
    description: str
    quantity: float
    quantity_unit: str
    net_mass_kg: float
    gross_mass_kg: float
    customs_value: float
    origin_country: str
    preference_claimed: str = ""
    permit_references: tuple[str, ...] = ()
    duties_and_taxes: tuple[DutyTax, ...] = ()
    packages: int = 0  # 0 when not stated

    def __repr__(self) -> str:
        # The repr is what a filing's content hash is made of (service.content_hash): a field added
        # later is left out while it holds its default, so a filing stored before the field existed
        # hashes as it did then and its retry is still a retry.
        shown = ", ".join(f"{f}={getattr(self, f)!r}" for f in _GOODS_ITEM_FIELDS)
        extra = f", packages={self.packages!r}" if self.packages else ""
        return f"GoodsItem({shown}{extra})"

    @property
    def total_duties_and_taxes(self) -> float:
        return sum(d.amount for d in self.duties_and_taxes)


_GOODS_ITEM_FIELDS = (
    "item_number",
    "hs_code",
    "description",
    "quantity",
    "quantity_unit",
    "net_mass_kg",
    "gross_mass_kg",
    "customs_value",
    "origin_country",
    "preference_claimed",
    "permit_references",
    "duties_and_taxes",
)


@dataclass(frozen=True, slots=True)
class Declaration:
    """One version of a goods declaration. Conversion from the wire never fails; validate() judges it."""

    declaration_id: str
    version: int
    type: DeclarationType
    lodgement_time: datetime | None
    customs_office: str
    declarant: Party
    importer: Party
    exporter: Party
    aeo_status: AeoStatus
    export_country: str
    origin_country: str
    destination_country: str
    transport_mode: TransportMode
    transport_document_number: str
    container_numbers: tuple[str, ...]
    incoterm: str
    invoice_currency: str
    invoice_amount: float
    items: tuple[GoodsItem, ...] = field(default_factory=tuple)

    @property
    def key(self) -> tuple[str, int]:
        """The idempotency key: a retry of the same id and version is the same filing."""
        return (self.declaration_id, self.version)
