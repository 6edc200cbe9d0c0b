"""Who is calling and what they may do: API tokens in gRPC metadata, a role per RPC.

A caller sends `authorization: Bearer <token>`; the server keeps only the SHA-256 of each token
(settings.auth.tokens), so a leaked configuration does not leak credentials. Every RPC of the
risk.v1 services names the roles it admits (METHOD_ROLES); a method not listed is refused (fail
closed), while health checking and reflection stay open for load balancers and tooling. No
credential, or one not configured: UNAUTHENTICATED; a valid one without the role: PERMISSION_DENIED.
Handlers read the caller with `current_principal()` (an agency may touch its own permits only).
"""

from __future__ import annotations

import contextvars
import hashlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from protos.risk.v1 import permit_service_pb2, review_service_pb2
from protos.risk.v1 import risk_scoring_service_pb2 as scoring_pb2
from risk_service.grpc.wrapping import MethodWrappingInterceptor
from risk_service.settings import ApiToken, Role

_CLEARANCE = frozenset({Role.CLEARANCE})
_AGENCY = frozenset({Role.AGENCY})
_READERS = frozenset({Role.AGENCY, Role.OFFICER, Role.ANALYST})

_OFFICER = frozenset({Role.OFFICER})
_REVIEW_READERS = frozenset({Role.OFFICER, Role.ANALYST})

_PERMIT_READS = frozenset({"GetPermit", "ListPermits", "GetPermitHistory", "ReportPermitUsage"})
_REVIEW_READS = frozenset({"ListCases", "GetCase", "GetRuleStats"})


def _methods(service: Any) -> list[str]:
    return [f"/{service.full_name}/{m.name}" for m in service.methods]


# From the descriptors, so a new RPC is mapped the moment it is added (and a test checks each one).
METHOD_ROLES: Mapping[str, frozenset[Role]] = {
    **dict.fromkeys(_methods(scoring_pb2.DESCRIPTOR.services_by_name["RiskScoringService"]), _CLEARANCE),
    **{
        method: _READERS if method.rsplit("/", 1)[1] in _PERMIT_READS else _AGENCY
        for method in _methods(permit_service_pb2.DESCRIPTOR.services_by_name["PermitService"])
    },
    # Officers act on cases; analysts read them and the rule statistics.
    **{
        method: _REVIEW_READERS if method.rsplit("/", 1)[1] in _REVIEW_READS else _OFFICER
        for method in _methods(review_service_pb2.DESCRIPTOR.services_by_name["ReviewService"])
    },
}
# Open to any caller: a load balancer's health probe and grpcurl's reflection carry no token.
PUBLIC_SERVICES = frozenset(
    {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection"}
)


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    roles: frozenset[Role]
    agency: str | None = None

    def may_change(self, agency: str) -> bool:
        """An agency changes its own permits only."""
        return self.agency == agency

    def may_read(self, agency: str) -> bool:
        """Officers and analysts read every agency's permits; an agency its own."""
        return self.agency == agency or bool(self.roles & {Role.OFFICER, Role.ANALYST})


_NAMED_ACTOR = 256  # characters of a requested actor kept next to the credential's name
_PRINCIPAL: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("risk_principal", default=None)


def current_principal() -> Principal | None:
    """The authenticated caller of the RPC being handled; None when the server asks no credential."""
    return _PRINCIPAL.get()


def actor_of(requested: str) -> str:
    """Who made a change: the authenticated caller (with whom it names, if anyone), else what the request says."""
    principal = current_principal()
    if principal is None:
        return requested
    if not requested or requested == principal.name:
        return principal.name
    # Short enough that the credential's name never makes a valid request's actor too long.
    return f"{principal.name} ({requested[:_NAMED_ACTOR]})"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class AuthInterceptor(MethodWrappingInterceptor):
    """Authenticates each call from its metadata and checks the method's roles before the handler runs."""

    def __init__(self, tokens: Iterable[ApiToken]) -> None:
        super().__init__()
        self._by_digest = {t.sha256: Principal(t.name, frozenset(t.roles), t.agency) for t in tokens}

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        if method.lstrip("/").split("/")[0] in PUBLIC_SERVICES:
            return handler
        return _wrap(handler, self._check(method))

    def _check(self, method: str) -> Callable[[grpc.aio.ServicerContext], Awaitable[Principal]]:
        admitted = METHOD_ROLES.get(method, frozenset())

        async def check(context: grpc.aio.ServicerContext) -> Principal:
            principal = self._authenticate(context.invocation_metadata() or ())
            if principal is None:
                await context.abort(
                    grpc.StatusCode.UNAUTHENTICATED, "send a valid API token as 'authorization: Bearer <token>'"
                )
            assert principal is not None  # abort raises
            if not principal.roles & admitted:
                needed = ", ".join(sorted(admitted)) or "none (not callable)"
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED, f"{principal.name} may not call {method}; it needs: {needed}"
                )
            return principal

        return check

    def _authenticate(self, metadata: Iterable[tuple[str, str | bytes]]) -> Principal | None:
        for key, value in metadata:
            if key != "authorization" or not isinstance(value, str):
                continue
            scheme, _, token = value.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return None
            # Looked up by digest: the lookup's timing tells nothing about any configured token.
            return self._by_digest.get(token_digest(token.strip()))
        return None


def _wrap(
    handler: grpc.RpcMethodHandler, check: Callable[[grpc.aio.ServicerContext], Awaitable[Principal]]
) -> grpc.RpcMethodHandler:
    """The same handler, run with the caller checked and set for current_principal()."""

    def unary(behaviour: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def checked(request: Any, context: grpc.aio.ServicerContext) -> Any:
            token = _PRINCIPAL.set(await check(context))
            try:
                return await behaviour(request, context)
            finally:
                _PRINCIPAL.reset(token)

        return checked

    def streaming(behaviour: Callable[..., Any]) -> Callable[..., Any]:
        if not inspect.isasyncgenfunction(behaviour):
            return unary(behaviour)

        async def checked(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            _PRINCIPAL.set(await check(context))  # each call runs in a task of its own: the value ends with it
            async for response in behaviour(request, context):
                yield response

        return checked

    kwargs = {"request_deserializer": handler.request_deserializer, "response_serializer": handler.response_serializer}
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary), **kwargs)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary), **kwargs)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(streaming(handler.unary_stream), **kwargs)
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(streaming(handler.stream_stream), **kwargs)
    return handler
