"""Request validation shared by every API area: strict bodies and query parameters, errors in the
contract's shape (400 VALIDATION_ERROR, via aegis.api.exceptions)."""

from __future__ import annotations

from collections.abc import Mapping

from rest_framework import serializers


def validated_body(serializer_class: type[serializers.Serializer], data, **context) -> dict:
    """A request body's validated data (nulls kept: a null may mean "inherit" or "remove")."""
    serializer = serializer_class(data=data, context=context)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def validated_query(serializer_class: type[serializers.Serializer], params) -> dict:
    """Validated query parameters; absent or empty ones are left out."""
    serializer = serializer_class(data=params)
    serializer.is_valid(raise_exception=True)
    return {key: value for key, value in serializer.validated_data.items() if value not in (None, "", [])}


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know: a misspelt or read-only field is an error, not a no-op."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(set(data) - writable)
            if unknown:
                raise serializers.ValidationError({name: ["Unknown or read-only field."] for name in unknown})
        return super().to_internal_value(data)
