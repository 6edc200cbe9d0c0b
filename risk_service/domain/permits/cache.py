"""Permits kept in memory for the scoring path, loaded from the store on first use and kept current."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime

from risk_service.domain.permits.model import LineBalance, PermitState
from risk_service.domain.ports import PermitStore

log = logging.getLogger(__name__)

_ABSENT = object()
# Permits read per store query when refreshing many (a bulk feed's chunk, a poll after one).
_REFRESH_CHUNK = 500


class PermitCache:
    """permit_id -> PermitState, or None for an id the registry does not know.

    Scoring reads it without I/O: `snapshot` hands a call the permits it cites, loading the ones
    not in memory with one store query off the event loop. Changes made through this process
    update it at once: registry writes drop the permit, ledger commits bring new balances
    (`apply_balances`, from the store's writer thread). Changes made by other processes sharing
    the database arrive through `poll`, which the reload loop calls. Balances seen here are a
    snapshot for checks and features; the ledger decides every draw under a lock in the store, so
    a stale balance can never overdraw.

    Reads take no lock (a dict read is atomic); writes take one, so a writer-thread balance
    update and an event-loop invalidation of the same permit cannot interleave. A load that a
    change of the same permit overtakes is returned to its caller but not kept.
    """

    def __init__(self, store: PermitStore, *, max_entries: int = 200_000, poll_overlap: int = 1000) -> None:
        self._store = store
        self._max_entries = max_entries
        # Sequence numbers can commit out of order on PostgreSQL; re-reading a window behind the last
        # one seen catches a change whose number was taken before, but committed after, a later one.
        self._poll_overlap = poll_overlap
        self._entries: dict[str, PermitState | None] = {}
        self._loading: dict[str, object] = {}  # permit id -> ticket of the load in flight
        self._lock = threading.Lock()
        self._seq = -1  # highest change number seen; -1: not yet polled
        self._seen: set[int] = set()  # change numbers seen within the overlap window

    def __len__(self) -> int:
        return len(self._entries)

    def missing(self, permit_ids: Iterable[str]) -> list[str]:
        """The ids memory holds nothing about (neither a state nor "not registered")."""
        entries = self._entries
        return [pid for pid in dict.fromkeys(permit_ids) if pid not in entries]

    def cached(self, permit_ids: Iterable[str]) -> dict[str, PermitState | None]:
        """What memory holds of these ids, without loading; an id not loaded counts as unknown."""
        entries = self._entries
        return {pid: entries.get(pid) for pid in permit_ids}

    async def snapshot(self, permit_ids: Iterable[str]) -> dict[str, PermitState | None]:
        """These permits as of now (None: not registered), loading the ones not in memory."""
        out: dict[str, PermitState | None] = {}
        missing: list[str] = []
        entries = self._entries
        for pid in dict.fromkeys(permit_ids):
            state = entries.get(pid, _ABSENT)
            if state is _ABSENT:
                missing.append(pid)
            else:
                out[pid] = state  # type: ignore[assignment]  # not _ABSENT, so a state or None
        if not missing:
            return out
        found = await asyncio.to_thread(self._load, missing)
        out.update(found)
        return out

    def refresh(self, permit_ids: Iterable[str]) -> None:
        """Reads these permits from the store into memory, registered or not. Blocking: run it in a thread.

        Registry writes and polled changes refresh rather than drop, so a permit is in memory before
        its first citation: most quarantine and health certificates are cited once.
        """
        wanted = list(dict.fromkeys(permit_ids))
        for start in range(0, len(wanted), _REFRESH_CHUNK):
            self._load(wanted[start : start + _REFRESH_CHUNK])

    def warm(self, at: datetime, limit: int) -> int:
        """Reads the permits likely to be cited (active, valid at `at`, most recently changed first)."""
        ids = self._store.active_permit_ids(at, min(limit, self._max_entries))
        self.refresh(ids)
        return len(ids)

    def _load(self, permit_ids: list[str]) -> dict[str, PermitState | None]:
        """Reads permits and keeps each one no change overtook while it was read."""
        ticket = object()
        with self._lock:
            for pid in permit_ids:
                self._loading[pid] = ticket
        try:
            found = self._store.get_many(permit_ids)
        except BaseException:
            with self._lock:
                for pid in permit_ids:
                    if self._loading.get(pid) is ticket:
                        del self._loading[pid]
            raise
        out: dict[str, PermitState | None] = {}
        with self._lock:
            self._make_room(len(permit_ids))
            for pid in permit_ids:
                state = found.get(pid)
                out[pid] = state
                if self._loading.get(pid) is ticket:  # no change of this permit overtook the read
                    del self._loading[pid]
                    self._entries[pid] = state
        return out

    def invalidate(self, permit_ids: Iterable[str]) -> None:
        with self._lock:
            for pid in permit_ids:
                self._entries.pop(pid, None)
                self._loading.pop(pid, None)

    def apply_balances(self, totals: Mapping[tuple[str, int], LineBalance]) -> None:
        """New totals after a ledger commit (called from the store's writer thread)."""
        by_permit: dict[str, dict[int, LineBalance]] = {}
        for (pid, line_number), balance in totals.items():
            by_permit.setdefault(pid, {})[line_number] = balance
        with self._lock:
            for pid, lines in by_permit.items():
                self._loading.pop(pid, None)  # a load in flight may have read the totals before this commit
                state = self._entries.get(pid)
                if state is not None:  # built directly: dataclasses.replace costs several times more
                    self._entries[pid] = PermitState(state.permit, {**state.balances, **lines})

    def poll(self) -> int:
        """Reads again the permits other processes changed since the last poll; returns how many changes it saw.

        Blocking: run it in a thread. A load of a changed id in flight right now is not kept.
        """
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
        if fresh:
            changed = list(dict.fromkeys(pid for _, pid in fresh))
            self.invalidate(changed)
            self.refresh(changed)
        return len(fresh)

    def _make_room(self, needed: int) -> None:
        """Called under the lock: drops the oldest loaded entries (dicts keep insertion order)."""
        excess = len(self._entries) + needed - self._max_entries
        if excess > 0:
            for pid in list(self._entries)[:excess]:
                del self._entries[pid]
