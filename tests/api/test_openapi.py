"""The OpenAPI document: committed and current, valid, complete, served offline; the contract's
generated tables are current; and the response conformance check itself works (on a small API
of its own, tests/api/openapi_sample.py)."""

from __future__ import annotations

import ast
import difflib
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from drf_spectacular.validation import validate_schema

from aegis.api import contract
from aegis.api.errors import _DRF_CODES as DRF_CODES
from aegis.api.exceptions import ErrorCode
from aegis.api.schema import ERROR_CODE_VALUES, ERROR_CODES, STATUS_DESCRIPTIONS
from aegis.api.serializers import StrictSerializer
from tests.api.conftest_openapi import (
    ConformanceError,
    OpenApiResponseValidator,
    session_document,
    session_validator,
    to_json_schema,
)
from tests.api.openapi_sample import THING_ID

ROOT = Path(__file__).resolve().parent.parent.parent
COMMITTED = ROOT / "docs" / "openapi.yaml"
SAMPLE = "tests.api.openapi_sample"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def operations(document: dict):
    for path, item in document["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield path, method, item[method]


# --- The document ---------------------------------------------------------------------------------


def test_committed_document_is_current():
    generated = session_document().yaml().decode()
    committed = COMMITTED.read_text() if COMMITTED.exists() else ""
    if generated != committed:
        diff = difflib.unified_diff(committed.splitlines(), generated.splitlines(), "docs/openapi.yaml (committed)",
                                    "generated from the code", lineterm="", n=2)
        pytest.fail("docs/openapi.yaml differs from the document generated from the code: run `make openapi` "
                    "(then `make types`) and commit the result.\n" + "\n".join(list(diff)[:60]), pytrace=False)


def test_document_is_valid_openapi():
    validate_schema(session_document().schema)


def test_generation_emits_no_warnings_or_errors():
    problems = session_document().problems
    assert not problems, "drf-spectacular warnings/errors (see `make openapi`):\n" + "\n".join(problems)


def test_every_operation_has_a_summary_a_success_response_and_an_access_rule():
    document = session_document().document
    incomplete = []
    for path, method, operation in operations(document):
        name = f"{method.upper()} {path}"
        if not operation.get("summary"):
            incomplete.append(f"{name}: no summary (extend_schema(summary=...) or the action's docstring)")
        successes = [status for status in operation["responses"] if status.startswith("2")]
        if not successes:
            incomplete.append(f"{name}: no 2xx response")
        for status in successes:
            if status not in ("202", "204") and not operation["responses"][status].get("content"):
                incomplete.append(f"{name}: {status} has no schema (only 202 and 204 may have no body)")
        if operation.get("x-aegis-access", {}).get("nobody"):
            incomplete.append(f"{name}: the view declares no access rule for it, so nobody may call it")
    assert not incomplete, "\n".join(incomplete)


def test_operation_ids_are_unique():
    seen: dict[str, str] = {}
    for path, method, operation in operations(session_document().document):
        name = f"{method.upper()} {path}"
        assert operation["operationId"] not in seen, (name, seen.get(operation["operationId"]))
        seen[operation["operationId"]] = name


def test_error_responses_use_the_error_shape():
    document = session_document().document
    assert document["components"]["schemas"]["ErrorCodeEnum"]["enum"] == ERROR_CODE_VALUES
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if status >= "400":
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path, status)


def test_examples_conform_to_their_schemas():
    """The examples in the document (the auth flow's, say) are what the API really sends and takes."""
    document = session_document().document
    validator = session_validator()
    wrong = []
    for path, method, operation in operations(document):
        bodies = [("request", operation.get("requestBody", {}).get("content", {}))]
        bodies += [(status, response.get("content", {})) for status, response in operation["responses"].items()]
        for where, content in bodies:
            for media in content.values():
                for name, example in media.get("examples", {}).items():
                    if "value" not in example:
                        continue
                    problems = validator.problems_for_schema(media["schema"], example["value"])
                    wrong += [f"{method.upper()} {path} {where} example {name!r}: {p}" for p in problems]
    assert not wrong, "\n".join(wrong)


# --- Served documentation -------------------------------------------------------------------------------


class _Assets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


