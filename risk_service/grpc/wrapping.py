"""Server interceptors that wrap each method's handler once: handlers are fixed once a server starts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc


class MethodWrappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Wraps a method's handler on its first call and reuses the wrapper; `wrap` may return it unchanged."""

    def __init__(self) -> None:
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            handler = await continuation(handler_call_details)
            if handler is None:
                return None
            wrapped = self._wrapped[method] = self.wrap(handler, method)
        return wrapped
