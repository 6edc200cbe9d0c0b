"""Permit cross-checks as a step of screening: cited permits from the cache, requirements from the goods table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from risk_service.domain.declaration import Declaration
from risk_service.domain.permits.cache import PermitCache
from risk_service.domain.permits.checks import PermitCheckConfig, PermitCheckResult, check_declaration
from risk_service.domain.permits.controlled_goods import ControlledGoodsTable


class ControlledGoodsSource(Protocol):
    @property
    def current(self) -> ControlledGoodsTable: ...


@dataclass
class PermitScreen:
    cache: PermitCache
    table: ControlledGoodsSource
    config: PermitCheckConfig

    @property
    def table_version(self) -> str:
        return self.table.current.version

    async def prepare(self, declarations: Sequence[Declaration]) -> None:
        """Loads every permit the declarations cite into the cache (one store query for all misses)."""
        await self.cache.ensure(ref for d in declarations for item in d.items for ref in item.permit_references)

    def check(self, declaration: Declaration, now: datetime) -> PermitCheckResult:
        cited = self.cache.lookup(ref for item in declaration.items for ref in item.permit_references)
        return check_declaration(declaration, cited, self.table.current, self.config, now)