@pytest.mark.django_db
def test_schema_endpoint_serves_the_document(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert response.content == session_document().yaml()
    assert client.get("/api/schema/?format=json").json()["openapi"].startswith("3.0")


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_work_offline(client, url, settings):
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    parser = _Assets()
    parser.feed(html)
    assert parser.urls, "no assets found in the page"
    for asset in parser.urls:
        assert asset.startswith(settings.STATIC_URL), f"{url} loads {asset}, not a local static asset"
        assert finders.find(asset.removeprefix(settings.STATIC_URL)), f"{asset} is not a static file"
    other_hosts = re.findall(r"https?://[^\s\"'<>]+", html)
    assert not other_hosts, f"{url} refers to other hosts: {other_hosts}"
    assert "/api/schema/" in html


# --- Error codes -------------------------------------------------------------------------------------------


def test_every_error_code_is_documented_with_a_status():
    assert set(ERROR_CODES) == set(ERROR_CODE_VALUES), (
        "aegis.api.schema.ERROR_CODES must document exactly the codes of ErrorCode: "
        f"missing {set(ERROR_CODE_VALUES) - set(ERROR_CODES)}, unknown {set(ERROR_CODES) - set(ERROR_CODE_VALUES)}")
    for code, doc in ERROR_CODES.items():
        assert doc.status in STATUS_DESCRIPTIONS, code
        assert doc.meaning, code


DRF_EXCEPTION_STATUS = {"ParseError": 400, "AuthenticationFailed": 401, "NotAuthenticated": 401,
                        "PermissionDenied": 403, "NotFound": 404, "MethodNotAllowed": 405, "NotAcceptable": 406,
                        "UnsupportedMediaType": 415, "Throttled": 429}


def _raised_codes() -> list[tuple[str, int, str]]:
    """(where, status, code) for every `ApiError(<status>, ErrorCode.X, ...)`, `conflict(..., code=ErrorCode.X)`,
    `json_error_response(request, <status>, ErrorCode.X, ...)`, DRF exception with a `code=` and DomainError
    subclass in the source."""

    def status_of(node) -> int | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Attribute) and (match := re.match(r"HTTP_(\d{3})_", node.attr)):
            return int(match.group(1))
        return None

    def code_of(node) -> str | None:
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "ErrorCode":
            return getattr(ErrorCode, node.attr, node.attr)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isupper():
            return node.value
        return None

    found = []
    domain_classes: dict[str, tuple[int, str]] = {}
    files = sorted([*ROOT.joinpath("aegis").rglob("*.py"), *ROOT.joinpath("apps").rglob("*.py")])
    for file in files:
        tree = ast.parse(file.read_text(), str(file))
        for node in ast.walk(tree):
            where = f"{file.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                args = node.args
                if name == "ApiError" and len(args) >= 2:
                    status, code = status_of(args[0]), code_of(args[1])
                elif name == "json_error_response" and len(args) >= 3:
                    status, code = status_of(args[1]), code_of(args[2])
                elif name in DRF_EXCEPTION_STATUS:
                    raw = next((k.value.value for k in node.keywords
                                if k.arg == "code" and isinstance(k.value, ast.Constant)), None)
                    status, code = DRF_EXCEPTION_STATUS[name], raw and DRF_CODES.get(raw, raw.upper())
                elif name == "conflict":
                    status = 409
                    code = next((code_of(k.value) for k in node.keywords if k.arg == "code"), ErrorCode.CONFLICT)
                else:
                    continue
                if status is not None and code is not None:
                    found.append((where, status, code))
            elif isinstance(node, ast.ClassDef):
                attrs = {t.id: s.value.value for s in node.body if isinstance(s, ast.Assign)
                         for t in s.targets if isinstance(t, ast.Name) and isinstance(s.value, ast.Constant)}
                bases = [getattr(base, "id", getattr(base, "attr", "")) for base in node.bases]
                if node.name == "DomainError" or any(base in domain_classes for base in bases):
                    inherited = next((domain_classes[b] for b in bases if b in domain_classes), (409, "CONFLICT"))
                    domain_classes[node.name] = (attrs.get("status", inherited[0]), attrs.get("code", inherited[1]))
                    found.append((where, *domain_classes[node.name]))
    return found


