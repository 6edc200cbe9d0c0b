"""Application service of the permit registry: validate, apply changes through the store, keep the cache current."""

from __future__ import annotations

import asyncio
import base64
import binascii
import builtins
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ParamSpec, TypeVar

from risk_service.domain.errors import DomainError, FieldViolation, InvalidArgument, NotFound, Unavailable
from risk_service.domain.permits import transitions
from risk_service.domain.permits.cache import PermitCache
from risk_service.domain.permits.ledger import CancellationResult, PermitUsage
from risk_service.domain.permits.model import Permit, PermitAction, PermitChange, PermitState
from risk_service.domain.permits.validation import validate_permit
from risk_service.domain.ports import ChangeOutcome, PermitChangeRequest, PermitFilter, PermitStore, PermitTransition
from risk_service.domain.validation import ValidationLimits, ViolationCollector, check_identifier, check_text

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# Rows of a non-strict import written per transaction: large enough to amortise the commit,
# small enough that a long feed never holds the database's write lock for long.
IMPORT_CHUNK = 500
# Rows of a feed checked between yields to the event loop (about 20 us each).
_YIELD_EVERY = 500

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One permit of a bulk feed: submitted if new, amended if changed, left alone if unchanged."""

    line_number: int  # in the agency's file, for error reports
    request_id: str
    actor: str
    permit: Permit


@dataclass(frozen=True, slots=True)
class ImportReport:
    applied: bool  # False when strict mode refused the whole feed
    created: int
    amended: int
    unchanged: int
    errors: tuple[tuple[int, DomainError], ...]  # (line number, why)


def _digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


class PermitService:
    def __init__(
        self,
        store: PermitStore,
        cache: PermitCache,
        limits: ValidationLimits,
        *,
        max_import_rows: int = 200_000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._cache = cache
        self._limits = limits
        self._max_import_rows = max_import_rows
        self._clock = clock

    # -- changes -----------------------------------------------------------------------------------

    async def submit(self, permit: Permit, *, request_id: str, actor: str, reason: str = "") -> PermitChange:
        self._refuse_if_invalid(permit, request_id, actor, reason)
        return await self._apply_one(
            PermitChangeRequest(
                request_id,
                permit.permit_id,
                PermitAction.SUBMIT,
                actor,
                reason,
                _digest("submit", permit, actor, reason),
                transitions.submit(permit),
            )
        )

    async def amend(
        self, permit: Permit, *, request_id: str, actor: str, reason: str = "", expected_version: int = 0
    ) -> PermitChange:
        self._refuse_if_invalid(permit, request_id, actor, reason)
        if expected_version < 0:
            raise InvalidArgument([FieldViolation("expected_version", "must not be negative")])
        return await self._apply_one(
            PermitChangeRequest(
                request_id,
                permit.permit_id,
                PermitAction.AMEND,
                actor,
                reason,
                _digest("amend", permit, actor, reason, expected_version),
                transitions.amend(permit, expected_version=expected_version),
            )
        )

    async def suspend(self, permit_id: str, *, request_id: str, actor: str, reason: str) -> PermitChange:
        return await self._change_status(permit_id, PermitAction.SUSPEND, request_id, actor, reason)

    async def reinstate(self, permit_id: str, *, request_id: str, actor: str, reason: str) -> PermitChange:
        return await self._change_status(permit_id, PermitAction.REINSTATE, request_id, actor, reason)

    async def revoke(self, permit_id: str, *, request_id: str, actor: str, reason: str) -> PermitChange:
        return await self._change_status(permit_id, PermitAction.REVOKE, request_id, actor, reason)

    async def import_rows(self, rows: Sequence[ImportRow], *, strict: bool) -> ImportReport:
        """Bulk feed. Bad rows are reported by line and skipped; strict refuses the whole feed if any is bad."""
        if len(rows) > self._max_import_rows:
            raise InvalidArgument(
                [FieldViolation("requests", f"has {len(rows)} rows; at most {self._max_import_rows} per import")]
            )
        errors: builtins.list[tuple[int, DomainError]] = []
        valid: builtins.list[ImportRow] = []
        for n, row in enumerate(rows):
            if n % _YIELD_EVERY == _YIELD_EVERY - 1:
                await asyncio.sleep(0)  # a long feed must not hold up scoring calls on this event loop
            violations = self._violations(row.permit, row.request_id, row.actor, "")
            if violations:
                errors.append((row.line_number, InvalidArgument(violations)))
            else:
                valid.append(row)
        if strict and errors:
            return ImportReport(False, 0, 0, 0, tuple(errors))
        current = await self._call(self._store.get_many, [r.permit.permit_id for r in valid])
        todo: builtins.list[ImportRow] = []
        unchanged = 0
        latest: dict[str, Permit] = {pid: state.permit for pid, state in current.items()}
        for n, row in enumerate(valid):
            if n % _YIELD_EVERY == _YIELD_EVERY - 1:
                await asyncio.sleep(0)
            known = latest.get(row.permit.permit_id)
            if known is not None and transitions.same_content(known, row.permit):
                unchanged += 1
            else:
                todo.append(row)
                latest[row.permit.permit_id] = row.permit
        requests = [
            PermitChangeRequest(
                r.request_id,
                r.permit.permit_id,
                PermitAction.SUBMIT,  # an upsert: the store records SUBMIT or AMEND by the version it writes
                r.actor,
                "bulk import",
                _digest("import", r.permit, r.actor),
                transitions.upsert(r.permit),
            )
            for r in todo
        ]
        outcomes: builtins.list[ChangeOutcome] = []
        if strict:
            outcomes = await self._call(self._store.apply, requests, atomic=True)
        else:
            for start in range(0, len(requests), IMPORT_CHUNK):
                chunk = await self._call(self._store.apply, requests[start : start + IMPORT_CHUNK], atomic=False)
                # Per chunk: a later chunk failing must not leave the committed ones stale in memory.
                await self._refresh([o.change.permit.permit_id for o in chunk if o.change is not None])
                outcomes += chunk
        failed = [(r.line_number, o.error) for r, o in zip(todo, outcomes, strict=True) if o.error is not None]
        errors.extend(failed)
        errors.sort(key=lambda e: e[0])
        if strict and failed:
            return ImportReport(False, 0, 0, 0, tuple(errors))
        if strict:
            await self._refresh([o.change.permit.permit_id for o in outcomes if o.change is not None])
        created = amended = 0
        for outcome in outcomes:
            if outcome.change is None:
                continue
            if not outcome.created:
                unchanged += 1  # a retried row: applied by an earlier run of the same feed
            elif outcome.change.permit.version == 1:
                created += 1
            else:
                amended += 1
        return ImportReport(True, created, amended, unchanged, tuple(errors))

    async def cancel_declaration(
        self, declaration_id: str, *, request_id: str, actor: str, reason: str
    ) -> CancellationResult:
        violations = [
            *self._id_violations("declaration_id", declaration_id),
            *self._id_violations("request_id", request_id),
            *self._text_violations("actor", actor, required=True),
            *self._text_violations("reason", reason, required=False),
        ]
        if violations:
            raise InvalidArgument(violations)
        result = await self._call(
            self._store.cancel_declaration,
            declaration_id,
            request_id=request_id,
            actor=actor,
            reason=reason,
            at=self._clock(),
        )
        await self._refresh(sorted({draw.permit_id for draw in result.released}))
        return result

    # -- reads -------------------------------------------------------------------------------------

    async def get(self, permit_id: str) -> PermitState:
        self._refuse(self._id_violations("permit_id", permit_id))
        found = await self._call(self._store.get_many, [permit_id])
        if permit_id not in found:
            raise NotFound(f"permit {permit_id} is not registered", metadata={"permit_id": permit_id})
        return found[permit_id]

    async def history(self, permit_id: str) -> builtins.list[PermitChange]:
        self._refuse(self._id_violations("permit_id", permit_id))
        changes = await self._call(self._store.history, permit_id)
        if not changes:
            raise NotFound(f"permit {permit_id} is not registered", metadata={"permit_id": permit_id})
        return changes

    async def list(
        self, where: PermitFilter, *, page_size: int, page_token: str
    ) -> tuple[builtins.list[PermitState], str]:
        violations = [
            *self._id_violations("filter.holder_id", where.holder_id, required=False),
            *self._id_violations("filter.issuing_agency", where.issuing_agency, required=False),
        ]
        if where.hs_code and not (
            where.hs_code.isascii() and where.hs_code.isdigit() and 2 <= len(where.hs_code) <= 10
        ):
            violations.append(FieldViolation("filter.hs_code", "must be 2 to 10 digits"))
        self._refuse(violations)
        size = self._page_size(page_size)
        after = _read_token(page_token, _digest("list", where))
        found = await self._call(self._store.find, where, after=after, limit=size + 1)
        return found[:size], _next_token(found, size, lambda s: s.permit.permit_id, _digest("list", where))

    async def usage(
        self, issuing_agency: str, *, page_size: int, page_token: str
    ) -> tuple[builtins.list[PermitUsage], str]:
        self._refuse(self._id_violations("issuing_agency", issuing_agency))
        size = self._page_size(page_size)
        after = _read_token(page_token, _digest("usage", issuing_agency))
        found = await self._call(self._store.usage, issuing_agency, after=after, limit=size + 1)
        return found[:size], _next_token(
            found, size, lambda u: u.state.permit.permit_id, _digest("usage", issuing_agency)
        )

    # -- helpers -----------------------------------------------------------------------------------

    async def _change_status(
        self, permit_id: str, action: PermitAction, request_id: str, actor: str, reason: str
    ) -> PermitChange:
        self._refuse(
            [
                *self._id_violations("permit_id", permit_id),
                *self._id_violations("request_id", request_id),
                *self._text_violations("actor", actor, required=True),
                *self._text_violations("reason", reason, required=True),
            ]
        )
        transition: PermitTransition = transitions.change_status(permit_id, action)
        return await self._apply_one(
            PermitChangeRequest(
                request_id, permit_id, action, actor, reason, _digest(action.name, permit_id, actor, reason), transition
            )
        )

    async def _apply_one(self, request: PermitChangeRequest) -> PermitChange:
        (outcome,) = await self._call(self._store.apply, [request], atomic=True)
        if outcome.error is not None:
            raise outcome.error
        if outcome.change is None:  # only possible for an atomic batch failing elsewhere
            raise Unavailable(f"the change of permit {request.permit_id} was not applied; retry")
        await self._refresh([request.permit_id])
        return outcome.change

    async def _call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except DomainError:
            raise
        except Exception as err:
            raise Unavailable("the permit registry is unavailable; retry later") from err

    def _refuse_if_invalid(self, permit: Permit, request_id: str, actor: str, reason: str) -> None:
        self._refuse(self._violations(permit, request_id, actor, reason))

    def _violations(self, permit: Permit, request_id: str, actor: str, reason: str) -> builtins.list[FieldViolation]:
        return [
            *self._id_violations("request_id", request_id),
            *self._text_violations("actor", actor, required=True),
            *self._text_violations("reason", reason, required=False),
            *validate_permit(permit, self._limits, path="permit", allow_unspecified_status=True),
        ]

    async def _refresh(self, permit_ids: builtins.list[str]) -> None:
        """Brings changed permits into memory with their balances; the change itself is stored already."""
        self._cache.invalidate(permit_ids)
        try:
            await asyncio.to_thread(self._cache.refresh, permit_ids)
        except Exception:  # the change stands; scoring loads the permits on first use instead
            log.warning("reading %d changed permits back into memory failed", len(permit_ids), exc_info=True)

    @staticmethod
    def _refuse(violations: builtins.list[FieldViolation]) -> None:
        if violations:
            raise InvalidArgument(violations)

    def _id_violations(self, field: str, value: str, *, required: bool = True) -> builtins.list[FieldViolation]:
        if not value and not required:
            return []
        out = ViolationCollector()
        check_identifier(out, field, value, self._limits)
        return out.violations

    def _text_violations(self, field: str, value: str, *, required: bool) -> builtins.list[FieldViolation]:
        out = ViolationCollector()
        check_text(out, field, value, self._limits, required=required)
        return out.violations

    @staticmethod
    def _page_size(page_size: int) -> int:
        if page_size < 0:
            raise InvalidArgument([FieldViolation("page_size", "must not be negative")])
        return min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _next_token(found: Sequence[T], size: int, key: Callable[[T], str], query: str) -> str:
    if len(found) <= size:
        return ""
    payload = json.dumps({"after": key(found[size - 1]), "q": query[:16]}).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def _read_token(token: str, query: str) -> str:
    """The permit id a page starts after; a token from another query or a mangled one is refused."""
    if not token:
        return ""
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after, q = payload["after"], payload["q"]
        if not isinstance(after, str) or q != query[:16]:
            raise ValueError("another query")
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError) as err:
        raise InvalidArgument(
            [FieldViolation("page_token", "is not a token this query returned; start again without one")]
        ) from err
    return after
