"""How a permit may change: each action is a transition from its current state, checked under the store's lock."""

from __future__ import annotations

import dataclasses

from risk_service.domain.errors import FailedPrecondition, NotFound, PermitExists
from risk_service.domain.permits.ledger import over_limit
from risk_service.domain.permits.model import Permit, PermitAction, PermitState, PermitStatus
from risk_service.domain.ports import PermitTransition

# Status changes each action may make: from these statuses, to that one.
_STATUS_MOVES: dict[PermitAction, tuple[frozenset[PermitStatus], PermitStatus]] = {
    PermitAction.SUSPEND: (frozenset({PermitStatus.ACTIVE}), PermitStatus.SUSPENDED),
    PermitAction.REINSTATE: (frozenset({PermitStatus.SUSPENDED}), PermitStatus.ACTIVE),
    PermitAction.REVOKE: (frozenset({PermitStatus.ACTIVE, PermitStatus.SUSPENDED}), PermitStatus.REVOKED),
}


def same_content(a: Permit, b: Permit) -> bool:
    """True when two permits say the same, whatever their status, version and order of goods lines."""
    return _comparable(a) == _comparable(b)


def _comparable(permit: Permit) -> Permit:
    lines = tuple(sorted(permit.goods_lines, key=lambda line: line.line_number))
    return dataclasses.replace(permit, status=PermitStatus.ACTIVE, version=0, goods_lines=lines)


def submit(permit: Permit) -> PermitTransition:
    def apply(current: PermitState | None) -> Permit:
        if current is not None:
            raise PermitExists(
                f"permit {permit.permit_id} is already registered (version {current.permit.version}); amend it instead",
                metadata={"permit_id": permit.permit_id},
            )
        return dataclasses.replace(permit, status=PermitStatus.ACTIVE, version=1)

    return apply


def amend(permit: Permit, *, expected_version: int = 0) -> PermitTransition:
    """A new version with new content; what has been drawn already bounds what the amendment may cut."""

    def apply(current: PermitState | None) -> Permit:
        before = _existing(permit.permit_id, current)
        if before.status == PermitStatus.REVOKED:
            raise FailedPrecondition(f"permit {permit.permit_id} is revoked; a revoked permit cannot be amended")
        if expected_version and expected_version != before.version:
            raise FailedPrecondition(
                f"permit {permit.permit_id} is at version {before.version}, not the expected {expected_version}; "
                "read it again and retry",
                metadata={"current_version": str(before.version)},
            )
        if permit.issuing_agency != before.issuing_agency:
            raise FailedPrecondition(
                f"permit {permit.permit_id} was issued by {before.issuing_agency}; only that agency may amend it"
            )
        assert current is not None  # _existing checked it
        _check_drawn_lines_kept(permit, current)
        return dataclasses.replace(permit, status=before.status, version=before.version + 1)

    return apply


def upsert(permit: Permit) -> PermitTransition:
    """For bulk feeds: submits a new permit, amends a known one."""
    first, change = submit(permit), amend(permit)

    def apply(current: PermitState | None) -> Permit:
        return first(current) if current is None else change(current)

    return apply


def change_status(permit_id: str, action: PermitAction) -> PermitTransition:
    allowed, target = _STATUS_MOVES[action]

    def apply(current: PermitState | None) -> Permit:
        before = _existing(permit_id, current)
        if before.status not in allowed:
            raise FailedPrecondition(
                f"permit {permit_id} is {before.status.name}; it cannot be {_PAST[action]}",
                metadata={"status": before.status.name},
            )
        return dataclasses.replace(before, status=target, version=before.version + 1)

    return apply


_PAST = {PermitAction.SUSPEND: "suspended", PermitAction.REINSTATE: "reinstated", PermitAction.REVOKE: "revoked"}


def _existing(permit_id: str, current: PermitState | None) -> Permit:
    if current is None:
        raise NotFound(f"permit {permit_id} is not registered", metadata={"permit_id": permit_id})
    return current.permit


def _check_drawn_lines_kept(new: Permit, current: PermitState) -> None:
    """A goods line something was drawn from must stay, in the same unit, authorising at least what was drawn."""
    problems: list[str] = []
    for line_number, balance in sorted(current.balances.items()):
        if balance.drawn_quantity <= 0 and balance.drawn_value <= 0:
            continue
        old = current.permit.line(line_number)
        line = new.line(line_number)
        if line is None:
            problems.append(f"line {line_number} cannot be dropped: goods were already drawn from it")
            continue
        if old is not None and line.unit != old.unit and balance.drawn_quantity > 0:
            problems.append(f"line {line_number} cannot change unit from {old.unit} to {line.unit}: goods were drawn")
        if over_limit(balance.drawn_quantity, line.authorised_quantity):
            problems.append(
                f"line {line_number} authorised quantity {line.authorised_quantity:g} {line.unit} is below the "
                f"{balance.drawn_quantity:g} {line.unit} already drawn"
            )
        if over_limit(balance.drawn_value, line.authorised_value):
            problems.append(
                f"line {line_number} authorised value {line.authorised_value:g} is below the "
                f"{balance.drawn_value:g} already drawn"
            )
    if problems:
        raise FailedPrecondition(
            f"amendment of permit {new.permit_id} refused: " + "; ".join(problems),
            metadata={"permit_id": new.permit_id},
        )
