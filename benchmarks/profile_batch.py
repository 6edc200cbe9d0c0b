"""In-process: what permit checks add to a batch of declarations, end to end below gRPC.

    .venv/bin/python benchmarks/profile_batch.py [--database-url URL] [--size 500] [--rounds 12]
        [--in-flight N] [--yappi] [--permit-mix history|every-item]

Builds the service twice in this process, as `risk serve --demo` wires it (demo champion, SQLite
unless --database-url names a PostgreSQL server), once with permit checks and once without, and
feeds both the scoring benchmark's declarations with cited permits (bench_scoring's mix). Batches go
to the two services in turn, so the machine's noise hits both alike; each batch is timed as the
CPU of the whole process (event loop, screening pool and writer thread) from the messages to the
stored assessments. Prints means and medians per declaration and the checked/unchecked ratio.
--in-flight N sends each batch's declarations as single calls, N at a time, as unary clients do.
--yappi (pip install yappi) profiles both services over all threads and lists the functions whose
CPU per declaration differs most between them.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_scoring import PERMIT_MIXES, DeclarationFactory, fresh_database  # noqa: E402

from risk_service.bootstrap import App, build_app, ensure_demo_model  # noqa: E402
from risk_service.grpc.convert import declaration_from_pb  # noqa: E402
from risk_service.grpc.permit_convert import permit_from_pb  # noqa: E402
from risk_service.settings import Settings  # noqa: E402


def _settings(data_dir: Path, url: str, *, permits: bool) -> Settings:
    return Settings(data_dir=data_dir, database_url=url, permits={"enabled": permits})  # type: ignore[arg-type]


async def _register(app: App, factory: DeclarationFactory) -> None:
    from risk_service.domain.permits.service import ImportRow

    assert app.permits is not None
    rows = [ImportRow(n, f"REQ-{p.permit_id}", "profile", permit_from_pb(p)) for n, p in enumerate(factory.permits, 1)]
    report = await app.permits.import_rows(rows, strict=True)
    if report.errors:
        raise RuntimeError(f"{len(report.errors)} permits refused, e.g. {report.errors[0][1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--permit-mix", choices=PERMIT_MIXES, default="history", help="as bench_scoring's")
    parser.add_argument("--database-url", help="a PostgreSQL server URL (fresh databases are made on it)")
    parser.add_argument("--size", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--in-flight", type=int, default=0, help="score one by one, this many at a time")
    parser.add_argument("--yappi", action="store_true")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="risk-profile-batch-"))
    kind = "postgresql" if args.database_url else "sqlite"
    with ExitStack() as stack:
        urls = {}
        for mode in ("checked", "unchecked"):
            (folder / mode).mkdir()
            urls[mode] = stack.enter_context(fresh_database(kind, folder / mode, args.database_url or ""))
        models = folder / "models"
        ensure_demo_model(_settings(models, urls["checked"], permits=True))
        apps = {}
        for mode, url in urls.items():
            settings = _settings(models, url, permits=mode == "checked")
            apps[mode] = build_app(settings)
            stack.callback(apps[mode].close)
        factories = {
            mode: DeclarationFactory(run=f"{os.getpid()}{mode}", seed=0, cite_permits=True, permit_mix=args.permit_mix)
            for mode in apps
        }
        asyncio.run(_run(apps, factories, args))


async def _run(apps: dict[str, App], factories: dict[str, DeclarationFactory], args: argparse.Namespace) -> None:
    await _register(apps["checked"], factories["checked"])
    cpu: dict[str, list[float]] = {mode: [] for mode in apps}
    wall: dict[str, list[float]] = {mode: [] for mode in apps}
    yappi: Any = None
    profiles: dict[str, list[Any]] = {}
    if args.yappi:
        yappi = importlib.import_module("yappi")  # a profiling aid only: not among the project's dependencies
        yappi.set_clock_type("cpu")
    for round_ in range(args.rounds + 1):
        for mode, app in apps.items():
            messages = [factories[mode]() for _ in range(args.size)]
            if yappi is not None and round_:
                yappi.clear_stats()
                yappi.start()
            started, clock = time.process_time(), time.perf_counter()
            # From the message on, as the server does: the collector's work falls where it falls.
            if args.in_flight:
                await _unary(app, messages, args.in_flight)
            else:
                await app.service.score_batch([declaration_from_pb(m) for m in messages])
            spent, waited = time.process_time() - started, time.perf_counter() - clock
            if yappi is not None and round_:
                yappi.stop()
                profiles.setdefault(mode, []).append(yappi.get_func_stats())
            if round_:  # the first round warms caches and the model
                cpu[mode].append(spent / args.size * 1e6)
                wall[mode].append(waited / args.size * 1e6)
    print(f"{args.rounds} rounds of {args.size}; process CPU per declaration (this process only, not the database's):")
    for name, summary in (("mean", statistics.fmean), ("median", statistics.median)):
        checked, unchecked = (summary(cpu[m]) for m in ("checked", "unchecked"))
        print(f"  {name:<7} checked {checked:.0f} us   unchecked {unchecked:.0f} us   ratio {checked / unchecked:.3f}")
    checked, unchecked = (statistics.median(wall[m]) for m in ("checked", "unchecked"))
    print(f"  wall time per declaration, medians: checked {checked:.0f} us   unchecked {unchecked:.0f} us")
    rounds = zip(cpu["checked"], cpu["unchecked"], strict=True)
    print(f"  per round, checked/unchecked us: {', '.join(f'{c:.0f}/{u:.0f}' for c, u in rounds)}")
    if yappi is not None:
        _compare(profiles, args.size * args.rounds)


async def _unary(app: App, messages: list[Any], in_flight: int) -> None:
    """The messages as unary calls, `in_flight` at a time (the writer groups what arrives together)."""
    queue = iter(messages)

    async def caller() -> None:
        for message in queue:
            await app.service.score_one(declaration_from_pb(message))

    await asyncio.gather(*(caller() for _ in range(in_flight)))


def _compare(profiles: dict[str, list[Any]], declarations: int) -> None:
    """Per function: own and total CPU per declaration in each mode, largest differences first."""
    totals: dict[str, dict[str, list[float]]] = {}
    for mode, stats in profiles.items():
        for batch in stats:
            for f in batch:
                key = f"{f.module.rsplit('/', 1)[-1]}:{f.lineno} {f.name}"
                entry = totals.setdefault(key, {}).setdefault(mode, [0.0, 0.0, 0])
                entry[0] += f.tsub
                entry[1] += f.ttot
                entry[2] += f.ncall
    scale = 1e6 / declarations

    def delta(k: str, i: int) -> float:
        m = totals[k]
        return (m.get("checked", [0.0, 0.0, 0])[i] - m.get("unchecked", [0.0, 0.0, 0])[i]) * scale

    for title, i in (("own CPU", 0), ("total CPU", 1)):
        print(f"largest differences in {title}, us per declaration (checked - unchecked):")
        for k in sorted(totals, key=lambda k: -abs(delta(k, i)))[:40]:
            m = totals[k]
            c, u = m.get("checked", [0.0, 0.0, 0]), m.get("unchecked", [0.0, 0.0, 0])
            own = f"{delta(k, i):8.1f}  {c[i] * scale:8.1f} {u[i] * scale:8.1f}"
            print(f"  {own}  calls {c[2]:>8} {u[2]:>8}  {k[:100]}")


if __name__ == "__main__":
    main()