def test_error_codes_raised_in_the_source_are_documented_with_their_status():
    raised = _raised_codes()
    assert len(raised) > 5
    wrong = [f"{where}: {code} with {status}, documented as {ERROR_CODES[code].status}"
             for where, status, code in raised if code in ERROR_CODES and ERROR_CODES[code].status != status]
    unknown = [f"{where}: {code} is not an ErrorCode" for where, _, code in raised if code not in ERROR_CODE_VALUES]
    unknown += [f"{where}: {code} is not in aegis.api.schema.ERROR_CODES" for where, _, code in raised
                if code in ERROR_CODE_VALUES and code not in ERROR_CODES]
    assert not unknown + wrong, "\n".join(unknown + wrong)


def serializer_components(urlconf: str | None = None) -> list[tuple[str, type, dict]]:
    """(name, serializer class, schema as documented) of each serializer component of the document."""
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator
    from rest_framework.serializers import BaseSerializer

    generator = SchemaGenerator(urlconf=urlconf)
    with GENERATOR_STATS.silence():
        schemas = generator.get_schema(request=None, public=True)["components"]["schemas"]
    found = []
    for component in generator.registry._components.values():
        cls = component.object if isinstance(component.object, type) else type(component.object)
        if component.type == "schemas" and issubclass(cls, BaseSerializer):
            found.append((component.name, cls, schemas[component.name]))
    return found


def test_strict_request_bodies_are_closed_and_responses_open(settings):
    """A StrictSerializer refuses unknown and read-only fields (400 VALIDATION_ERROR), so its request
    component says `additionalProperties: false`. Request components of other serializers, and every
    response component, leave it out (clients must tolerate new response fields)."""
    assert settings.SPECTACULAR_SETTINGS["COMPONENT_SPLIT_REQUEST"]  # request components are their own
    components = serializer_components()
    strict_requests = {name: schema for name, cls, schema in components
                       if name.endswith("Request") and issubclass(cls, StrictSerializer)}
    assert {"AgentCreateRequest", "PatchedAgentUpdateRequest", "ChannelCreateRequest",
            "ToolboxEntryRequest"} <= set(strict_requests)
    open_ = sorted(name for name, schema in strict_requests.items() if schema.get("additionalProperties") is not False)
    assert not open_, f"request components of strict serializers without additionalProperties: false: {open_}"
    closed = sorted(name for name, cls, schema in components
                    if name not in strict_requests and "additionalProperties" in schema)
    assert not closed, f"components that are not strict request bodies but declare additionalProperties: {closed}"
    # Still camelCase: the camel-case hook runs after the serializer extension.
    agent_create = session_document().document["components"]["schemas"]["AgentCreateRequest"]
    assert agent_create["additionalProperties"] is False
    assert "modelTier" in agent_create["properties"] and "model_tier" not in agent_create["properties"]


# --- docs/api-contract.md ------------------------------------------------------------------------------------


def test_contract_tables_are_current():
    text = contract.CONTRACT_PATH.read_text()
    assert contract.render(text, session_document().document) == text, (
        "The generated tables of docs/api-contract.md are out of date: run `make openapi` and commit the result.")


def test_contract_lists_every_endpoint_error_code_and_scope():
    from aegis.api.permissions import API_KEY_SCOPES

    text = contract.CONTRACT_PATH.read_text()
    for path, method, _ in operations(session_document().document):
        assert f"| {method.upper()} | `{path}` |" in text
    for code in ERROR_CODE_VALUES:
        assert f"| `{code}` |" in text
    for scope in API_KEY_SCOPES:
        assert f"| `{scope}` |" in text


# --- The machinery, on the sample API -------------------------------------------------------------------------


@pytest.fixture
def sample():
    return session_document(SAMPLE).document


def test_sample_api_generates_without_warnings():
    assert session_document(SAMPLE).problems == []
    validate_schema(session_document(SAMPLE).schema)


def test_security_and_access_follow_the_access_rules(sample):
    things = sample["paths"]["/api/v1/things"]
    assert things["get"]["security"] == [{}]
    assert things["get"]["x-aegis-access"] == {"anonymous": True}
    assert things["post"]["security"] == [{"BearerAuth": []}, {"ApiKeyAuth": []}]
    assert things["post"]["x-aegis-access"] == {"anonymous": False, "roles": ["tenant_admin"],
                                                 "apiKeyScope": "agents:write", "tenantReady": True}
    assert sample["paths"]["/api/v1/ping"]["delete"]["security"] == [{"BearerAuth": []}]
    assert "**Who may call:** `tenant_admin`; API keys with `agents:write`." in things["post"]["description"]
    schemes = sample["components"]["securitySchemes"]
    assert schemes["BearerAuth"]["scheme"] == "bearer"
    assert (schemes["ApiKeyAuth"]["type"], schemes["ApiKeyAuth"]["in"]) == ("apiKey", "header")
    assert schemes["ApiKeyAuth"]["name"] == "Authorization"


