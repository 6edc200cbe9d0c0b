"""In-process profile of what permit checks cost per declaration: the checks, and the ledger in the writer.

    .venv/bin/python benchmarks/profile_permits.py [--database-url URL] [--declarations 6000]
        [--sizes 8,32,200,500] [--rounds 5] [--cprofile ledger|checks] [--permit-mix history|every-item]

Uses the scoring benchmark's declarations and permit mix (bench_scoring.DeclarationFactory with
cited permits, one in AMENDMENT_EVERY sent again as an amendment). Checks: CPU time of
PermitScreen.check per declaration. Ledger: the assessment writer's transaction, run in this
thread on groups of `size` records (the group commit of unary calls, streams and batches), the same
records once with their claims (checked) and once without (unchecked), alternating, so the machine's
noise hits both alike; the difference per declaration is what the ledger costs the writer. Prints
medians over the rounds: thread CPU and wall time per declaration, and the ledger's own part.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import hashlib
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_scoring import AMENDMENT_EVERY, PERMIT_MIXES, DeclarationFactory, fresh_database  # noqa: E402

from risk_service.domain.assessment import Assessment  # noqa: E402
from risk_service.domain.declaration import Declaration  # noqa: E402
from risk_service.domain.permits.cache import PermitCache  # noqa: E402
from risk_service.domain.permits.checks import PermitCheckConfig, flag_refusals  # noqa: E402
from risk_service.domain.permits.controlled_goods import (  # noqa: E402
    DEFAULT_CONTROLLED_GOODS_PATH,
    ControlledGoodsTable,
    load_controlled_goods,
)
from risk_service.domain.permits.ledger import DrawRefusal  # noqa: E402
from risk_service.domain.permits.model import Permit, PermitAction, PermitState, PermitStatus  # noqa: E402
from risk_service.domain.permits.screen import PermitScreen  # noqa: E402
from risk_service.domain.policy import SelectionPolicy  # noqa: E402
from risk_service.domain.ports import AssessmentRecord, PermitChangeRequest, SaveResult  # noqa: E402
from risk_service.grpc.convert import declaration_from_pb  # noqa: E402
from risk_service.grpc.permit_convert import permit_from_pb  # noqa: E402
from risk_service.store import assessment_store, ledger, migrations  # noqa: E402
from risk_service.store.assessment_store import SqlAssessmentStore, _row  # noqa: E402
from risk_service.store.group_commit import Submission  # noqa: E402
from risk_service.store.permit_store import SqlPermitStore  # noqa: E402
from tests.builders import assessment  # noqa: E402


@dataclasses.dataclass
class _Table:
    current: ControlledGoodsTable


def _put(permit: Permit) -> Callable[[PermitState | None], Permit]:
    def transition(current: PermitState | None) -> Permit:
        return dataclasses.replace(permit, version=1, status=PermitStatus.ACTIVE)

    return transition


def register(store: SqlPermitStore, permits: Sequence[Permit]) -> None:
    requests = [
        PermitChangeRequest(f"REQ-{p.permit_id}", p.permit_id, PermitAction.SUBMIT, "profile", "", p.permit_id, _put(p))
        for p in permits
    ]
    for outcome in store.apply(requests):
        if outcome.error is not None:
            raise RuntimeError(str(outcome.error))


def assessment_of(d: Declaration, now: datetime) -> Assessment:
    return assessment(
        assessment_id=str(uuid.uuid4()),
        declaration_id=d.declaration_id,
        declaration_version=d.version,
        assessment_time=now,
    )


class Timer:
    """Accumulates thread CPU and wall time of a wrapped function (the ledger's share of a transaction)."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.wall = 0.0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            c, w = time.thread_time(), time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.cpu += time.thread_time() - c
                self.wall += time.perf_counter() - w

        return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--permit-mix", choices=PERMIT_MIXES, default="history", help="as bench_scoring's")
    parser.add_argument("--database-url", help="a PostgreSQL server URL (a fresh database is made on it)")
    parser.add_argument("--declarations", type=int, default=6000)
    parser.add_argument("--sizes", default="8,32,200,500")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cprofile", choices=("ledger", "checks"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    factory = DeclarationFactory(run="P", seed=0, cite_permits=True, permit_mix=args.permit_mix)
    permits = [permit_from_pb(p) for p in factory.permits]
    n_first = len(factory._declarations)  # the first pass; later ones mix in amendments
    table = load_controlled_goods(DEFAULT_CONTROLLED_GOODS_PATH)
    config = PermitCheckConfig()
    policy = SelectionPolicy()

    kind = "postgresql" if args.database_url else "sqlite"
    with fresh_database(kind, Path(tempfile.mkdtemp(prefix="risk-profile-")), args.database_url or "") as url:
        migrations.upgrade(url)
        permit_store = SqlPermitStore(url, sqlite_synchronous="NORMAL")
        register(permit_store, permits)
        cache = PermitCache(permit_store)
        cache.refresh([p.permit_id for p in permits])
        screen = PermitScreen(cache, _Table(table), config)

        def settle(record: AssessmentRecord, refusals: Sequence[DrawRefusal]) -> Assessment:
            return flag_refusals(record.assessment, record.declaration, refusals, config, policy)

        store = SqlAssessmentStore(url, settle=settle, on_balances=cache.apply_balances)
        ledger_timer = Timer()
        # The store calls the ledger through its module's name: wrapped there, it is timed in place.
        setattr(assessment_store, "settle_claims", ledger_timer.wrap(ledger.settle_claims))  # noqa: B010
        engine: sa.Engine = store._engine
        conn = engine.connect().execution_options(sqlite_immediate=True)
        print(f"{len(permits)} permits registered; amendments: one in {AMENDMENT_EVERY} after the first pass")

        now = datetime.now(UTC)

        def declarations(n: int) -> list[Declaration]:
            return [declaration_from_pb(factory()) for _ in range(n)]

        # Store the first pass (all new filings), so the amendments of later passes replace real draws.
        started = time.perf_counter()
        for _ in range(0, n_first, 1000):
            first = declarations(min(1000, n_first - factory._n))
            snap = screen.cached(first)
            records = [
                AssessmentRecord(assessment_of(d, now), d, _hash(d), screen.check(d, snap, now).claim) for d in first
            ]
            with conn.begin():
                store._transaction(conn, [Submission(records, Future(), rows=[_row(r) for r in records])])
        print(f"stored the first pass of {n_first} declarations in {time.perf_counter() - started:.1f} s")

        # -- checks -------------------------------------------------------------------------------
        sample = declarations(args.declarations)
        snapshot = screen.cached(sample)
        check_cpu: list[float] = []
        profiler = cProfile.Profile() if args.cprofile else None
        for _ in range(args.rounds):
            started = time.thread_time()
            if args.cprofile == "checks":
                profiler.enable()  # type: ignore[union-attr]
            for d in sample:
                screen.check(d, snapshot, now)
            if args.cprofile == "checks":
                profiler.disable()  # type: ignore[union-attr]
            check_cpu.append((time.thread_time() - started) / len(sample) * 1e6)
        items = sum(len(d.items) for d in sample) / len(sample)
        print(f"checks: {statistics.median(check_cpu):.1f} us CPU per declaration ({items:.2f} items each)")

        # -- ledger ---------------------------------------------------------------------------------

        def transaction(records: list[AssessmentRecord], size: int) -> tuple[float, float, float, float]:
            subs: list[Submission[AssessmentRecord, SaveResult]] = [
                Submission(records[i : i + size], Future(), rows=[_row(r) for r in records[i : i + size]])
                for i in range(0, len(records), size)
            ]
            ledger_timer.cpu = ledger_timer.wall = 0.0
            c, w = time.thread_time(), time.perf_counter()
            for s in subs:
                # One submission per transaction: the writer's group of `size` records.
                with conn.begin():
                    _, after = store._transaction(conn, [s])
                if after is not None:
                    after()  # the cache hears the new balances in the writer thread too
            return (
                time.thread_time() - c,
                time.perf_counter() - w,
                ledger_timer.cpu,
                ledger_timer.wall,
            )

        per_size = max(500, args.declarations // 4)
        print(f"ledger ({url.split(':')[0]}), {per_size} declarations per round and mode, medians of {args.rounds}:")
        print(f"{'group':>6} {'cpu/decl +':>11} {'wall/decl +':>12} {'ledger cpu':>11} {'ledger wall':>12}  (us)")
        for size in sizes:
            deltas_cpu: list[float] = []
            deltas_wall: list[float] = []
            ledger_cpu: list[float] = []
            ledger_wall: list[float] = []
            for _ in range(args.rounds):
                batch = declarations(2 * per_size)
                snap = screen.cached(batch)
                claims = [screen.check(d, snap, now).claim for d in batch]
                checked = [
                    AssessmentRecord(assessment_of(d, now), d, _hash(d), claim)
                    for d, claim in zip(batch[:per_size], claims[:per_size], strict=True)
                ]
                unchecked = [AssessmentRecord(assessment_of(d, now), d, _hash(d), None) for d in batch[per_size:]]
                u = transaction(unchecked, size)
                if args.cprofile == "ledger":
                    profiler.enable()  # type: ignore[union-attr]
                c = transaction(checked, size)
                if args.cprofile == "ledger":
                    profiler.disable()  # type: ignore[union-attr]
                deltas_cpu.append((c[0] - u[0]) / per_size * 1e6)
                deltas_wall.append((c[1] - u[1]) / per_size * 1e6)
                ledger_cpu.append(c[2] / per_size * 1e6)
                ledger_wall.append(c[3] / per_size * 1e6)
            print(
                f"{size:>6} {statistics.median(deltas_cpu):>11.1f} {statistics.median(deltas_wall):>12.1f} "
                f"{statistics.median(ledger_cpu):>11.1f} {statistics.median(ledger_wall):>12.1f}"
            )
        conn.close()
        store.close()
        permit_store.close()
        if profiler is not None:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(35)


def _hash(d: Declaration) -> str:
    return hashlib.sha256(f"{d.declaration_id}/{d.version}".encode()).hexdigest()


if __name__ == "__main__":
    main()
