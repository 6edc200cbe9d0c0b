"""The permit registry on SQLite or PostgreSQL: permits, their history, listings, and declaration cancellation."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from risk_service.domain.errors import DomainError, NotFound, RequestIdConflict
from risk_service.domain.permits.ledger import CancellationResult, DrawRecord, PermitUsage
from risk_service.domain.permits.model import (
    LineBalance,
    Permit,
    PermitAction,
    PermitChange,
    PermitGoodsLine,
    PermitState,
    PermitStatus,
)
from risk_service.domain.ports import BalancesChanged, ChangeOutcome, PermitChangeRequest, PermitFilter
from risk_service.store import audit, codec
from risk_service.store.db import chunks, create_engine
from risk_service.store.ledger import LineKey, lock_declarations, release_declaration
from risk_service.store.tables import (
    assessments,
    declaration_cancellations,
    permit_changes,
    permit_draws,
    permit_lines,
    permits,
)

log = logging.getLogger(__name__)

_Row = dict[str, Any]


@dataclass(slots=True)
class _Plan:
    """What one transaction of `apply` decided: the outcomes, and the writes that make them true."""

    outcomes: list[ChangeOutcome]
    before: dict[str, PermitState | None]  # as locked at the start
    after: dict[str, PermitState | None]  # after the last change in the transaction
    changes: list[tuple[PermitChangeRequest, PermitChange]]

    @property
    def failed(self) -> bool:
        return any(o.error is not None for o in self.outcomes)


def _hs_prefixes(hs_code: str) -> list[str]:
    """Every prefix of a code: a goods line covers the code when its prefix is one of these."""
    return [hs_code[:n] for n in range(1, len(hs_code) + 1)]


def _permit_row(permit: Permit, at: datetime) -> _Row:
    return {
        "permit_id": permit.permit_id,
        "issuing_agency": permit.issuing_agency,
        "type": int(permit.type),
        "holder_id": permit.holder_id,
        "status": int(permit.status),
        "version": permit.version,
        "single_use": permit.single_use,
        "valid_from": permit.valid_from,
        "valid_to": permit.valid_to,
        "updated_at": at,
        "permit": codec.permit_to_dict(permit),
    }


def _line_row(permit_id: str, line: PermitGoodsLine) -> _Row:
    return {
        "permit_id": permit_id,
        "line_number": line.line_number,
        "hs_prefix": line.hs_prefix,
        "unit": line.unit,
        "authorised_quantity": line.authorised_quantity,
        "authorised_value": line.authorised_value,
    }


def _audit_entry(change: PermitChange) -> audit.AuditEntry:
    """The entry of a permit change, vouching for the row permit_changes keeps of it."""
    document = audit.permit_change_document(
        {
            "permit": codec.permit_to_dict(change.permit),
            "action": int(change.action),
            "actor": change.actor,
            "reason": change.reason,
            "changed_at": change.change_time,
        }
    )
    return audit.AuditEntry(
        audit.AuditKind.PERMIT_CHANGE, change.request_id, change.actor, audit.canonical_sha256(document)
    )


class SqlPermitStore:
    """Implements the PermitStore port. Reads use short connections; every write is one transaction.

    A change runs its transition with the permit locked (PostgreSQL: the row `FOR UPDATE`, after the
    change log's table lock that numbers changes in commit order; SQLite: `BEGIN IMMEDIATE`), so it
    sees the balances the ledger holds and no concurrent draw or change slips between check and write.
    The schema must exist: run `migrations.upgrade` first.
    """

    def __init__(
        self,
        url: str,
        *,
        sqlite_synchronous: str = "FULL",
        on_balances: BalancesChanged | None = None,
        chunk_size: int = 200,
    ) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self._engine = create_engine(url, sqlite_synchronous=sqlite_synchronous)
        self._on_balances = on_balances
        self._chunk_size = chunk_size

    # -- changes -----------------------------------------------------------------------------------

    def apply(self, requests: Sequence[PermitChangeRequest], *, atomic: bool = False) -> list[ChangeOutcome]:
        """Applies changes in order, each seeing the ones before; outcomes in request order.

        Atomic: one transaction; any refused request means nothing is written, it gets its error and
        every other outcome is ChangeOutcome(None, None). Otherwise requests share a transaction per
        chunk and a refused one leaves the others applied; if a chunk fails in the database, each of its
        requests is tried again alone, and one failing alone raises (its predecessors stay applied, and
        a retry with the same request ids returns them as stored).
        """
        if not requests:
            return []
        if atomic:
            return self._transaction(requests, atomic=True)
        outcomes: list[ChangeOutcome] = []
        for chunk in chunks(requests, self._chunk_size):
            try:
                outcomes += self._transaction(chunk, atomic=False)
            except Exception:
                log.warning("a chunk of %d permit changes failed; applying each alone", len(chunk), exc_info=True)
                for request in chunk:
                    outcomes += self._transaction([request], atomic=False)
        return outcomes

    def _transaction(self, requests: Sequence[PermitChangeRequest], *, atomic: bool) -> list[ChangeOutcome]:
        with self._engine.connect() as conn:
            conn = conn.execution_options(sqlite_immediate=True)
            with conn.begin() as txn:
                plan = self._plan(conn, requests)
                if atomic and plan.failed:
                    txn.rollback()
                    return [o if o.error is not None else ChangeOutcome(None, None) for o in plan.outcomes]
                self._write(conn, plan)
        return plan.outcomes

    def _plan(self, conn: sa.Connection, requests: Sequence[PermitChangeRequest]) -> _Plan:
        if conn.dialect.name == "postgresql":
            # One permit writer at a time: change numbers then commit in order, so a reader polling
            # changes_since never sees a later number before an earlier one. Readers are not blocked.
            conn.execute(sa.text("LOCK TABLE permit_changes IN EXCLUSIVE MODE"))
        known = self._stored_changes(conn, [r.request_id for r in requests])
        permit_ids = sorted({r.permit_id for r in requests})
        locked = _load_states(conn, permit_ids, lock=True)
        before: dict[str, PermitState | None] = {pid: locked.get(pid) for pid in permit_ids}
        after = dict(before)
        now = datetime.now(UTC)
        outcomes: list[ChangeOutcome] = []
        changes: list[tuple[PermitChangeRequest, PermitChange]] = []
        for request in requests:
            seen = known.get(request.request_id)
            if seen is not None:
                content_hash, change = seen
                if content_hash == request.content_hash:
                    outcomes.append(ChangeOutcome(change, None, created=False))
                else:
                    outcomes.append(
                        ChangeOutcome(
                            None,
                            RequestIdConflict(
                                f"request id {request.request_id} was used for another change "
                                f"(of permit {change.permit.permit_id}); use a new request id",
                                metadata={"request_id": request.request_id},
                            ),
                        )
                    )
                continue
            try:
                permit = request.transition(after[request.permit_id])
            except DomainError as err:
                outcomes.append(ChangeOutcome(None, err))
                continue
            if permit.permit_id != request.permit_id:
                raise ValueError(f"the transition of {request.permit_id} returned permit {permit.permit_id}")
            change = PermitChange(
                request.request_id, _action(request, permit), request.actor, request.reason, now, permit
            )
            previous = after[request.permit_id]
            kept = {} if previous is None else previous.balances
            after[request.permit_id] = PermitState(
                permit, {n: b for n, b in kept.items() if permit.line(n) is not None}
            )
            known[request.request_id] = (request.content_hash, change)
            changes.append((request, change))
            outcomes.append(ChangeOutcome(change, None, created=True))
        return _Plan(outcomes, before, after, changes)

    @staticmethod
    def _stored_changes(conn: sa.Connection, request_ids: Sequence[str]) -> dict[str, tuple[str, PermitChange]]:
        t = permit_changes
        found: dict[str, tuple[str, PermitChange]] = {}
        for chunk in chunks(sorted(set(request_ids))):
            query = sa.select(
                t.c.request_id, t.c.action, t.c.actor, t.c.reason, t.c.changed_at, t.c.permit, t.c.content_hash
            ).where(t.c.request_id.in_(chunk))
            for row in conn.execute(query):
                found[row.request_id] = (row.content_hash, _change(row))
        return found

    @staticmethod
    def _write(conn: sa.Connection, plan: _Plan) -> None:
        """Writes the net effect of the planned changes: each permit's final row and lines, and every change."""
        if not plan.changes:
            return
        at = plan.changes[-1][1].change_time
        inserts: list[_Row] = []
        updates: list[_Row] = []
        new_lines: list[_Row] = []
        kept_lines: list[_Row] = []
        dropped_lines: list[_Row] = []
        for permit_id in dict.fromkeys(change.permit.permit_id for _, change in plan.changes):
            old, new = plan.before[permit_id], plan.after[permit_id]
            assert new is not None  # a transition always returns a permit
            if old is None:
                inserts.append(_permit_row(new.permit, at))
                new_lines += [_line_row(permit_id, line) for line in new.permit.goods_lines]
                continue
            updates.append({"p_" + k: v for k, v in _permit_row(new.permit, at).items()})
            old_numbers = {line.line_number for line in old.permit.goods_lines}
            new_numbers = {line.line_number for line in new.permit.goods_lines}
            dropped_lines += [{"p_id": permit_id, "p_line": n} for n in sorted(old_numbers - new_numbers)]
            for line in new.permit.goods_lines:
                row = _line_row(permit_id, line)
                if line.line_number in old_numbers:
                    kept_lines.append({"p_" + k: v for k, v in row.items()})
                else:
                    new_lines.append(row)
        p, lines = permits, permit_lines
        if inserts:
            conn.execute(sa.insert(p), inserts)
        if updates:
            columns = [c.name for c in p.columns if c.name != "permit_id"]
            conn.execute(
                sa.update(p)
                .where(p.c.permit_id == sa.bindparam("p_permit_id"))
                .values({c: sa.bindparam("p_" + c) for c in columns}),
                updates,
            )
        line_key = (lines.c.permit_id == sa.bindparam("p_id")) & (lines.c.line_number == sa.bindparam("p_line"))
        if dropped_lines:  # the transition refuses to drop a line with draws; the foreign key backs it
            conn.execute(sa.delete(lines).where(line_key), dropped_lines)
        if kept_lines:
            # The authorised side only: drawn totals belong to the ledger.
            conn.execute(
                sa.update(lines)
                .where(
                    lines.c.permit_id == sa.bindparam("p_permit_id"),
                    lines.c.line_number == sa.bindparam("p_line_number"),
                )
                .values(
                    hs_prefix=sa.bindparam("p_hs_prefix"),
                    unit=sa.bindparam("p_unit"),
                    authorised_quantity=sa.bindparam("p_authorised_quantity"),
                    authorised_value=sa.bindparam("p_authorised_value"),
                ),
                kept_lines,
            )
        if new_lines:
            conn.execute(sa.insert(lines), new_lines)
        conn.execute(
            sa.insert(permit_changes),
            [
                {
                    "request_id": change.request_id,
                    "permit_id": change.permit.permit_id,
                    "version": change.permit.version,
                    "action": int(change.action),
                    "actor": change.actor,
                    "reason": change.reason,
                    "changed_at": change.change_time,
                    "content_hash": request.content_hash,
                    "permit": codec.permit_to_dict(change.permit),
                }
                for request, change in plan.changes
            ],
        )
        # Last in the transaction: the audit chain's head is the last lock it takes.
        audit.append(conn, [_audit_entry(change) for _, change in plan.changes])

    # -- cancellation ------------------------------------------------------------------------------

    def cancel_declaration(
        self, declaration_id: str, *, request_id: str, actor: str, reason: str, at: datetime
    ) -> CancellationResult:
        """Returns every draw and use of the declaration to its permits, once; NotFound if never assessed.

        A second call for the same declaration returns the first one's result with created=False. The
        ledger settles no later version of a cancelled declaration.
        """
        c = declaration_cancellations
        with self._engine.connect() as conn:
            conn = conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                # The declaration's ledger lock: no writer replaces its draws while they are given back.
                lock_declarations(conn, [declaration_id])
                earlier = conn.execute(
                    sa.select(c.c.released, c.c.cancelled_at).where(c.c.declaration_id == declaration_id)
                ).one_or_none()
                if earlier is not None:
                    released = tuple(codec.draw_record_from_dict(d) for d in earlier.released)
                    return CancellationResult(declaration_id, released, earlier.cancelled_at, created=False)
                assessed = conn.execute(
                    sa.select(assessments.c.declaration_id)
                    .where(assessments.c.declaration_id == declaration_id)
                    .limit(1)
                ).first()
                if assessed is None:
                    raise NotFound(
                        f"declaration {declaration_id} has no assessment; there is nothing to cancel",
                        metadata={"declaration_id": declaration_id},
                    )
                draws, balances = release_declaration(conn, declaration_id)
                conn.execute(
                    sa.insert(c).values(
                        declaration_id=declaration_id,
                        request_id=request_id,
                        actor=actor,
                        reason=reason,
                        cancelled_at=at,
                        released=[codec.draw_record_to_dict(d) for d in draws],
                    )
                )
        log.info("declaration %s cancelled: %d draws released", declaration_id, len(draws))
        self._notify(balances)
        return CancellationResult(declaration_id, tuple(draws), at, created=True)

    def _notify(self, balances: Mapping[LineKey, LineBalance]) -> None:
        if not balances or self._on_balances is None:
            return
        try:
            self._on_balances(balances)
        except Exception:  # committed already; the listener's failure is not the caller's
            log.exception("the balances listener failed on %d goods lines", len(balances))

    # -- reads -------------------------------------------------------------------------------------

    def get_many(self, permit_ids: Sequence[str]) -> dict[str, PermitState]:
        with self._engine.connect() as conn:
            return _load_states(conn, sorted(set(permit_ids)))

    def history(self, permit_id: str) -> list[PermitChange]:
        """Every change of the permit, oldest first; empty for an unknown id."""
        t = permit_changes
        query = (
            sa.select(t.c.request_id, t.c.action, t.c.actor, t.c.reason, t.c.changed_at, t.c.permit)
            .where(t.c.permit_id == permit_id)
            .order_by(t.c.seq)
        )
        with self._engine.connect() as conn:
            return [_change(row) for row in conn.execute(query)]

    def find(self, where: PermitFilter, *, after: str, limit: int) -> list[PermitState]:
        """Permits matching `where` with permit_id > after, in permit_id order, at most `limit`."""
        if limit <= 0:
            return []
        t = permits
        query = sa.select(t.c.permit_id).where(t.c.permit_id > after).order_by(t.c.permit_id).limit(limit)
        if where.holder_id:
            query = query.where(t.c.holder_id == where.holder_id)
        if where.issuing_agency:
            query = query.where(t.c.issuing_agency == where.issuing_agency)
        if where.status:
            query = query.where(t.c.status == int(where.status))
        if where.hs_code:
            # An index lookup per prefix of the code (at most ten), not a LIKE scan of every line.
            covering = sa.select(permit_lines.c.permit_id).where(
                permit_lines.c.hs_prefix.in_(_hs_prefixes(where.hs_code))
            )
            query = query.where(t.c.permit_id.in_(covering))
        with self._engine.connect() as conn, conn.begin():
            ids = list(conn.execute(query).scalars())
            states = _load_states(conn, ids)
        return [states[pid] for pid in ids if pid in states]

    def usage(self, issuing_agency: str, *, after: str, limit: int) -> list[PermitUsage]:
        """The agency's permits after `after` in permit_id order, each with its balances and every draw from it."""
        if limit <= 0:
            return []
        t, d = permits, permit_draws
        query = (
            sa.select(t.c.permit_id)
            .where(t.c.issuing_agency == issuing_agency, t.c.permit_id > after)
            .order_by(t.c.permit_id)
            .limit(limit)
        )
        draws: dict[str, list[DrawRecord]] = {}
        # One snapshot, so balances and draws agree: SQLite's read transaction gives one; PostgreSQL's
        # default (read committed) takes one per statement, so ask it for repeatable read.
        options = {"isolation_level": "REPEATABLE READ"} if self._engine.dialect.name == "postgresql" else {}
        with self._engine.connect().execution_options(**options) as conn, conn.begin():
            ids = list(conn.execute(query).scalars())
            states = _load_states(conn, ids)
            for chunk in chunks(ids):
                rows = conn.execute(
                    sa.select(
                        d.c.permit_id,
                        d.c.declaration_id,
                        d.c.declaration_version,
                        d.c.line_number,
                        d.c.item_number,
                        d.c.quantity,
                        d.c.value,
                        d.c.drawn_at,
                    )
                    .where(d.c.permit_id.in_(chunk))
                    .order_by(d.c.permit_id, d.c.drawn_at, d.c.declaration_id, d.c.line_number, d.c.item_number)
                )
                for row in rows:
                    draws.setdefault(row.permit_id, []).append(DrawRecord(*row))
        return [PermitUsage(states[pid], tuple(draws.get(pid, ()))) for pid in ids if pid in states]

    def changes_since(self, seq: int) -> list[tuple[int, str]]:
        """(change sequence number, permit id) of every change numbered above `seq`, in number order."""
        t = permit_changes
        query = sa.select(t.c.seq, t.c.permit_id).where(t.c.seq > seq).order_by(t.c.seq)
        with self._engine.connect() as conn:
            return [(n, pid) for n, pid in conn.execute(query)]

    def active_permit_ids(self, at: datetime, limit: int) -> list[str]:
        """Ids of ACTIVE permits still valid at `at`, most recently changed first, at most `limit`."""
        t = permits
        query = (
            sa.select(t.c.permit_id)
            .where(t.c.status == int(PermitStatus.ACTIVE), sa.or_(t.c.valid_to.is_(None), t.c.valid_to > at))
            .order_by(t.c.updated_at.desc(), t.c.permit_id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def last_change_seq(self) -> int:
        """The highest change sequence number so far; 0 when there is none."""
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(permit_changes.c.seq), 0))).scalar_one())

    def ping(self) -> bool:
        try:
            with self._engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception:
            log.warning("permit store ping failed", exc_info=True)
            return False
        return True

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> SqlPermitStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _change(row: Any) -> PermitChange:
    return PermitChange(
        request_id=row.request_id,
        action=PermitAction(row.action),
        actor=row.actor,
        reason=row.reason,
        change_time=row.changed_at,
        permit=codec.permit_from_dict(row.permit),
    )


