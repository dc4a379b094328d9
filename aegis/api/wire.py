"""Building response items without serializers, for the hot list read paths (the agent list, the
audit feeds): the same output as the serializers that document those responses, at a fraction
of their cost. tests/api/test_read_paths.py holds the two equal, byte for byte.

- `WireDict`: an item already in wire form (camelCase keys, camelized values), which the renderer
  passes through without walking it (aegis.api.renderers);
- `camelize_as_configured`: what the renderer does to a value (for the parts of an item that hold
  stored JSON, e.g. an agent's assistedUser or an audit entry's changes);
- `datetime_formatter` / `datetime_text`: a datetime as serializers.DateTimeField shows it
  (REST_FRAMEWORK["DATETIME_FORMAT"], the current time zone).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

from aegis.api.renderers import WireDict, camelize_as_configured

__all__ = ["WireDict", "camelize_as_configured", "datetime_formatter", "datetime_text"]

_DATETIME_FIELD = serializers.DateTimeField(read_only=True)


def datetime_formatter() -> Callable[[datetime | None], str | None]:
    """serializers.DateTimeField().to_representation, with the format and the current time zone
    looked up once (for one response's items, not for each value) and its common case (an aware
    datetime from the database, a strftime format) done directly: the field's own steps, in order."""
    output_format = api_settings.DATETIME_FORMAT
    if not (settings.USE_TZ and output_format and output_format.lower() != ISO_8601):
        return _DATETIME_FIELD.to_representation
    zone = timezone.get_current_timezone()
    field_text = _DATETIME_FIELD.to_representation

    def text(value: datetime | None) -> str | None:
        if type(value) is datetime and value.utcoffset() is not None:
            return value.astimezone(zone).strftime(output_format)
        return field_text(value)

    return text


def datetime_text(value: datetime | None) -> str | None:
    """A datetime as serializers.DateTimeField shows it (see datetime_formatter, for many values)."""
    return datetime_formatter()(value)
