"""Assembles the grpc.aio server: scoring and permit services, health checking, reflection and the error edge."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from protos.risk.v1 import permit_service_pb2, permit_service_pb2_grpc
from protos.risk.v1 import risk_scoring_service_pb2 as pb
from protos.risk.v1 import risk_scoring_service_pb2_grpc as pb_grpc
from risk_service.domain.cargo.service import CargoScoringService
from risk_service.domain.permits.service import PermitService
from risk_service.domain.service import ScoringService
from risk_service.grpc.errors import ErrorInterceptor
from risk_service.grpc.permit_servicer import MAX_IMPORT_ROWS, PermitServicer
from risk_service.grpc.servicer import RiskScoringServicer
from risk_service.settings import ServerSettings

log = logging.getLogger(__name__)

SCORING_SERVICE = pb.DESCRIPTOR.services_by_name["RiskScoringService"].full_name
PERMIT_SERVICE = permit_service_pb2.DESCRIPTOR.services_by_name["PermitService"].full_name
# A health entry of its own says whether a model scores or the service runs on rules alone.
MODEL_HEALTH = f"{SCORING_SERVICE}/model"
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: HealthServicer
    services: tuple[str, ...] = (SCORING_SERVICE,)  # registered, each with a health entry

    async def set_ready(self, ready: bool) -> None:
        status = _SERVING if ready else _NOT_SERVING
        await self.health.set("", status)
        for service in self.services:
            await self.health.set(service, status)

    async def set_model_available(self, available: bool) -> None:
        await self.health.set(MODEL_HEALTH, _SERVING if available else _NOT_SERVING)

    async def stop(self, grace: float) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


async def start_server(
    service: ScoringService,
    settings: ServerSettings,
    permits: PermitService | None = None,
    *,
    cargo: CargoScoringService | None = None,
    max_import_rows: int = MAX_IMPORT_ROWS,
) -> RunningServer:
    """Starts listening; health says NOT_SERVING until the caller marks the server ready.

    With `permits`, PermitService is served too (ImportPermits streams bounded by max_import_rows,
    normally PermitSettings.max_import_rows) and CancelDeclaration works; without, CancelDeclaration
    answers FAILED_PRECONDITION and PermitService is not registered (UNIMPLEMENTED). Without
    `cargo`, the cargo RPCs answer FAILED_PRECONDITION.
    """
    max_bytes = settings.max_message_mb * 1024 * 1024
    server = grpc.aio.server(
        interceptors=[ErrorInterceptor()],
        options=[
            ("grpc.max_receive_message_length", max_bytes),
            ("grpc.max_send_message_length", max_bytes),
            ("grpc.so_reuseport", 0),
        ],
    )
    pb_grpc.add_RiskScoringServiceServicer_to_server(
        RiskScoringServicer(service, stream_chunk_size=min(500, settings.max_batch_size), permits=permits, cargo=cargo),
        server,
    )
    services: tuple[str, ...] = (SCORING_SERVICE,)
    if permits is not None:
        permit_service_pb2_grpc.add_PermitServiceServicer_to_server(
            PermitServicer(permits, max_import_rows=max_import_rows), server
        )
        services += (PERMIT_SERVICE,)
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (*services, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    port = server.add_insecure_port(f"{settings.host}:{settings.port}")
    if port == 0:
        raise OSError(f"cannot bind the gRPC server to {settings.host}:{settings.port}")
    await server.start()
    running = RunningServer(server, port, health, services)
    await running.set_ready(False)
    log.info("gRPC server listening on %s:%d", settings.host, port)
    return running