def _load_states(conn: sa.Connection, permit_ids: Iterable[str], *, lock: bool = False) -> dict[str, PermitState]:
    """The permits with their balances (lines something was drawn from); with `lock`, rows locked in id order.

    Lines are read in a statement after the lock, so on PostgreSQL they carry the totals committed by
    whoever held the lock before (a join in the locking statement would return the older ones).
    """
    t, lines = permits, permit_lines
    found: dict[str, Permit] = {}
    balances: dict[str, dict[int, LineBalance]] = {}
    ids = sorted(set(permit_ids))
    for chunk in chunks(ids):
        query = sa.select(t.c.permit_id, t.c.permit).where(t.c.permit_id.in_(chunk)).order_by(t.c.permit_id)
        if lock:
            query = query.with_for_update()
        for permit_id, document in conn.execute(query):
            found[permit_id] = codec.permit_from_dict(document)
    for chunk in chunks(sorted(found)):
        query = sa.select(lines.c.permit_id, lines.c.line_number, lines.c.drawn_quantity, lines.c.drawn_value).where(
            lines.c.permit_id.in_(chunk), (lines.c.drawn_quantity != 0) | (lines.c.drawn_value != 0)
        )
        for row in conn.execute(query):
            balances.setdefault(row.permit_id, {})[row.line_number] = LineBalance(row.drawn_quantity, row.drawn_value)
    return {pid: PermitState(permit, balances.get(pid, {})) for pid, permit in found.items()}


def _action(request: PermitChangeRequest, permit: Permit) -> PermitAction:
    """What the change did. A bulk feed's upsert asks before it knows: a first version was a submission."""
    if request.action in (PermitAction.SUBMIT, PermitAction.AMEND):
        return PermitAction.SUBMIT if permit.version == 1 else PermitAction.AMEND
    return request.action
