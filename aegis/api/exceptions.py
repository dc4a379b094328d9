"""Error codes and the domain's API exceptions. Kept apart from aegis.api.errors (the
handler), which imports DRF's views and so cannot be imported by authentication classes."""

from rest_framework import exceptions, status


class ErrorCode:
    """Stable codes clients can branch on (listed in docs/api-contract.md)."""

    VALIDATION_ERROR = "VALIDATION_ERROR"
    MALFORMED_REQUEST = "MALFORMED_REQUEST"
    NOT_AUTHENTICATED = "NOT_AUTHENTICATED"
    AUTHENTICATION_FAILED = "AUTHENTICATION_FAILED"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    TOKEN_INVALID = "TOKEN_INVALID"
    TOKEN_REUSED = "TOKEN_REUSED"
    ACCOUNT_LOCKED = "ACCOUNT_LOCKED"
    MFA_REQUIRED = "MFA_REQUIRED"
    MFA_INVALID = "MFA_INVALID"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    TENANT_SUSPENDED = "TENANT_SUSPENDED"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
    CONFLICT = "CONFLICT"
    TENANT_NOT_READY = "TENANT_NOT_READY"
    LAST_ADMIN = "LAST_ADMIN"
    INVALID_STATE = "INVALID_STATE"
    PRECONDITION_FAILED = "PRECONDITION_FAILED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    UNPROCESSABLE = "UNPROCESSABLE"
    RATE_LIMITED = "RATE_LIMITED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    TENANT_DECOMMISSIONED = "TENANT_DECOMMISSIONED"
    LIMIT_REACHED = "LIMIT_REACHED"


class ApiError(exceptions.APIException):
    """A domain error with its own code: `raise ApiError(409, ErrorCode.LAST_ADMIN, "...")`."""

    def __init__(self, status_code: int, code: str, message: str, details: dict | None = None):
        super().__init__(detail=message, code=code.lower())
        self.status_code = status_code
        self.details = details or {}


def conflict(message: str, code: str = ErrorCode.CONFLICT, **details) -> ApiError:
    return ApiError(status.HTTP_409_CONFLICT, code, message, details)


def invalid(field: str, message: str) -> exceptions.ValidationError:
    return exceptions.ValidationError({field: [message]})