def test_implied_and_declared_error_responses(sample):
    create = sample["paths"]["/api/v1/things"]["post"]["responses"]
    assert sorted(create) == ["201", "400", "401", "403", "409", "413", "415", "429"]
    assert create["409"]["description"] == "Conflict"  # declared with errors(409): kept as declared
    assert "`NOT_AUTHENTICATED`" in create["401"]["description"]
    assert create["429"]["headers"]["Retry-After"]["schema"] == {"type": "integer"}
    anonymous_list = sample["paths"]["/api/v1/things"]["get"]["responses"]
    assert "`NOT_AUTHENTICATED`" not in anonymous_list["401"]["description"]  # only a bad credential
    assert "404" in anonymous_list  # a page past the end
    retrieve = sample["paths"]["/api/v1/things/{id}"]["get"]["responses"]
    assert sorted(retrieve) == ["200", "401", "403", "404", "429"]
    ping = sample["paths"]["/api/v1/ping"]["post"]["responses"]
    assert ping["409"]["description"] == "Conflict: `CONFLICT`"
    assert sample["paths"]["/api/v1/ping"]["delete"]["responses"]["204"] == {"description": "No response body"}


def test_summaries_come_from_extend_schema_or_the_docstring(sample):
    broken = sample["paths"]["/api/v1/things/broken"]["get"]
    assert broken["summary"] == "Answers with what its documentation does not promise"
    assert broken["description"].startswith("The query parameter `mode` picks how.")
    feed = sample["paths"]["/api/v1/things/feed"]["get"]
    assert feed["summary"] == "Feed of things"
    assert feed["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CursorPaginatedThingList"}


def test_only_the_request_component_of_a_strict_serializer_is_closed(sample):
    schemas = sample["components"]["schemas"]
    assert schemas["ThingRequest"]["additionalProperties"] is False  # ThingSerializer is a StrictSerializer
    assert "additionalProperties" not in schemas["Thing"]  # its response component
    assert "additionalProperties" not in schemas["PingRequestBodyRequest"]  # a request body of a plain serializer
    assert set(schemas["ThingRequest"]["properties"]) == {"name", "note", "size"}  # no read-only fields


