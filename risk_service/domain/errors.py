"""Domain errors; the gRPC edge maps each to a status code in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid field, named by its path in the request (`declaration.items[2].hs_code`)."""

    field: str
    description: str


class DomainError(Exception):
    """Base of errors a caller can act on; `reason` is a stable UPPER_SNAKE code."""

    reason = "DOMAIN_ERROR"

    def __init__(self, message: str, metadata: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.metadata = metadata or {}  # goes into google.rpc.ErrorInfo.metadata


class InvalidArgument(DomainError):
    reason = "INVALID_ARGUMENT"

    def __init__(self, violations: list[FieldViolation], message: str = "the request is invalid") -> None:
        shown = "; ".join(f"{v.field}: {v.description}"[:120] for v in violations[:5])
        more = f" (and {len(violations) - 5} more)" if len(violations) > 5 else ""
        super().__init__(f"{message}: {shown}{more}")
        self.violations = violations


class AlreadyExists(DomainError):
    reason = "DECLARATION_VERSION_CONFLICT"


class PermitExists(AlreadyExists):
    """A submission for a permit id that is already registered; amend it instead."""

    reason = "PERMIT_EXISTS"


class RequestIdConflict(AlreadyExists):
    """A request id reused for a different change; request ids make retries idempotent, so they must not be recycled."""

    reason = "REQUEST_ID_CONFLICT"


class NotFound(DomainError):
    reason = "NOT_FOUND"


class FailedPrecondition(DomainError):
    reason = "FAILED_PRECONDITION"


class PermissionDenied(DomainError):
    """The caller is known but may not do this (another agency's permit, say)."""

    reason = "PERMISSION_DENIED"


class Unavailable(DomainError):
    """A dependency (the store) cannot take the work now; the caller may retry."""

    reason = "UNAVAILABLE"


class Aborted(DomainError):
    """The request was made on a state that has changed since (a stale version); reload and retry."""

    reason = "ABORTED"
