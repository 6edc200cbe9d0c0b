"""The one error edge: domain errors become gRPC statuses with google.rpc details; the rest is INTERNAL."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from risk_service.domain.errors import (
    Aborted,
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from risk_service.grpc.wrapping import MethodWrappingInterceptor

log = logging.getLogger(__name__)
ERROR_DOMAIN = "risk.customs.v1"

_CODES: list[tuple[type[DomainError], int]] = [
    (InvalidArgument, code_pb2.INVALID_ARGUMENT),
    (AlreadyExists, code_pb2.ALREADY_EXISTS),
    (NotFound, code_pb2.NOT_FOUND),
    (FailedPrecondition, code_pb2.FAILED_PRECONDITION),
    (PermissionDenied, code_pb2.PERMISSION_DENIED),
    (Unavailable, code_pb2.UNAVAILABLE),
    (Aborted, code_pb2.ABORTED),
]


def status_from_error(err: DomainError) -> status_pb2.Status:
    """google.rpc.Status with ErrorInfo, plus BadRequest field violations for invalid input."""
    code = next((c for cls, c in _CODES if isinstance(err, cls)), code_pb2.FAILED_PRECONDITION)
    details = [_pack(error_details_pb2.ErrorInfo(reason=err.reason, domain=ERROR_DOMAIN, metadata=err.metadata))]
    if isinstance(err, InvalidArgument):
        details.append(_pack(_bad_request(err.violations)))
    return status_pb2.Status(code=code, message=err.message, details=details)


# Trailers over the client's metadata limit (8 KiB by default) turn the answer into
# RESOURCE_EXHAUSTED, so the violations listed are capped and the rest counted.
_MAX_VIOLATION_BYTES = 4096


def _bad_request(violations: list[FieldViolation]) -> error_details_pb2.BadRequest:
    out = error_details_pb2.BadRequest()
    size = 0
    for shown, v in enumerate(violations):
        size += len(v.field.encode()) + len(v.description.encode()) + 8
        if size > _MAX_VIOLATION_BYTES:
            root = v.field.split(".", 1)[0].split("[", 1)[0]  # "declaration" or "declarations"
            out.field_violations.add(field=root, description=f"and {len(violations) - shown} more violations")
            break
        out.field_violations.add(field=v.field, description=v.description)
    return out


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


class ErrorInterceptor(MethodWrappingInterceptor):
    """Maps DomainError to its status; any other exception is logged and answered INTERNAL, generically.

    Requests are decoded inside the guard, so bytes that are not a valid message (bad UTF-8, a
    corrupt wire format) are INVALID_ARGUMENT instead of gRPC's own UNKNOWN with the decoder's text.
    """

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        return self._guard(handler, method)

    @staticmethod
    def _guard(handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        decode = handler.request_deserializer or (lambda raw: raw)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _guard_unary(handler.unary_unary, method, decode),
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                _guard_stream(handler.stream_stream, method, lambda requests: _decode_each(requests, decode)),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _guard_stream(handler.unary_stream, method, decode),
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                _guard_unary(handler.stream_unary, method, lambda requests: _decode_each(requests, decode)),
                response_serializer=handler.response_serializer,
            )
        return handler


class _Undecodable(InvalidArgument):
    def __init__(self) -> None:
        super().__init__([FieldViolation("", "the request bytes are not a valid message of this RPC")])


def _decoded(decode: Callable[[bytes], Any], raw: bytes) -> Any:
    try:
        return decode(raw)
    except DecodeError as err:
        raise _Undecodable() from err


async def _decode_each(requests: AsyncIterator[bytes], decode: Callable[[bytes], Any]) -> AsyncIterator[Any]:
    async for raw in requests:
        yield _decoded(decode, raw)


async def _abort(context: grpc.aio.ServicerContext, err: Exception, method: str) -> None:
    if isinstance(err, DomainError):
        await context.abort_with_status(rpc_status.to_status(status_from_error(err)))
    log.error("unexpected error in %s", method, exc_info=err)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error; the incident was logged")


def _guard_unary(
    behaviour: Callable[..., Awaitable[Any]], method: str, decode: Callable[[Any], Any]
) -> Callable[..., Awaitable[Any]]:
    async def guarded(raw: Any, context: grpc.aio.ServicerContext) -> Any:  # bytes, or a stream of them
        try:
            return await behaviour(_decoded(decode, raw), context)
        except grpc.aio.AbortError:
            raise
        except Exception as err:
            await _abort(context, err, method)

    return guarded


def _guard_stream(behaviour: Callable[..., Any], method: str, decode: Callable[[Any], Any]) -> Callable[..., Any]:
    if not inspect.isasyncgenfunction(behaviour):
        # A streaming handler may also be a coroutine that writes with context.write (health Watch).
        return _guard_unary(behaviour, method, decode)

    async def guarded(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            async for response in behaviour(decode(request), context):
                yield response
        except grpc.aio.AbortError:
            raise
        except Exception as err:
            await _abort(context, err, method)

    return guarded