@pytest.mark.django_db
@pytest.mark.urls(SAMPLE)
class TestConformanceCheck:
    """The check that wraps every test client, run by hand against the sample API."""

    @pytest.fixture(autouse=True)
    def _validator(self, openapi_unchecked):
        self.validator = session_validator(SAMPLE)

    def conforms(self, response) -> None:
        self.validator.check_response(response)

    def refuses(self, response, message: str) -> None:
        with pytest.raises(ConformanceError, match=message):
            self.validator.check_response(response)

    def test_conforming_responses_pass(self, client):
        self.conforms(client.get("/api/v1/things"))  # nullable string and nullable nested object
        self.conforms(client.get("/api/v1/things/feed"))  # cursor pagination, next: null
        self.conforms(client.get("/api/v1/things/broken"))
        self.conforms(client.post("/api/v1/ping", {"echo": "hi"}, content_type="application/json"))
        self.conforms(client.post("/api/v1/ping", {"echo": "conflict"}, content_type="application/json"))
        self.conforms(client.post("/api/v1/ping", "{", content_type="application/json"))  # 400 MALFORMED_REQUEST
        self.conforms(client.post("/api/v1/ping", "echo=x", content_type="text/plain"))  # 415
        self.conforms(client.get(f"/api/v1/things/{THING_ID}"))  # 401
        self.conforms(client.get("/api/v1/things?page=9"))  # 404
        self.conforms(client.delete("/api/v1/ping"))  # 401
        self.conforms(client.get("/api/v1/no-such-thing"))  # an unknown path, in the error shape
        self.conforms(client.put("/api/v1/ping", {}, content_type="application/json"))  # 405, in the error shape
        self.conforms(client.get("/api/v1/things", HTTP_AUTHORIZATION="Bearer nonsense"))  # 401 on anonymous
        self.conforms(client.head("/api/v1/things"))
        self.conforms(client.options("/api/v1/things"))  # not part of the contract

    def test_an_undeclared_property_fails(self, client):
        self.refuses(client.get("/api/v1/things/broken?mode=extra-field"), r"secret.*unexpected")

    def test_a_wrong_type_fails(self, client):
        self.refuses(client.get("/api/v1/things/broken?mode=wrong-type"), r"size: 'three' is not of type 'integer'")

    def test_a_timestamp_without_utc_offset_fails(self, client):
        self.refuses(client.get("/api/v1/things/broken?mode=naive-time"), r"createdAt: .* is not a 'date-time'")

    def test_an_undocumented_status_fails(self, client):
        self.refuses(client.get("/api/v1/things/broken?mode=teapot"), r"answered 418, which its OpenAPI operation does "
                                                                     r"not document \(documented: 200, 401, 403, 429\)")
        self.refuses(client.get("/api/v1/things/broken?mode=conflict"), r"answered 409")

    def test_an_undocumented_endpoint_fails(self):
        with pytest.raises(ConformanceError, match="no such operation"):
            self.validator.check("GET", "/api/v1/nowhere", 200, "application/json", b"{}")

    def test_a_body_where_none_is_documented_fails(self):
        with pytest.raises(ConformanceError, match="with a body"):
            self.validator.check("DELETE", "/api/v1/ping", 204, "application/json", b"{}")

    def test_an_error_not_in_the_error_shape_fails(self):
        with pytest.raises(ConformanceError, match="error: 'code' is a required property"):
            self.validator.check("GET", f"/api/v1/things/{THING_ID}", 404, "application/json",
                                 b'{"error": {"message": "x", "details": {}, "requestId": ""}}')
        with pytest.raises(ConformanceError, match="'NOPE' is not one of"):
            self.validator.check("GET", "/api/v1/elsewhere", 404, "application/json",
                                 b'{"error": {"code": "NOPE", "message": "x", "details": {}, "requestId": ""}}')

    def test_a_non_json_body_fails(self):
        with pytest.raises(ConformanceError, match="not JSON"):
            self.validator.check("GET", "/api/v1/no-such-thing", 404, "text/html", b"<h1>Not Found</h1>")

    def test_paths_outside_the_api_are_not_checked(self):
        self.validator.check("GET", "/healthz", 200, "text/plain", b"ok")


def test_literal_path_segments_win_over_parameters():
    document = {"paths": {"/api/v1/skills/{id}": {}, "/api/v1/skills/categories": {}, "/api/v1/skills/{id}/x": {}}}
    validator = OpenApiResponseValidator({**document, "components": {"schemas": {}}})
    assert validator.match("/api/v1/skills/categories") == "/api/v1/skills/categories"
    assert validator.match("/api/v1/skills/42") == "/api/v1/skills/{id}"
    assert validator.match("/api/v1/skills/42/x") == "/api/v1/skills/{id}/x"
    assert validator.match("/api/v1/skills/42/y") is None


def test_openapi_nullable_and_exclusive_bounds_become_json_schema():
    assert to_json_schema({"type": "string", "nullable": True}) == {"type": ["string", "null"]}
    assert to_json_schema({"type": "string", "enum": ["a"], "nullable": True}) == {
        "type": ["string", "null"], "enum": ["a", None]}
    assert to_json_schema({"allOf": [{"$ref": "#/x"}], "nullable": True, "readOnly": True}) == {
        "anyOf": [{"allOf": [{"$ref": "#/x"}]}, {"type": "null"}], "readOnly": True}
    assert to_json_schema({"type": "number", "minimum": 0, "exclusiveMinimum": True}) == {
        "type": "number", "exclusiveMinimum": 0}
    assert to_json_schema({"type": "object", "properties": {"nullable": {"type": "string"}}}) == {
        "type": "object", "properties": {"nullable": {"type": "string"}}, "unevaluatedProperties": False}
    assert to_json_schema({"type": "object", "additionalProperties": {}, "properties": {}}) == {
        "type": "object", "additionalProperties": {}, "properties": {}}


def test_the_check_is_on_for_api_tests(client, db):
    """The autouse fixture of tests/api wraps the test client (this response is checked, and conforms)."""
    from django.test.client import Client

    assert Client.request.__name__ == "checked_request"
    assert client.get("/api/v1/no-such-thing").status_code == 404
