"""Errors the business rules raise. Services know nothing of HTTP; the API's exception
handler (aegis.api.errors) turns each into its status and stable error code."""

from __future__ import annotations


class DomainError(Exception):
    status = 409
    code = "CONFLICT"

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.message = message
        self.details = details


class Conflict(DomainError):
    """The request clashes with existing data (a duplicate, a live invite, ...)."""


class InvalidState(DomainError):
    """The object is not in a state that allows this transition."""

    code = "INVALID_STATE"


class LimitReached(DomainError):
    """A plan or resource limit would be exceeded."""

    code = "LIMIT_REACHED"


class StaleWrite(DomainError):
    """The caller edited an older revision than the stored one (If-Match mismatch)."""

    status = 412
    code = "PRECONDITION_FAILED"
