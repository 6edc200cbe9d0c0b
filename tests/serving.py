"""A real scoring server on a free port, run in a background thread for tests and benchmarks."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from protos.risk.v1 import risk_scoring_service_pb2_grpc as pb_grpc
from risk_service.bootstrap import serve
from risk_service.settings import ModelSettings, PermitSettings, PolicySettings, ServerSettings, Settings


def make_settings(
    data_dir: Path,
    *,
    database_url: str | None = None,
    tracking_uri: str | None = None,
    model_name: str = "declaration-risk",
    rules_path: Path | None = None,
    reload_interval_s: float = 0.2,
    policy: dict[str, Any] | None = None,
    server: dict[str, Any] | None = None,
    permits: dict[str, Any] | None = None,
) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        rules_path=rules_path,
        sqlite_synchronous="NORMAL",
        model=ModelSettings(tracking_uri=tracking_uri or f"sqlite:///{data_dir / 'mlflow.db'}", name=model_name),
        server=ServerSettings(port=0, reload_interval_s=reload_interval_s, grace_s=1.0, **(server or {})),
        policy=PolicySettings(**{"random_control_rate": 0.0, **(policy or {})}),
        permits=PermitSettings(**(permits or {})),
    )


class ServerThread:
    """Runs bootstrap.serve() in its own event loop; `address` is set once the server is ready."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="risk-server", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await serve(self.settings, stop=self._stop, on_ready=self._on_ready)

        try:
            asyncio.run(main())
        except BaseException as err:
            self._error = err
            self._ready.set()

    def _on_ready(self, port: int) -> None:
        self.port = port
        self._ready.set()

    def start(self, timeout: float = 120.0) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the server did not become ready")
        if self._error is not None:
            raise RuntimeError("the server failed to start") from self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.address)

    def stub(self, channel: grpc.Channel) -> pb_grpc.RiskScoringServiceStub:
        return pb_grpc.RiskScoringServiceStub(channel)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    """Polls until `predicate()` holds; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)
