"""Client channels of the `risk` command: TLS when a CA is configured, the API token on every call."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grpc

from risk_service.settings import ClientSettings, PlaintextToken, is_loopback


class _BearerToken(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc]
):
    """Adds `authorization: Bearer <token>` to each call's metadata (works over plaintext on loopback too)."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _with_token(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = [*(details.metadata or ()), self._header]
        return _CallDetails(details.method, details.timeout, metadata, details.credentials, details.wait_for_ready)

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._with_token(details), request)

    def intercept_stream_unary(self, continuation: Callable[..., Any], details: Any, requests: Any) -> Any:
        return continuation(self._with_token(details), requests)

    def intercept_stream_stream(self, continuation: Callable[..., Any], details: Any, requests: Any) -> Any:
        return continuation(self._with_token(details), requests)


class _CallDetails(grpc.ClientCallDetails):  # type: ignore[misc]
    def __init__(
        self, method: str, timeout: float | None, metadata: Any, credentials: Any, wait_for_ready: bool | None
    ) -> None:
        self.method = method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = credentials
        self.wait_for_ready = wait_for_ready


def open_channel(address: str, client: ClientSettings, options: Sequence[tuple[str, Any]] = ()) -> grpc.Channel:
    """A channel to `address`: TLS (mutual when a client certificate is set) when client.ca_file is set.

    Refuses (PlaintextToken) to send a token without TLS to anything but this machine.
    """
    host = address.rsplit(":", 1)[0] if ":" in address else address
    if client.token is not None and client.ca_file is None and not is_loopback(host):
        raise PlaintextToken(
            f"the API token would travel unencrypted to {address}; set RISK_CLIENT__CA_FILE to use TLS"
        )
    if client.ca_file is not None:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=client.ca_file.read_bytes(),
            private_key=client.key_file.read_bytes() if client.key_file else None,
            certificate_chain=client.cert_file.read_bytes() if client.cert_file else None,
        )
        channel = grpc.secure_channel(address, credentials, options=list(options))
    else:
        channel = grpc.insecure_channel(address, options=list(options))
    if client.token is not None:
        return grpc.intercept_channel(channel, _BearerToken(client.token.get_secret_value()))
    return channel
