"""Scoring benchmark: a load generator in its own process against a real `risk serve` with storage on.

    .venv/bin/python benchmarks/bench_scoring.py [--runs 3] [--seconds 10] [--database-url URL]
        [--permits {none,checked,unchecked,compare}] [--warmup-runs 1] [--modes unary_8,batch_500,...]

Starts the server as a subprocess on a fresh data folder (demo champion model, SQLite unless
--database-url is given), then measures unary calls at 8 and 32 in flight, batches of 500 and a
bidirectional stream. Prints declarations per second and p50/p99 latency per mode: the median of
--runs runs. Not a test: the machine is shared and noisy, so compare ratios, not absolutes.

--permits checked: only declarations that cite permits are sent, and the permits they cite are
registered first through ImportPermits (the importer's own permit of the type and agency the
controlled goods table requires, else an import licence; 2% of declarations cite an unknown id
and 1% another importer's permit); the service checks them and draws from them. Which items cite
is --permit-mix: `history` (the default) keeps the synthetic history's citations (about 1.3 of 2.9
items in the 15-18% of declarations that cite any). The history marks goods that need permits by
chapter, so about half of its citing items need none under the shipped controlled goods table and
cite an import licence; and its filings that omit a required permit stay, which only the checked
server flags (about 2% of declarations, on top of the problems below). `every-item` makes every
goods item of every declaration cite one, 2.2 draws per declaration: the ledger's worst case.
--permits unchecked sends the same declarations to a service with permit checks off, the baseline
the issue's 15% bound is against. --permits compare runs both servers side by side and reports
paired ratios (see compare()).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from protos.risk.v1 import declaration_pb2, permit_pb2  # noqa: E402
from protos.risk.v1 import permit_service_pb2 as permit_pb  # noqa: E402
from protos.risk.v1 import permit_service_pb2_grpc as permit_grpc  # noqa: E402
from protos.risk.v1 import risk_scoring_service_pb2 as pb  # noqa: E402
from protos.risk.v1 import risk_scoring_service_pb2_grpc as pb_grpc  # noqa: E402

NAN = float("nan")
# After the first pass over the generated declarations, one in this many comes back amended.
AMENDMENT_EVERY = 20
# Which goods items cite permits with --permits checked/unchecked/compare (see the docstring).
PERMIT_MIXES = ("history", "every-item")


class DeclarationFactory:
    """Declarations drawn from the project's synthetic history: the same catalogue, value bands and
    fraud mix the demo model was trained on, so flag rates (and so contribution work) are realistic.
    Ids get a run prefix so every call is fresh work, never an idempotent replay."""

    def __init__(
        self,
        run: str,
        seed: int = 0,
        n_declarations: int = 20_000,
        *,
        cite_permits: bool = False,
        permit_mix: str = "history",
    ) -> None:
        from training.synthetic import generate_history

        if permit_mix not in PERMIT_MIXES:
            raise ValueError(f"unknown permit mix {permit_mix!r}; choose from {', '.join(PERMIT_MIXES)}")
        every_item = permit_mix == "every-item"
        if cite_permits and not every_item:
            n_declarations *= 4  # 15-18% of the history cites permits: about 15,000 declarations to send
        history = generate_history(n_declarations, seed=1000 + seed, start=date(2026, 1, 1), days=300)
        declarations = _declarations_from_history(history, run)
        self.permits: list[permit_pb2.Permit] = []
        if cite_permits:
            if not every_item:  # the bound is for declarations that cite permits
                declarations = [d for d in declarations if any(it.permit_references for it in d.items)]
            self.permits = _cite_permits(declarations, run, seed, every_item=every_item)
        self._declarations = declarations
        self._n = 0

    def __call__(self) -> declaration_pb2.Declaration:
        index = self._n % len(self._declarations)
        rounds = self._n // len(self._declarations)
        d = self._declarations[index]
        self._n += 1
        if rounds:
            # Wrapped: fresh work again, mostly as new filings (an id of their own) and one in
            # AMENDMENT_EVERY as a new version of the earlier filing, as amendments come in practice.
            again = declaration_pb2.Declaration()
            again.CopyFrom(d)
            if index % AMENDMENT_EVERY == 0:
                again.version = d.version + rounds
            else:
                again.declaration_id = f"{d.declaration_id}-r{rounds}"
            d = again
        return d


def _declarations_from_history(history: Any, run: str) -> list[declaration_pb2.Declaration]:
    """One proto per declaration; rows of a declaration are adjacent in the history frame."""
    cols = {name: history[name].tolist() for name in history.columns}
    out: list[declaration_pb2.Declaration] = []
    for i, declaration_id in enumerate(cols["declaration_id"]):
        if cols["item_number"][i] == 1:
            d = declaration_pb2.Declaration(
                declaration_id=f"B{run}-{declaration_id}",
                version=1,
                type=cols["declaration_type"][i],
                customs_office=cols["customs_office"][i],
                declarant=declaration_pb2.Party(id=cols["declarant_id"][i]),
                importer=declaration_pb2.Party(id=cols["importer_id"][i], name="Importer"),
                exporter=declaration_pb2.Party(id=cols["exporter_id"][i]),
                aeo_status=cols["aeo_status"][i],
                export_country=cols["export_country"][i],
                origin_country=cols["origin_country"][i],
                destination_country="KR",
                transport_mode=cols["transport_mode"][i],
                transport_document_number=f"BL{declaration_id}",
                incoterm="FOB",
                invoice_currency="KRW",
            )
            d.lodgement_time.FromDatetime(cols["lodgement_time"][i].to_pydatetime())
            out.append(d)
        d = out[-1]
        d.invoice_amount += cols["customs_value"][i]
        d.items.add(
            item_number=cols["item_number"][i],
            hs_code=cols["hs_code"][i],
            description=cols["description"][i],
            quantity=cols["quantity"][i],
            quantity_unit=cols["quantity_unit"][i],
            net_mass_kg=cols["net_mass_kg"][i],
            gross_mass_kg=cols["gross_mass_kg"][i],
            customs_value=cols["customs_value"][i],
            origin_country=cols["origin_country"][i],
            preference_claimed="FTA" if cols["preference_claimed"][i] else "",
            permit_references=[f"PRM-{declaration_id}-{k}" for k in range(cols["permit_count"][i])],
            duties_and_taxes=[declaration_pb2.DutyTax(type_code="B00", amount=cols["duties_and_taxes"][i])],
        )
    return out


def _cite_permits(
    declarations: list[declaration_pb2.Declaration], run: str, seed: int, *, every_item: bool
) -> list[permit_pb2.Permit]:
    """Makes the citing items cite registered permits and returns the permits to register.

    The citing items are those the history gave permit references (every item with `every_item`).
    Each cites its importer's permit for the goods: of the type and agency the shipped controlled
    goods table requires for them, else a MOTIE import licence. Filings with a permit problem are
    rare in practice: 2% of declarations cite an unknown id, 1% another importer's permit, so the
    flag rate (and the contribution work it brings) stays close to the baseline's. (With the history
    mix, the history's own filings that omit a required permit add about 2% more, flagged by the
    checked server only.)
    """
    import random

    from risk_service.domain.declaration import DeclarationType
    from risk_service.domain.permits.controlled_goods import DEFAULT_CONTROLLED_GOODS_PATH, load_controlled_goods
    from risk_service.domain.permits.units import convert

    table = load_controlled_goods(DEFAULT_CONTROLLED_GOODS_PATH)
    rng = random.Random(seed)
    permits: dict[tuple[str, str, int, str], permit_pb2.Permit] = {}
    for d in declarations:
        problem = rng.random()
        first = True  # the first citing item carries the declaration's permit problem, if any
        for it in d.items:
            if not (every_item or it.permit_references):
                continue
            needs = table.requirements(
                it.hs_code,
                it.origin_country,
                DeclarationType(d.type),
                functools.partial(convert, it.quantity, it.quantity_unit),
            )
            wanted = (
                [(permit_pb2.PermitType.Value(f"PERMIT_TYPE_{r.permit_type.name}"), r.agency) for r in needs]
                if needs
                else [(permit_pb2.PERMIT_TYPE_IMPORT_LICENCE, "MOTIE")]
            )
            cited: list[str] = []
            holder = d.exporter.id if d.type == declaration_pb2.DECLARATION_TYPE_EXPORT else d.importer.id
            for permit_type, agency in wanted:
                key = (holder, it.hs_code[:4], permit_type, agency)
                permit = permits.get(key)
                if permit is None:
                    permit = permit_pb2.Permit(
                        permit_id=f"LIC{run}-{len(permits)}",
                        issuing_agency=agency,
                        type=permit_type,
                        holder_id=holder,
                        goods_lines=[
                            permit_pb2.PermitGoodsLine(line_number=1, hs_prefix=it.hs_code[:4], unit=it.quantity_unit)
                        ],
                    )
                    permit.valid_from_time.FromDatetime(datetime(2025, 1, 1, tzinfo=UTC))
                    permit.valid_to_time.FromDatetime(datetime(2028, 1, 1, tzinfo=UTC))
                    permits[key] = permit
                line = permit.goods_lines[0]
                line.authorised_quantity = line.authorised_quantity + it.quantity * 20 + 1
                cited.append(permit.permit_id)
            if first and problem < 0.02:
                cited[0] = f"LIC{run}-UNKNOWN-{rng.randrange(1_000_000)}"
            elif first and problem < 0.03:
                cited[0] = rng.choice(list(permits.values())).permit_id
            first = False
            del it.permit_references[:]
            it.permit_references.extend(cited)
    return list(permits.values())


def register_permits(address: str, permits: list[permit_pb2.Permit]) -> float:
    """Feeds the permits through ImportPermits; returns the seconds it took."""
    started = time.perf_counter()
    with grpc.insecure_channel(address) as channel:
        stub = permit_grpc.PermitServiceStub(channel)
        requests = (
            permit_pb.ImportPermitsRequest(line_number=n, request_id=f"{p.permit_id}", actor="bench", permit=p)
            for n, p in enumerate(permits, start=1)
        )
        response = stub.ImportPermits(requests, timeout=600)
    if response.errors:
        raise RuntimeError(f"{len(response.errors)} permits refused, e.g. {response.errors[0].status.message}")
    return time.perf_counter() - started


def _cpu_ticks(pid: int) -> int:
    """User + system CPU of a process, in clock ticks (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _postgres_ticks() -> dict[int, int]:
    """CPU of each running PostgreSQL process (server, backends, autovacuum), in clock ticks."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        if text[text.index("(") + 1 : text.rindex(")")] == "postgres":
            fields = text.rsplit(")", 1)[1].split()
            out[int(stat.parent.name)] = int(fields[11]) + int(fields[12])
    return out


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU of the whole machine, in clock ticks."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already in user
    return total - idle, total


class CpuMeter:
    """CPU the server, PostgreSQL (when it is the store), this client and everything else on the machine
    used between start() and stop(). PostgreSQL's is every postgres process's, other sessions' too; a
    backend that exits meanwhile is missed."""

    def __init__(self, server_pid: int, *, postgres: bool) -> None:
        self._pid = server_pid
        self._postgres = postgres
        self._tick = os.sysconf("SC_CLK_TCK")
        self._start = (0, 0, 0, 0)
        self._start_postgres: dict[int, int] = {}

    def _now(self) -> tuple[int, int, int, int]:
        busy, total = _machine_ticks()
        return _cpu_ticks(self._pid), _cpu_ticks(os.getpid()), busy, total

    def _postgres_since_start(self) -> int:
        if not self._postgres:
            return 0
        return sum(ticks - self._start_postgres.get(pid, 0) for pid, ticks in _postgres_ticks().items())

    def start(self) -> None:
        self._start_postgres = _postgres_ticks() if self._postgres else {}
        self._start = self._now()

    def stop(self, reports: int) -> dict[str, float]:
        """CPU per item (report or declaration) in microseconds since start()."""
        end = self._now()
        database = self._postgres_since_start()
        server, client, busy, total = (b - a for a, b in zip(self._start, end, strict=True))
        per_report = 1e6 / self._tick / reports if reports else NAN
        return {
            "server_cpu_us": server * per_report,
            "database_cpu_us": database * per_report if self._postgres else NAN,
            "client_cpu_us": client * per_report,
            # Busy CPU of every other process, as a share of the machine: noise from other work.
            "other_cpu_pct": 100.0 * max(0, busy - server - client - database) / total if total else NAN,
        }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def unary(
    address: str, make: Callable[[], declaration_pb2.Declaration], in_flight: int, seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.RiskScoringServiceStub(channel)
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                request = pb.ScoreDeclarationRequest(declaration=make())
                t = time.perf_counter()
                await stub.ScoreDeclaration(request, timeout=10)
                latencies.append(time.perf_counter() - t)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        elapsed = time.perf_counter() - started
    return {
        "count": len(latencies),
        "decl_per_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
    }


async def batch(
    address: str, make: Callable[[], declaration_pb2.Declaration], size: int, seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    count = 0
    async with grpc.aio.insecure_channel(address, options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
        stub = pb_grpc.RiskScoringServiceStub(channel)
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal count
            while time.perf_counter() < deadline:
                request = pb.ScoreDeclarationsRequest(declarations=[make() for _ in range(size)])
                t = time.perf_counter()
                await stub.ScoreDeclarations(request, timeout=60)
                latencies.append(time.perf_counter() - t)
                count += size

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(2)))  # two in flight keeps the server busy while one is built
        elapsed = time.perf_counter() - started
    return {
        "count": count,
        "decl_per_s": count / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
    }


async def stream(address: str, make: Callable[[], declaration_pb2.Declaration], seconds: float) -> dict[str, float]:
    count = 0
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.RiskScoringServiceStub(channel)
        deadline = time.perf_counter() + seconds

        async def requests() -> AsyncIterator[pb.StreamScoreDeclarationsRequest]:
            while time.perf_counter() < deadline:
                for _ in range(200):
                    yield pb.StreamScoreDeclarationsRequest(declaration=make())
                await asyncio.sleep(0)

        started = time.perf_counter()
        async for response in stub.StreamScoreDeclarations(requests(), timeout=seconds + 60):
            if response.WhichOneof("result") != "assessment":
                raise RuntimeError(f"stream error: {response.error.message}")
            count += 1
        elapsed = time.perf_counter() - started
    return {"count": count, "decl_per_s": count / elapsed, "p50_ms": float("nan"), "p99_ms": float("nan")}


@contextmanager
def fresh_database(kind: str, folder: Path, admin_url: str) -> Iterator[str]:
    """An empty database: a SQLite file in `folder`, or a new PostgreSQL database dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'risk.db'}"
        return
    from risk_service.store.db import temporary_postgres_database

    with temporary_postgres_database(admin_url, "risk_bench") as url:
        yield url


