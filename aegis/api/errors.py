"""The one error shape of the API, for every error on /api/:

    {"error": {"code": "VALIDATION_ERROR", "message": "...", "details": {...}, "requestId": "..."}}

drf-standardized-errors catches every exception raised in a view (including unhandled ones,
which become a 500 with no stack trace); this module only formats its result and adds the
exceptions the domain raises. Errors raised outside DRF (unknown URL, body too large, a crash
in middleware) go through `json_error_response` from aegis.api.middleware and the handlers
in aegis.urls, so the shape is the same everywhere.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.http import JsonResponse
from djangorestframework_camel_case.util import camelize_re, underscore_to_camel
from drf_standardized_errors.formatter import ExceptionFormatter, flatten_errors
from drf_standardized_errors.handler import ExceptionHandler
from rest_framework import exceptions, status
from rest_framework.settings import api_settings

from aegis.api.exceptions import ApiError, ErrorCode
from aegis.domain import DomainError

# DRF's built-in exception codes -> ours.
_DRF_CODES = {
    "parse_error": ErrorCode.MALFORMED_REQUEST,
    "not_authenticated": ErrorCode.NOT_AUTHENTICATED,
    "authentication_failed": ErrorCode.AUTHENTICATION_FAILED,
    "permission_denied": ErrorCode.PERMISSION_DENIED,
    "not_found": ErrorCode.NOT_FOUND,
    "method_not_allowed": ErrorCode.METHOD_NOT_ALLOWED,
    "not_acceptable": ErrorCode.NOT_ACCEPTABLE,
    "unsupported_media_type": ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    "throttled": ErrorCode.RATE_LIMITED,
    "error": ErrorCode.INTERNAL_ERROR,
    "token_not_valid": ErrorCode.TOKEN_INVALID,
}


def _camel(path: str | None) -> str:
    if not path:
        return api_settings.NON_FIELD_ERRORS_KEY
    return camelize_re.sub(underscore_to_camel, path)


def _camel_keys(details: dict) -> dict:
    return {_camel(key): value for key, value in details.items()}


def error_body(code: str, message: str, details: dict | None, request_id: str) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}, "requestId": request_id}}


def json_error_response(request, status_code: int, code: str, message: str, details: dict | None = None):
    """The error shape for responses produced outside DRF (middleware, URL handlers)."""
    response = JsonResponse(error_body(code, message, details, getattr(request, "request_id", "")), status=status_code)
    return response


class ApiExceptionHandler(ExceptionHandler):
    def convert_known_exceptions(self, exc: Exception) -> Exception:
        if isinstance(exc, DjangoValidationError):
            # Services validate with Django's ValidationError; show it like a serializer's.
            if hasattr(exc, "error_dict"):
                return exceptions.ValidationError(exc.message_dict)
            return exceptions.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: exc.messages})
        if isinstance(exc, DomainError):
            return ApiError(exc.status, exc.code, exc.message, _camel_keys(exc.details))
        if isinstance(exc, IntegrityError):
            # A constraint the services did not pre-check (e.g. a race on a unique name).
            return ApiError(status.HTTP_409_CONFLICT, ErrorCode.CONFLICT,
                            "The request conflicts with the current state of the resource.")
        return super().convert_known_exceptions(exc)


class ApiErrorFormatter(ExceptionFormatter):
    def run(self) -> dict:
        exc = self.exc
        request = self.context.get("request")
        request_id = getattr(request, "request_id", "") if request is not None else ""
        if isinstance(exc, exceptions.ValidationError):
            details: dict[str, list[str]] = {}
            for error in flatten_errors(exc.detail):
                details.setdefault(_camel(error.attr), []).append(error.detail)
            return error_body(ErrorCode.VALIDATION_ERROR, "The request is not valid; see details.", details, request_id)
        code = self._code(exc)
        details = getattr(exc, "details", None) or {}
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            details = {**details, "retryAfterSeconds": int(exc.wait)}
        message = str(exc.detail) if not isinstance(exc.detail, (list, dict)) else "Request failed."
        return error_body(code, message, details, request_id)

    @staticmethod
    def _code(exc: exceptions.APIException) -> str:
        codes = exc.get_codes()
        raw = codes if isinstance(codes, str) else "error"
        return _DRF_CODES.get(raw, raw.upper())
