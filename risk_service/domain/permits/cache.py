"""Permits kept in memory for the scoring path, loaded from the store on first use and kept current."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable, Mapping

from risk_service.domain.permits.model import LineBalance, PermitState
from risk_service.domain.ports import PermitStore

log = logging.getLogger(__name__)


class PermitCache:
    """permit_id -> PermitState, or None for an id the registry does not know.

    Scoring reads it without I/O: `ensure` loads the ids a call cites (one store query for all
    misses, off the event loop) before screening. Changes made through this process update it at
    once: registry writes through `put`, ledger commits through `apply_balances`. Changes made by
    other processes sharing the database arrive through `poll` (the reload loop calls it), which
    drops the entries that changed. Balances seen here are a snapshot for checks and features; the
    ledger decides every draw under a lock in the store, so a stale balance can never overdraw.
    """

    def __init__(self, store: PermitStore, *, max_entries: int = 200_000, poll_overlap: int = 1000) -> None:
        self._store = store
        self._max_entries = max_entries
        # Sequence numbers can commit out of order on PostgreSQL; re-reading a window behind the last
        # one seen catches a change whose number was taken before, but committed after, a later one.
        self._poll_overlap = poll_overlap
        self._entries: dict[str, PermitState | None] = {}
        self._generation = 0  # bumped by every change, so a load that raced one is not cached
        self._seq = -1  # highest change number seen; -1: not yet polled
        self._seen: set[int] = set()  # change numbers seen within the overlap window

    def lookup(self, permit_ids: Iterable[str]) -> dict[str, PermitState | None]:
        """What is known of these ids; an id not loaded yet counts as unknown (call `ensure` first)."""
        entries = self._entries
        return {pid: entries.get(pid) for pid in permit_ids}

    def missing(self, permit_ids: Iterable[str]) -> list[str]:
        entries = self._entries
        return [pid for pid in dict.fromkeys(permit_ids) if pid not in entries]

    async def ensure(self, permit_ids: Iterable[str]) -> None:
        """Loads the ids not in memory; ids the registry does not know are remembered as unknown."""
        wanted = self.missing(permit_ids)
        if not wanted:
            return
        generation = self._generation
        found = await asyncio.to_thread(self._store.get_many, wanted)
        if generation != self._generation:
            return  # something changed meanwhile; the next call loads afresh rather than cache a stale read
        self._make_room(len(wanted))
        for pid in wanted:
            self._entries[pid] = found.get(pid)

    def put(self, state: PermitState) -> None:
        self._generation += 1
        self._entries[state.permit.permit_id] = state

    def invalidate(self, permit_ids: Iterable[str]) -> None:
        self._generation += 1
        for pid in permit_ids:
            self._entries.pop(pid, None)

    def apply_balances(self, totals: Mapping[tuple[str, int], LineBalance]) -> None:
        """New totals after a ledger commit (called from the store's writer thread)."""
        self._generation += 1
        by_permit: dict[str, dict[int, LineBalance]] = {}
        for (pid, line_number), balance in totals.items():
            by_permit.setdefault(pid, {})[line_number] = balance
        for pid, lines in by_permit.items():
            state = self._entries.get(pid)
            if state is not None:
                self._entries[pid] = dataclasses.replace(state, balances={**state.balances, **lines})

    def poll(self) -> int:
        """Drops permits other processes changed since the last poll; returns how many. Blocking: run in a thread."""
        if self._seq < 0:
            self._seq = self._store.last_change_seq()
            return 0
        fresh = [(seq, pid) for seq, pid in self._store.changes_since(max(0, self._seq - self._poll_overlap))]
        fresh = [(seq, pid) for seq, pid in fresh if seq not in self._seen]
        for seq, _ in fresh:
            self._seen.add(seq)
            self._seq = max(self._seq, seq)
        floor = self._seq - self._poll_overlap
        self._seen = {seq for seq in self._seen if seq > floor}
        stale = [pid for _, pid in fresh if pid in self._entries]
        if stale:
            self.invalidate(stale)
        return len(stale)

    def _make_room(self, needed: int) -> None:
        excess = len(self._entries) + needed - self._max_entries
        if excess > 0:
            # Oldest loaded first (dicts keep insertion order); they reload on their next use.
            for pid in list(self._entries)[:excess]:
                del self._entries[pid]
