"""Request body parsing: camelCase JSON in, snake_case Python out, and nothing PostgreSQL cannot store."""

from __future__ import annotations

from djangorestframework_camel_case.parser import CamelCaseJSONParser as _CamelCaseJSONParser
from rest_framework.exceptions import ParseError

NUL = "\x00"


def contains_nul(value) -> bool:
    """Whether a NUL character occurs in any string of parsed JSON, keys included."""
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(contains_nul(key) or contains_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(contains_nul(item) for item in value)
    return False


class CamelCaseJSONParser(_CamelCaseJSONParser):
    """djangorestframework-camel-case's parser, refusing NUL characters (`\\u0000`) anywhere in the body.

    PostgreSQL stores NUL in neither text nor jsonb: DRF's CharField refuses it, but a JSON field
    (a skill's configuration, settings, capabilities...) passed it on to the database, a 500.
    Refused here once for every endpoint: 400 MALFORMED_REQUEST.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if contains_nul(data):
            raise ParseError("JSON parse error - NUL characters (\\u0000) are not allowed.")
        return data