def start_server(
    data_dir: Path, database_url: str | None, *, permits: bool = True, demo: bool = True
) -> tuple[subprocess.Popen[str], str]:
    """Starts `risk serve` (with --demo: trains a demo champion first); returns it and its address."""
    env = {
        **os.environ,
        "RISK_DATA_DIR": str(data_dir),
        "RISK_SERVER__PORT": "0",
        "RISK_LOG_LEVEL": "WARNING",
        "RISK_SERVER__RELOAD_INTERVAL_S": "3600",
        "RISK_PERMITS__ENABLED": "true" if permits else "false",
    }
    if database_url:
        env["RISK_DATABASE_URL"] = database_url
    risk = str(Path(sys.executable).parent / "risk")
    command = [risk, "serve", "--demo"] if demo else [risk, "serve"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("risk service ready on "):
            return proc, line.split(" on ", 1)[1].strip()
    raise RuntimeError(f"server exited with {proc.wait()}")


def stop_server(proc: subprocess.Popen[str], timeout: float = 30) -> None:
    """Asks the server to stop (SIGTERM), and kills it when it has not stopped within `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


MODES: dict[str, Callable[[str, Callable[[], declaration_pb2.Declaration], float], Any]] = {
    "unary_8": lambda address, make, seconds: unary(address, make, 8, seconds),
    "unary_32": lambda address, make, seconds: unary(address, make, 32, seconds),
    "batch_500": lambda address, make, seconds: batch(address, make, 500, seconds),
    "stream": lambda address, make, seconds: stream(address, make, seconds),
}


def measure(
    address: str, make: Callable[[], declaration_pb2.Declaration], mode: str, seconds: float, meter: CpuMeter
) -> dict[str, float]:
    """One run of one mode against one server, with the CPU it cost."""
    meter.start()
    result: dict[str, float] = asyncio.run(MODES[mode](address, make, seconds))
    result.update(meter.stop(int(result["count"])))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--database-url", help="store URL (default: SQLite in a temp folder)")
    parser.add_argument("--data-dir", type=Path, help="reuse a data folder (keeps the trained demo model)")
    parser.add_argument(
        "--permits",
        choices=("none", "checked", "unchecked", "compare"),
        default="none",
        help="none: declarations as generated; checked/unchecked: declarations cite registered permits "
        "(--permit-mix), checks on/off; compare: both servers side by side, runs alternating between them",
    )
    parser.add_argument(
        "--warmup-runs",
        type=int,
        default=1,
        help="compare: runs measured but not counted first (fresh stores grow, and autovacuum learns them)",
    )
    parser.add_argument(
        "--permit-mix",
        choices=PERMIT_MIXES,
        default="history",
        help="with --permits checked, unchecked or compare: which goods items cite permits, the history's "
        "(declarations that cite any) or every item",
    )
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated subset of {','.join(MODES)}")
    args = parser.parse_args()
    modes = args.modes.split(",")
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"unknown modes {', '.join(unknown)}; choose from {', '.join(MODES)}")
    if args.permits == "compare":
        compare(args, modes)
        return

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="risk-bench-"))
    proc, address = start_server(data_dir, args.database_url, permits=args.permits != "unchecked")
    results: dict[str, list[dict[str, float]]] = {}
    # Server CPU per declaration is what a shared machine's noise disturbs least: compare it across runs.
    meter = CpuMeter(proc.pid, postgres=_is_postgres(args.database_url))
    try:
        for run in range(args.runs):
            make = DeclarationFactory(
                run=f"{os.getpid()}-{run}",
                seed=run,
                cite_permits=args.permits != "none",
                permit_mix=args.permit_mix,
            )
            if args.permits == "checked":
                seconds = register_permits(address, make.permits)
                print(f"registered {len(make.permits)} permits in {seconds:.1f} s", flush=True)
            for mode in modes:
                results.setdefault(mode, []).append(measure(address, make, mode, args.seconds, meter))
    finally:
        stop_server(proc)

    summary = {mode: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for mode, runs in results.items()}
    print(
        f"store: {args.database_url or 'sqlite'}   permits: {args.permits}   "
        f"runs: {args.runs} x {args.seconds:.0f}s   (median of runs)"
    )
    print(f"{'mode':<10} {'decl/s':>10} {'p50 ms':>8} {'p99 ms':>8}", end="")
    print(f" {'server us/decl':>15} {'db us/decl':>11} {'other %':>8}")
    for mode, s in summary.items():
        print(
            f"{mode:<10} {s['decl_per_s']:>10.0f} {s['p50_ms']:>8.2f} {s['p99_ms']:>8.2f} "
            f"{s['server_cpu_us']:>15.0f} {s['database_cpu_us']:>11.0f} {s['other_cpu_pct']:>8.1f}"
        )
    print(json.dumps(summary))


def _is_postgres(url: str | None) -> bool:
    return bool(url and url.startswith("postgresql"))


def settle_database(url: str) -> None:
    """Writes out what the permit feed left behind (WAL, statistics) before measuring, on both stores alike:
    the bound is about checking permits, not about the background work of registering ten thousand."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("VACUUM (ANALYZE)")
                conn.exec_driver_sql("CHECKPOINT")
            else:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
    finally:
        engine.dispose()


def compare(args: argparse.Namespace, modes: list[str]) -> None:
    """The permit issue's 15 % bound, measured as paired runs: a server with permit checks and one without,
    each on its own fresh store, both up at once; every run of a mode goes to both, one after the other
    (which goes first alternates), so drifting load on a shared machine hits each pair alike. Permits
    are registered before each run, and both stores settled (settle_database) before measuring. The first
    --warmup-runs runs are shown but not counted: on fresh stores they measure tables growing from
    nothing (PostgreSQL analyses them again and again meanwhile), not a service in use. Reports,
    per mode, the median over pairs of checked/unchecked throughput and server CPU per declaration."""
    folder = Path(args.data_dir or tempfile.mkdtemp(prefix="risk-bench-"))
    servers: dict[str, tuple[subprocess.Popen[str], str]] = {}
    urls: dict[str, str] = {}
    pairs: dict[str, list[tuple[dict[str, float], dict[str, float]]]] = {m: [] for m in modes}
    kind = "postgresql" if _is_postgres(args.database_url) else "sqlite"
    with contextlib.ExitStack() as stack:
        for name in ("checked", "unchecked"):
            (folder / name).mkdir(parents=True, exist_ok=True)
            url = urls[name] = stack.enter_context(fresh_database(kind, folder / name, args.database_url or ""))
            servers[name] = start_server(folder / name, url, permits=name == "checked")
            stack.callback(stop_server, servers[name][0])
        meters = {name: CpuMeter(proc.pid, postgres=kind == "postgresql") for name, (proc, _) in servers.items()}
        for run in range(args.warmup_runs + args.runs):
            makes = {
                name: DeclarationFactory(
                    run=f"{os.getpid()}-{name}-{run}", seed=run, cite_permits=True, permit_mix=args.permit_mix
                )
                for name in servers
            }
            seconds = register_permits(servers["checked"][1], makes["checked"].permits)
            warmup = run < args.warmup_runs
            print(
                f"run {run + 1}{' (warm-up, not counted)' if warmup else ''}: "
                f"registered {len(makes['checked'].permits)} permits in {seconds:.1f} s",
                flush=True,
            )
            for url in urls.values():
                settle_database(url)
            for mode in modes:
                order = ["checked", "unchecked"] if run % 2 == 0 else ["unchecked", "checked"]
                got = {n: measure(servers[n][1], makes[n], mode, args.seconds, meters[n]) for n in order}
                if not warmup:
                    pairs[mode].append((got["checked"], got["unchecked"]))
                c, u = got["checked"], got["unchecked"]
                print(
                    f"  {mode:<10} decl/s {c['decl_per_s']:>7.0f} / {u['decl_per_s']:<7.0f}"
                    f" server us/decl {c['server_cpu_us']:>6.0f} / {u['server_cpu_us']:<6.0f}"
                    + (
                        f" db us/decl {c['database_cpu_us']:>5.0f} / {u['database_cpu_us']:<5.0f}"
                        if kind == "postgresql"
                        else ""
                    )
                    + f" other % {c['other_cpu_pct']:>4.1f} / {u['other_cpu_pct']:<4.1f}",
                    flush=True,
                )
    print(
        f"store: {kind}   permit mix: {args.permit_mix}   checked vs unchecked, {args.runs} pairs x "
        f"{args.seconds:.0f}s per mode "
        "(median over pairs; a throughput ratio of 0.85 or more keeps the 15 % bound)"
    )
    print(f"{'mode':<10} {'decl/s checked':>15} {'unchecked':>10} {'ratio':>7} {'server CPU ratio':>17}")
    summary = {}
    for mode, runs in pairs.items():
        rate = statistics.median(c["decl_per_s"] / u["decl_per_s"] for c, u in runs)
        cpu = statistics.median(c["server_cpu_us"] / u["server_cpu_us"] for c, u in runs)
        checked = statistics.median(c["decl_per_s"] for c, _ in runs)
        unchecked = statistics.median(u["decl_per_s"] for _, u in runs)
        summary[mode] = {
            "checked_decl_per_s": checked,
            "unchecked_decl_per_s": unchecked,
            "throughput_ratio": rate,
            "server_cpu_ratio": cpu,
        }
        print(f"{mode:<10} {checked:>15.0f} {unchecked:>10.0f} {rate:>7.3f} {cpu:>17.3f}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
