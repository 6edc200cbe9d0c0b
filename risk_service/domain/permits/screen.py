"""Permit cross-checks as a step of screening: cited permits from the cache, requirements from the goods table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from risk_service.domain.declaration import Declaration
from risk_service.domain.permits.cache import PermitCache
from risk_service.domain.permits.checks import PermitCheckConfig, PermitCheckResult, check_declaration
from risk_service.domain.permits.controlled_goods import ControlledGoodsTable
from risk_service.domain.permits.model import PermitState


class ControlledGoodsSource(Protocol):
    @property
    def current(self) -> ControlledGoodsTable: ...


@dataclass(frozen=True, slots=True)
class PermitSnapshot:
    """What one call is checked against: the permits its declarations cite, and one controlled goods table."""

    permits: Mapping[str, PermitState | None]
    table: ControlledGoodsTable


def _cited(declarations: Sequence[Declaration]) -> list[str]:
    return [ref for d in declarations for item in d.items for ref in item.permit_references]


@dataclass
class PermitScreen:
    cache: PermitCache
    table: ControlledGoodsSource
    config: PermitCheckConfig

    async def prepare(self, declarations: Sequence[Declaration]) -> PermitSnapshot:
        """The permits the declarations cite (one store query for those not in memory) and the table in force."""
        table = self.table.current
        return PermitSnapshot(await self.cache.snapshot(_cited(declarations)), table)

    def cached(self, declarations: Sequence[Declaration]) -> PermitSnapshot:
        """As `prepare`, from memory only: for callers without an event loop (tools, benchmarks)."""
        return PermitSnapshot(self.cache.cached(_cited(declarations)), self.table.current)

    def check(self, declaration: Declaration, snapshot: PermitSnapshot, now: datetime) -> PermitCheckResult:
        # The snapshot holds every id the call's declarations cite; check_declaration reads only this one's.
        return check_declaration(declaration, snapshot.permits, snapshot.table, self.config, now)
