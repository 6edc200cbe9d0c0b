"""Assembles the grpc.aio server: scoring and permit services, health checking, reflection and the error edge."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from protos.risk.v1 import permit_service_pb2, permit_service_pb2_grpc, review_service_pb2, review_service_pb2_grpc
from protos.risk.v1 import risk_scoring_service_pb2 as pb
from protos.risk.v1 import risk_scoring_service_pb2_grpc as pb_grpc
from risk_service.domain.cargo.service import CargoScoringService
from risk_service.domain.permits.service import PermitService
from risk_service.domain.review.service import ReviewService
from risk_service.domain.service import ScoringService
from risk_service.grpc.auth import AuthInterceptor
from risk_service.grpc.errors import ErrorInterceptor
from risk_service.grpc.permit_servicer import MAX_IMPORT_ROWS, PermitServicer
from risk_service.grpc.review_servicer import ReviewServicer
from risk_service.grpc.servicer import RiskScoringServicer
from risk_service.settings import AuthSettings, ServerSettings, TlsSettings

log = logging.getLogger(__name__)

SCORING_SERVICE = pb.DESCRIPTOR.services_by_name["RiskScoringService"].full_name
PERMIT_SERVICE = permit_service_pb2.DESCRIPTOR.services_by_name["PermitService"].full_name
REVIEW_SERVICE = review_service_pb2.DESCRIPTOR.services_by_name["ReviewService"].full_name
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
    review: ReviewService | None = None,
    max_import_rows: int = MAX_IMPORT_ROWS,
    auth: AuthSettings | None = None,
    tls: TlsSettings | None = None,
) -> RunningServer:
    """Starts listening; health says NOT_SERVING until the caller marks the server ready.

    With `permits`, PermitService is served too (ImportPermits streams bounded by max_import_rows,
    normally PermitSettings.max_import_rows) and CancelDeclaration works; without, CancelDeclaration
    answers FAILED_PRECONDITION and PermitService is not registered (UNIMPLEMENTED). Without
    `cargo`, the cargo RPCs answer FAILED_PRECONDITION; without `review`, ReviewService is not
    registered. With `auth` tokens every call but health and reflection needs a credential with the
    RPC's role (grpc.auth); with `tls` certificates the port speaks TLS only, and with a client CA
    every client must present a certificate it signed.
    """
    max_bytes = settings.max_message_mb * 1024 * 1024
    interceptors: list[grpc.aio.ServerInterceptor] = [ErrorInterceptor()]
    if auth is not None and auth.tokens:
        interceptors.insert(0, AuthInterceptor(auth.tokens))  # outermost: nothing runs for a stranger
    server = grpc.aio.server(
        interceptors=interceptors,
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
    if review is not None:
        review_service_pb2_grpc.add_ReviewServiceServicer_to_server(ReviewServicer(review), server)
        services += (REVIEW_SERVICE,)
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (*services, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    address = f"{settings.host}:{settings.port}"
    port = server.add_secure_port(address, credentials) if (credentials := _credentials(tls)) else None
    port = port if port is not None else server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind the gRPC server to {settings.host}:{settings.port}")
    await server.start()
    running = RunningServer(server, port, health, services)
    await running.set_ready(False)
    log.info("gRPC server listening on %s:%d%s", settings.host, port, " (TLS)" if credentials else "")
    return running


def _credentials(tls: TlsSettings | None) -> grpc.ServerCredentials | None:
    if tls is None or tls.cert_file is None or tls.key_file is None:
        return None
    client_ca = tls.client_ca_file.read_bytes() if tls.client_ca_file is not None else None
    return grpc.ssl_server_credentials(
        [(tls.key_file.read_bytes(), tls.cert_file.read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )
