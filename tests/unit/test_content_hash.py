"""A filing's content hash must not change when the service learns new fields: retries stay retries."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from risk_service.domain.declaration import (
    AeoStatus,
    Declaration,
    DeclarationType,
    DutyTax,
    GoodsItem,
    Party,
    TransportMode,
)
from risk_service.domain.service import content_hash

# What the service stored for this declaration before goods items had `packages` (commit bab5944).
HASH_BEFORE_PACKAGES = "8b508212fc877f51b574580991a018377c9d05671a2736d63e007fc7c80c3db5"


def filed() -> Declaration:
    return Declaration(
        "D-HASH-1", 1, DeclarationType.IMPORT, datetime(2026, 3, 1, 9, 30, tzinfo=UTC), "020",
        Party("BRK-1", "Broker"), Party("IMP-1", "Importer"), Party("EXP-1"), AeoStatus.NONE, "CN", "CN", "KR",
        TransportMode.SEA, "BL-1", ("MSCU1234566",), "FOB", "USD", 1250.5,
        (GoodsItem(1, "850440", "power supplies", 10.0, "NAR", 4.2, 5.0, 0.1 + 0.2, "CN", "FTA", ("P-1",),
                   (DutyTax("A00", 8.0),)),),
    )  # fmt: skip


def test_a_declaration_without_packages_hashes_as_before_packages_existed() -> None:
    assert content_hash(filed()) == HASH_BEFORE_PACKAGES


def test_stated_packages_change_the_hash() -> None:
    d = filed()
    with_packages = replace(d, items=(replace(d.items[0], packages=12),))
    assert content_hash(with_packages) != HASH_BEFORE_PACKAGES
    assert "packages=12" in repr(with_packages.items[0])
