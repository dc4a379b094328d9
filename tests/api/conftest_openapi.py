"""Every response in the API tests conforms to the OpenAPI document.

`openapi_conformance` (autouse for tests/api, imported by tests/api/conftest.py) wraps the
Django test client, and so DRF's APIClient, which builds on it: each response to an
`/api/v1/` request is checked against the document drf-spectacular generates from the code
(the same one committed as docs/openapi.yaml):

- the path must match one of the document's path templates and the method one of its
  operations (an unknown path or method must answer with an error in the error shape);
- the status must be one the operation documents: an undocumented status fails the test;
- the body must validate against that response's schema (JSON Schema, with OpenAPI 3.0's
  `nullable` and boolean `exclusiveMinimum/Maximum` translated). Objects are closed: a property
  the document does not declare fails too, so the document (and the TypeScript types made from
  it) cannot silently miss fields. Date-times must be ISO-8601 with a UTC offset;
- a response documented without a body must have none.

`OPTIONS` requests are not checked (DRF's metadata answers, not part of the contract). A test
that deliberately provokes an undocumented answer (a forced 500, say) asks for the
`openapi_unchecked` fixture. The document is generated once per test session.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

import pytest
from django.test.client import Client
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

API_PREFIX = "/api/v1/"
UNCHECKED_METHODS = {"OPTIONS"}
DOCUMENT_URI = "urn:aegis:openapi"
# Objects without `additionalProperties` accept no undeclared property (see the module docstring).
CLOSED_OBJECTS = True


@dataclass(frozen=True)
class GeneratedDocument:
    schema: dict  # as drf-spectacular returns it (what `manage.py spectacular` renders)
    document: dict  # the same as plain JSON data
    problems: list[str]  # the warnings and errors drf-spectacular emitted

    def yaml(self) -> bytes:
        """Byte for byte what `manage.py spectacular --file docs/openapi.yaml` writes."""
        from drf_spectacular.renderers import OpenApiYamlRenderer

        return OpenApiYamlRenderer().render(self.schema, renderer_context={})


def generate_document(urlconf: str | None = None) -> GeneratedDocument:
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.plumbing import _load_enum_name_overrides
    from drf_spectacular.renderers import OpenApiJsonRenderer

    _load_enum_name_overrides.cache_clear()  # so a bad ENUM_NAME_OVERRIDES entry warns here too
    with GENERATOR_STATS.silence():
        schema = SchemaGenerator(urlconf=urlconf).get_schema(request=None, public=True)
        problems = [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
    document = json.loads(OpenApiJsonRenderer().render(schema, renderer_context={}))
    return GeneratedDocument(schema=schema, document=document, problems=problems)


@functools.cache
def session_document(urlconf: str | None = None) -> GeneratedDocument:
    """`generate_document`, once per test session (per xdist worker) and URLconf."""
    return generate_document(urlconf)


# --- OpenAPI 3.0 schema objects -> JSON Schema 2020-12 ---------------------------------------------


def to_json_schema(node, *, closed: bool = CLOSED_OBJECTS, _in_all_of: bool = False):
    """Translate the schema objects of an OpenAPI 3.0 document (or any part of it) to JSON Schema."""
    if isinstance(node, list):
        return [to_json_schema(item, closed=closed) for item in node]
    if not isinstance(node, dict):
        return node
    result = {}
    for key, value in node.items():
        if key == "allOf" and isinstance(value, list):
            result[key] = [to_json_schema(item, closed=closed, _in_all_of=True) for item in value]
        elif key in ("example", "examples", "discriminator", "xml", "externalDocs"):
            result[key] = value  # no schemas inside that need translating
        else:
            result[key] = to_json_schema(value, closed=closed)

    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        exclusive = result.pop(bound) if isinstance(result.get(bound), bool) else None
        if exclusive and limit in result:
            result[bound] = result.pop(limit)

    is_object_schema = result.get("type") == "object" and isinstance(result.get("properties"), dict)
    if (closed and is_object_schema and not _in_all_of and "additionalProperties" not in result
            and not any(key in result for key in ("allOf", "oneOf", "anyOf"))):
        result["unevaluatedProperties"] = False

    nullable = result.pop("nullable", None) if isinstance(result.get("nullable"), bool) else None
    if nullable:
        if "type" in result and "allOf" not in result and "oneOf" not in result and "anyOf" not in result:
            result["type"] = [result["type"], "null"] if isinstance(result["type"], str) else [*result["type"], "null"]
            if "enum" in result and None not in result["enum"]:
                result["enum"] = [*result["enum"], None]
        else:
            annotations = {k: result.pop(k) for k in ("description", "title", "readOnly", "writeOnly") if k in result}
            result = {"anyOf": [result, {"type": "null"}], **annotations}
    return result


def _utc_datetime(value) -> bool:
    if not isinstance(value, str):
        return True
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return False
    return parsed.tzinfo is not None and parsed.utcoffset() == timedelta(0)


FORMAT_CHECKER = FormatChecker()
FORMAT_CHECKER.checks("date-time")(_utc_datetime)


# --- Matching requests to operations ------------------------------------------------------------------


class ConformanceError(AssertionError):
    pass


class OpenApiResponseValidator:
    def __init__(self, document: dict):
        self.document = document
        resource = Resource.from_contents(to_json_schema(document), default_specification=DRAFT202012)
        self.registry = Registry().with_resource(DOCUMENT_URI, resource)
        self.routes = self._routes(document.get("paths", {}))
        self._validators: dict[str, Draft202012Validator] = {}

    @staticmethod
    def _routes(paths: dict) -> list[tuple[re.Pattern, str]]:
        routes = []
        for template in paths:
            pattern = "".join(
                "[^/]+" if part.startswith("{") else re.escape(part) for part in re.split(r"(\{[^}/]+\})", template)
            )
            literal_length = len(re.sub(r"\{[^}/]+\}", "", template))
            routes.append((template.count("{"), -literal_length, template, re.compile(f"^{pattern}$")))
        # Literal segments win over parameters: /skills/categories before /skills/{id}.
        return [(regex, template) for _, _, template, regex in sorted(routes)]

    def match(self, path: str) -> str | None:
        return next((template for regex, template in self.routes if regex.match(path)), None)

    def _validator(self, pointer: str) -> Draft202012Validator:
        if pointer not in self._validators:
            self._validators[pointer] = Draft202012Validator(
                {"$ref": f"{DOCUMENT_URI}#{pointer}"}, registry=self.registry, format_checker=FORMAT_CHECKER)
        return self._validators[pointer]

    def error_shape_problems(self, body) -> list[str]:
        return self._problems("/components/schemas/ErrorResponse", body)

    def problems_for_schema(self, schema: dict, value) -> list[str]:
        """What is wrong with `value` by `schema`, a schema object of the document (its refs local to it)."""

        def absolute(node):
            if isinstance(node, dict):
                return {k: f"{DOCUMENT_URI}{v}" if k == "$ref" and str(v).startswith("#") else absolute(v)
                        for k, v in node.items()}
            return [absolute(item) for item in node] if isinstance(node, list) else node

        validator = Draft202012Validator(absolute(to_json_schema(schema)), registry=self.registry,
                                         format_checker=FORMAT_CHECKER)
        return self._listing(validator, value)

    def _problems(self, pointer: str, body) -> list[str]:
        return self._listing(self._validator(pointer), body)

    @staticmethod
    def _listing(validator: Draft202012Validator, body) -> list[str]:
        problems = []
        for error in sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path))):
            where = "/".join(str(part) for part in error.absolute_path) or "(root)"
            problems.append(f"{where}: {error.message}")
        return problems

    def check(self, method: str, path: str, status: int, content_type: str, content: bytes) -> None:
        """Raise ConformanceError unless the response conforms; returns quietly for paths not in the API."""
        method = method.upper()
        if not path.startswith(API_PREFIX) or method in UNCHECKED_METHODS:
            return
        template = self.match(path)
        operation = self.document["paths"][template].get(method.lower()) if template else None
        if method == "HEAD" and template:
            operation = self.document["paths"][template].get("get")
        where = f"{method} {path}" + (f" ({template})" if template and template != path else "")

        if operation is None:
            # No such endpoint or method: only the error shape is acceptable.
            if status < 400:
                raise ConformanceError(f"{where} answered {status}, but the OpenAPI document has no such operation. "
                                       "Run `make openapi` after adding an endpoint.")
            self._check_body(where, status, content_type, content, "/components/schemas/ErrorResponse")
            return

        responses = operation.get("responses", {})
        key = next((k for k in (str(status), f"{str(status)[0]}XX", "default") if k in responses), None)
        if key is None:
            raise ConformanceError(
                f"{where} answered {status}, which its OpenAPI operation does not document "
                f"(documented: {', '.join(sorted(responses))}). Declare it (e.g. `**errors({status})` from "
                f"aegis.api.schema in extend_schema responses), or fix the view. Body: {content[:300]!r}")
        documented = responses[key]
        media = documented.get("content") or {}
        if method == "HEAD":
            return
        if not media:
            if content:
                raise ConformanceError(f"{where} answered {status} with a body, but its OpenAPI response has none: "
                                       f"{content[:300]!r}")
            return
        mime = content_type.split(";", 1)[0].strip().lower()
        if mime not in media:
            raise ConformanceError(f"{where} answered {status} as {mime or 'no content type'!s}; the OpenAPI "
                                   f"document gives {', '.join(media)}.")
        if not (mime == "application/json" or mime.endswith("+json")) or "schema" not in media[mime]:
            return
        pointer = "/".join(
            ["", "paths", _escape(template), method.lower() if method != "HEAD" else "get", "responses", _escape(key),
             "content", _escape(mime), "schema"])
        self._check_body(where, status, content_type, content, pointer)

    def _check_body(self, where: str, status: int, content_type: str, content: bytes, pointer: str) -> None:
        try:
            body = json.loads(content)
        except ValueError as exc:
            raise ConformanceError(f"{where} answered {status} with a body that is not JSON "
                                   f"({content_type}): {content[:300]!r}") from exc
        problems = self._problems(pointer, body)
        if problems:
            listing = "\n  ".join(problems[:20])
            raise ConformanceError(
                f"{where} answered {status} with a body that does not conform to the OpenAPI document "
                f"(schema {pointer}):\n  {listing}\nBody: {json.dumps(body)[:1000]}")

    def check_response(self, response) -> None:
        environ = response.request
        content = b"" if getattr(response, "streaming", False) else response.content
        self.check(environ["REQUEST_METHOD"], environ["PATH_INFO"], response.status_code,
                   response.get("Content-Type", ""), content)


def _escape(part: str) -> str:
    """A JSON pointer token, percent-encoded for use in a URI fragment."""
    return quote(part.replace("~", "~0").replace("/", "~1"), safe="~")


@functools.cache
def session_validator(urlconf: str | None = None) -> OpenApiResponseValidator:
    return OpenApiResponseValidator(session_document(urlconf).document)


# --- Fixtures --------------------------------------------------------------------------------------------


@pytest.fixture
def openapi_unchecked():
    """Ask for this fixture to switch the conformance check off for one test (say why in the test)."""


@pytest.fixture(autouse=True)
def openapi_conformance(request, monkeypatch) -> Iterator[None]:
    if "openapi_unchecked" in request.fixturenames:
        yield
        return
    original = Client.request

    def checked_request(self, **kwargs):
        response = original(self, **kwargs)
        try:
            session_validator().check_response(response)
        except ConformanceError as exc:
            pytest.fail(str(exc), pytrace=False)
        return response

    monkeypatch.setattr(Client, "request", checked_request)
    yield
