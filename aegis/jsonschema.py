"""Validation of JSONB columns against JSON Schemas kept in the code.

Each JSONB field names its schema by dotted path, so migrations record a short string and
the schema itself stays in one place (the owning app's `json_schemas.py`).
"""

import re
from functools import cache, lru_cache

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible
from django.utils.module_loading import import_string
from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import SchemaError
from jsonschema.exceptions import ValidationError as SchemaViolation  # not Django's ValidationError
from jsonschema.protocols import Validator


@lru_cache(maxsize=1024)
def _python_regex(pattern: str) -> re.Pattern:
    """A JSON Schema `pattern` (ECMA-262) for Python's `re`: a bare `$` becomes `\\Z`. In ECMA-262
    `$` matches only at the very end; in Python also before a final newline, so `^T[A-Z0-9]+$`
    would accept "T123\\n". Escaped dollars and dollars inside a character class stay literal."""
    converted, in_class, index = [], False, 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            converted.append(pattern[index:index + 2])
            index += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        converted.append(r"\Z" if char == "$" and not in_class else char)
        index += 1
    return re.compile("".join(converted))


def _pattern(validator, pattern: str, instance, schema):
    if validator.is_type(instance, "string") and not _python_regex(pattern).search(instance):
        yield SchemaViolation(f"{instance!r} does not match {pattern!r}")


# Draft 2020-12 with the `pattern` keyword as JSON Schema defines it (ECMA-262 end of input).
SchemaValidator = validators.extend(Draft202012Validator, {"pattern": _pattern})


@cache
def _compiled(schema_path: str) -> Validator:
    schema = import_string(schema_path)
    SchemaValidator.check_schema(schema)
    return SchemaValidator(schema, format_checker=FormatChecker())


def schema_errors(validator: Validator, value) -> list[str]:
    """Every violation as '<json path>: <rule broken>', sorted by where it occurs."""
    messages = []
    for error in sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path))):
        location = "/".join(str(part) for part in error.absolute_path) or "(root)"
        message = error.message
        if error.validator == "pattern" and isinstance(error.schema, dict) and error.schema.get("description"):
            # A regular expression tells a person little: say what the schema describes instead.
            message = f"{error.instance!r} is not {error.schema['description']}"
        messages.append(f"{location}: {message} (rule: {error.validator})")
    return messages


def validate_against(schema: dict, value) -> None:
    """Validate `value` against an ad-hoc schema (e.g. a skill's own settings schema)."""
    errors = schema_errors(SchemaValidator(schema, format_checker=FormatChecker()), value)
    if errors:
        raise ValidationError(errors, code="json_schema")


@deconstructible
class JSONSchemaValidator:
    """Django validator: `JSONField(validators=[JSONSchemaValidator("apps.x.json_schemas.NAME")])`."""

    def __init__(self, schema_path: str):
        self.schema_path = schema_path

    def __call__(self, value) -> None:
        errors = schema_errors(_compiled(self.schema_path), value)
        if errors:
            raise ValidationError(errors, code="json_schema")

    def __eq__(self, other):
        return isinstance(other, JSONSchemaValidator) and other.schema_path == self.schema_path


def validate_is_json_schema(value) -> None:
    """The value must itself be a valid JSON Schema describing an object (a skill's settings)."""
    try:
        SchemaValidator.check_schema(value)
    except SchemaError as exc:
        raise ValidationError(
            f"not a valid JSON Schema: {exc.message} (rule: JSON Schema 2020-12 metaschema, {exc.validator})",
            code="json_schema",
        ) from exc
    if not isinstance(value, dict) or value.get("type", "object") != "object":
        raise ValidationError(
            'a skill\'s configuration schema must describe an object (rule: "type": "object")', code="json_schema"
        )
