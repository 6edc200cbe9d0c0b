"""Scoring benchmark: a load generator in its own process against a real `risk serve` with storage on.

    .venv/bin/python benchmarks/bench_scoring.py [--runs 3] [--seconds 10] [--database-url URL]

Starts the server as a subprocess on a fresh data folder (demo champion model, SQLite unless
--database-url is given), then measures unary calls at 8 and 32 in flight, batches of 500 and a
bidirectional stream. Prints declarations per second and p50/p99 latency per mode: the median of
--runs runs. Not a test: the machine is shared and noisy, so compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from protos.risk.v1 import declaration_pb2  # noqa: E402
from protos.risk.v1 import risk_scoring_service_pb2 as pb  # noqa: E402
from protos.risk.v1 import risk_scoring_service_pb2_grpc as pb_grpc  # noqa: E402

HS = ["8471300000", "8517120000", "6403990000", "3004900000", "8708299000", "6110200000", "9403600000"]
ORIGINS = ["CN", "VN", "US", "DE", "JP", "TH"]


class DeclarationFactory:
    """Realistic-looking declarations with 1-5 items; ids never repeat so every call is fresh work."""

    def __init__(self, run: str, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self._run = run
        self._n = 0
        self._now = datetime.now(UTC)

    def __call__(self) -> declaration_pb2.Declaration:
        rng = self._rng
        self._n += 1
        origin = rng.choice(ORIGINS)
        d = declaration_pb2.Declaration(
            declaration_id=f"BENCH-{self._run}-{self._n:09d}",
            version=1,
            type=declaration_pb2.DECLARATION_TYPE_IMPORT,
            customs_office=rng.choice(["020", "030", "040"]),
            declarant=declaration_pb2.Party(id=f"BRK-{rng.randint(1, 50)}"),
            importer=declaration_pb2.Party(id=f"IMP-{rng.randint(1, 5000)}", name="Importer"),
            exporter=declaration_pb2.Party(id=f"EXP-{rng.randint(1, 2000)}"),
            aeo_status=rng.choice(
                [declaration_pb2.AEO_STATUS_NONE] * 3
                + [declaration_pb2.AEO_STATUS_CUSTOMS_SIMPLIFICATIONS, declaration_pb2.AEO_STATUS_FULL]
            ),
            export_country=origin,
            origin_country=origin,
            destination_country="KR",
            transport_mode=declaration_pb2.TRANSPORT_MODE_SEA,
            transport_document_number=f"MAEU{rng.randint(10**8, 10**9 - 1)}",
            container_numbers=["MSCU1234566"],
            incoterm="FOB",
            invoice_currency="USD",
            invoice_amount=rng.uniform(1e3, 1e5),
        )
        d.lodgement_time.FromDatetime(self._now)
        for i in range(rng.randint(1, 5)):
            mass = rng.uniform(10, 5000)
            d.items.add(
                item_number=i + 1,
                hs_code=rng.choice(HS),
                description="Assorted goods for retail sale",
                quantity=rng.randint(1, 1000),
                quantity_unit="NAR",
                net_mass_kg=mass,
                gross_mass_kg=mass * 1.08,
                customs_value=mass * rng.uniform(2e3, 6e4),
                origin_country=origin,
            )
        return d


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
    return {"decl_per_s": count / elapsed, "p50_ms": float("nan"), "p99_ms": float("nan")}


def start_server(data_dir: Path, database_url: str | None) -> tuple[subprocess.Popen[str], str]:
    env = {
        **os.environ,
        "RISK_DATA_DIR": str(data_dir),
        "RISK_SERVER__PORT": "0",
        "RISK_LOG_LEVEL": "WARNING",
        "RISK_SERVER__RELOAD_INTERVAL_S": "3600",
    }
    if database_url:
        env["RISK_DATABASE_URL"] = database_url
    risk = str(Path(sys.executable).parent / "risk")
    proc = subprocess.Popen([risk, "serve", "--demo"], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("risk service ready on "):
            return proc, line.split(" on ", 1)[1].strip()
    raise RuntimeError(f"server exited with {proc.wait()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--database-url", help="store URL (default: SQLite in a temp folder)")
    parser.add_argument("--data-dir", type=Path, help="reuse a data folder (keeps the trained demo model)")
    args = parser.parse_args()

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="risk-bench-"))
    proc, address = start_server(data_dir, args.database_url)
    results: dict[str, list[dict[str, float]]] = {}
    try:
        for run in range(args.runs):
            make = DeclarationFactory(run=f"{os.getpid()}-{run}", seed=run)
            modes = {
                "unary_8": unary(address, make, 8, args.seconds),
                "unary_32": unary(address, make, 32, args.seconds),
                "batch_500": batch(address, make, 500, args.seconds),
                "stream": stream(address, make, args.seconds),
            }
            for mode, measurement in modes.items():
                results.setdefault(mode, []).append(asyncio.run(measurement))
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    summary = {mode: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for mode, runs in results.items()}
    print(f"store: {args.database_url or 'sqlite'}   runs: {args.runs} x {args.seconds:.0f}s   (median of runs)")
    print(f"{'mode':<10} {'decl/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    for mode, s in summary.items():
        print(f"{mode:<10} {s['decl_per_s']:>10.0f} {s['p50_ms']:>8.2f} {s['p99_ms']:>8.2f}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
