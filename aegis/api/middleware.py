"""Request ids and the body-size limit, for every request (the limit only on /api/)."""

import re
import uuid

import structlog
from django.conf import settings

from aegis.api.errors import ErrorCode, json_error_response

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def is_api_request(request) -> bool:
    return request.path.startswith("/api/")


class RequestIdMiddleware:
    """Take `X-Request-ID` from the caller (if it is sane) or make one; expose it on the
    request, in every log line of the request (structlog context) and in the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        supplied = request.headers.get("X-Request-ID", "")
        request.request_id = supplied if _VALID_REQUEST_ID.match(supplied) else uuid.uuid4().hex
        # django-structlog's RequestMiddleware trusts this header (TRUST_UPSTREAM_REQUEST_ID).
        request.META["HTTP_X_REQUEST_ID"] = request.request_id
        structlog.contextvars.bind_contextvars(request_id=request.request_id)
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response


class ApiBodySizeLimitMiddleware:
    """Refuse API bodies over API_MAX_BODY_BYTES with 413 before anything reads them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if is_api_request(request):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > settings.API_MAX_BODY_BYTES:
                return json_error_response(
                    request, 413, ErrorCode.PAYLOAD_TOO_LARGE,
                    f"The request body is larger than {settings.API_MAX_BODY_BYTES} bytes.",
                    {"maxBytes": settings.API_MAX_BODY_BYTES},
                )
        return self.get_response(request)
