"""Every operation of the API, fuzzed from its OpenAPI document (schemathesis), in-process.

One test per operation of the document drf-spectacular generates from the code (the one
committed as docs/openapi.yaml; test_openapi.py keeps the two identical). Each generated request
goes to the Django WSGI application itself (`case.call(app=...)`, no server, no network), against
the test database, inside the test's transaction and a savepoint of its own that is rolled back
after the call: cases cannot see each other's writes, and nothing survives the test.

What a case fails on:

- any 5xx (`not_a_server_error`; the view's traceback is attached to the failure);
- a response that does not conform to the document: undocumented status code, undeclared
  content type, body not matching the response schema (`status_code_conformance`,
  `content_type_conformance`, `response_schema_conformance`, `response_headers_conformance`),
  and the suite's own, stricter conformance check (`contract_conformance`: closed objects, UTC
  date-times; tests/api/conftest_openapi.py);
- a 4xx that is not JSON in the contract's error shape (`errors_in_contract_shape`);
- an unspecified method answered with anything but 405 and `Allow` (`unsupported_method`), a
  missing required header not rejected (`missing_required_header`);
- invalid input accepted (`rejects_invalid_input`: schemathesis's `negative_data_rejection`,
  minus the lenient behaviours below, which are by design).

Generation: Hypothesis phases explicit (the document's examples, and schemathesis's coverage
cases: boundary values, wrong types, bad formats, undeclared methods and content types) and
generate (fuzzing, positive and negative data), `derandomize=True`, MAX_EXAMPLES per operation,
no shrinking, no stateful phase. Coverage cases are generated for negative data only: its
positive cases took ~25 s per xdist worker to build at collection; positive requests still come
from the examples and the fuzzing phase.

Callers: platform operations (/api/v1/platform/...) as a platform admin, every other operation that
declares a security requirement as a tenant admin of tenant A (both with `mfa_verified`); the
anonymous auth endpoints (login, refresh, logout, MFA verify, password forgot/reset, invite
accept) without credentials. No operation is excluded: since every case is rolled back, one that
revokes or changes the caller's own account (password change, MFA disable, removing a member,
suspending tenant A) cannot spoil the next case. Authentication and authorization refusals
themselves are covered by the authorization matrices, not here (schemathesis does not generate
security parameters). Path parameters of positive cases name real objects (`path_objects`), so
cases reach validation and business rules instead of a 404; negative path values still 404.
Rate limits and the sign-in lockout are raised out of reach and the cache gets a key prefix of
its own, so no case is answered 429 by a throttle.

Checks not run, and why:

- `positive_data_acceptance`: a schema-valid request is rightly refused by rules a schema cannot
  express (unknown ids, conflicts, password validators, lifecycle states: 404/409/400);
- `ignored_auth`, `object_level_authorization`: covered per role by the authorization matrices
  (tests/api/matrix.py), which know which caller may do what;
- `use_after_free`, `ensure_resource_availability`: stateful (sequences of calls), phase off;
- `allow_header_conformance`: OPTIONS is DRF's metadata, not part of the contract;
- `max_response_time`: timing is not deterministic (bench/ measures performance).

Lenient by design, so not "invalid input accepted" (LENIENT, applied by `rejects_invalid_input`):

- unknown request-body properties are ignored (whether a schema declares
  `additionalProperties: false` or not), as are unknown query parameters;
- an empty query filter (`?status=`) counts as no filter;
- `pageSize` out of range or not a number falls back to the default or is capped;
- a number where a text field is expected is taken as its text (DRF's CharField: `"name": 0`);
- text is trimmed of surrounding whitespace before its length is checked (DRF's CharField), so
  `maxLength` + 1 characters of which one is a leading tab is not too long.
"""

from __future__ import annotations

import traceback
import uuid
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import schemathesis
from django.core.signals import got_request_exception, request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, Phase, settings
from rest_framework.throttling import SimpleRateThrottle
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi import checks as st_checks

from aegis.api.authentication import API_KEY_GENERATOR, issue_access_token
from apps.accounts.models import ApiKey, Role, TeamInvite, User
from apps.accounts.services import add_member, create_invite
from tests.api.agent_factories import make_agent, make_channel, make_install, make_role, make_skill
from tests.api.conftest_openapi import ConformanceError, session_document, session_validator
from tests.api.platform_support import make_alert

MAX_EXAMPLES = 10  # fuzzing-phase cases per operation (examples and coverage cases come on top)
PLATFORM_PREFIX = "/api/v1/platform/"
PAGE_SIZE = "pageSize"
DOCUMENT = session_document().document

schema = schemathesis.openapi.from_dict(DOCUMENT)
schema.config.phases.update(phases=["examples", "coverage", "fuzzing"])
schema.config.phases.coverage.generation.update(modes=[GenerationMode.NEGATIVE])
schema.config.generation.update(with_security_parameters=False)


# --- Lenient behaviours (see the module docstring) ---------------------------------------------------


def _resolve(node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        target = DOCUMENT
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node if isinstance(node, dict) else {}


def _branches(node: dict) -> list[dict]:
    """The schema and every allOf/oneOf/anyOf branch below it, references resolved."""
    node = _resolve(node)
    found = [node]
    for key in ("allOf", "oneOf", "anyOf"):
        for branch in node.get(key, []):
            found.extend(_branches(branch))
    return found


def _as_server_reads_it(value, node: dict):
    """`value` as the API reads it: undeclared properties dropped, numbers in text fields as text,
    surrounding whitespace of text trimmed."""
    branches = _branches(node)
    types = {t for b in branches for t in ([b["type"]] if isinstance(b.get("type"), str) else b.get("type", []))}
    text = "string" in types and not types & {"number", "integer"}
    if text and isinstance(value, str):
        return value.strip()  # DRF's CharField trims (trim_whitespace) before checking lengths
    if text and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, dict):
        properties = {name: prop for b in branches for name, prop in (b.get("properties") or {}).items()}
        extra = next((b["additionalProperties"] for b in branches if isinstance(b.get("additionalProperties"), dict)),
                     None)
        if not properties and extra is None:
            return value  # free-form JSON (skill settings, configuration): kept verbatim
        return {key: _as_server_reads_it(item, properties.get(key, extra))
                for key, item in value.items() if key in properties or extra is not None}
    if isinstance(value, list):
        items = next((b["items"] for b in branches if isinstance(b.get("items"), dict)), None)
        return [_as_server_reads_it(item, items) for item in value] if items is not None else value
    return value


def _lenient_body(case, response) -> bool:
    body = (DOCUMENT["paths"][case.operation.path][case.method.lower()].get("requestBody") or {})
    media = (body.get("content") or {}).get(case.media_type or "application/json")
    if media is None or "schema" not in media or not isinstance(case.body, (dict, list)):
        return False
    normalized = _as_server_reads_it(case.body, media["schema"])
    return not session_validator().problems_for_schema(media["schema"], normalized)


def _negated_query_parameters(case) -> set[str]:
    data = case.meta.phase.data
    names = {data.parameter} if data.parameter_location == ParameterLocation.QUERY and data.parameter else set()
    names |= {m.parameter for m in data.mutations if m.parameter_location == ParameterLocation.QUERY and m.parameter}
    return names


def _lenient_query(case, response) -> bool:
    """Every negated query parameter is pageSize, undeclared, or empty or absent on the wire."""
    names = _negated_query_parameters(case)
    parameters = {p.name: p for p in case.operation.iter_parameters() if p.location == ParameterLocation.QUERY}
    sent = parse_qs(urlsplit(response.request.url).query, keep_blank_values=True)

    def lenient(name: str) -> bool:
        if name == PAGE_SIZE or name not in parameters:
            return True
        if name not in sent:
            return not parameters[name].is_required
        return all(value == "" for value in sent[name])

    return bool(names) and all(lenient(name) for name in names)


LENIENT = {ParameterLocation.QUERY: _lenient_query, ParameterLocation.BODY: _lenient_body}


def rejects_invalid_input(ctx, response, case):
    """`negative_data_rejection`, except for input that is valid once read the lenient ways above."""
    meta = case.meta
    if meta is not None and meta.generation.mode.is_negative:
        negated = {location for location, info in meta.components.items() if info.mode.is_negative}
        if negated and all(location in LENIENT and LENIENT[location](case, response) for location in negated):
            return None
    return st_checks.negative_data_rejection(ctx, response, case)


# --- The contract's own checks --------------------------------------------------------------------------


def _content_type(response) -> str:
    return (response.headers.get("content-type") or [""])[0]


def contract_conformance(ctx, response, case):
    """tests/api/conftest_openapi.py's check, the one every API test's responses go through."""
    try:
        session_validator().check(response.request.method, urlsplit(response.request.url).path,
                                  response.status_code, _content_type(response), response.content)
    except ConformanceError as exc:
        raise AssertionError(str(exc)) from None


def errors_in_contract_shape(ctx, response, case):
    """A 4xx is JSON in the error shape, whatever the operation documents."""
    if not 400 <= response.status_code < 500 or response.request.method == "HEAD":
        return
    mime = _content_type(response).split(";", 1)[0].strip().lower()
    assert mime == "application/json", f"{response.status_code} answered as {mime or 'no content type'}: " \
                                       f"{response.content[:300]!r}"
    problems = session_validator().error_shape_problems(response.json())
    assert not problems, f"{response.status_code} not in the error shape: {problems}; body {response.content[:500]!r}"


CHECKS = [
    not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_headers_conformance,
    st_checks.response_schema_conformance,
    st_checks.unsupported_method,
    st_checks.missing_required_header,
    rejects_invalid_input,
    contract_conformance,
    errors_in_contract_shape,
]


# --- Callers, objects, the application ---------------------------------------------------------------------


class FuzzRun:
    def __init__(self, *, tenant_token: str, platform_token: str, path_objects: dict[str, dict[str, str]]):
        self.tenant_token, self.platform_token = tenant_token, platform_token
        self.path_objects = path_objects
        self.app = get_wsgi_application()
        self.tracebacks: list[str] = []

    def headers(self, case) -> dict[str, str]:
        if not case.operation.definition.raw.get("security"):
            return {}  # the anonymous auth endpoints
        token = self.platform_token if case.operation.path.startswith(PLATFORM_PREFIX) else self.tenant_token
        return {"Authorization": f"Bearer {token}"}

    def call(self, case):
        objects = self.path_objects.get(case.operation.path)
        if objects and case.meta is not None and not case.meta.is_negative_at(ParameterLocation.PATH):
            case.path_parameters = {**(case.path_parameters or {}), **objects}
        self.tracebacks.clear()
        with transaction.atomic():
            response = case.call(app=self.app, headers=self.headers(case))
            transaction.set_rollback(True)
        connection.set_schema_to_public()
        return response


def path_objects(tenant) -> dict[str, dict[str, str]]:
    """Real objects for the path parameters of each templated path (tenant A's, or the platform's)."""
    make_role("sales")
    agent = make_agent(tenant, "Fuzz Agent")
    channel = make_channel(tenant, agent)
    installed = make_install(tenant, agent, make_skill("fuzz-installed")).skill_id
    skill = make_skill("fuzz-approved").pk
    pending = make_skill("fuzz-pending", status="pending").pk
    _raw, prefix, hashed = API_KEY_GENERATOR.generate()
    api_key = ApiKey.objects.create(tenant=tenant, name="Fuzz key", prefix=prefix, hashed_key=hashed, scopes=[]).pk
    member = add_member(tenant=tenant, email="fuzz-member@acme.example", password="correct-horse-battery",
                        name="Fuzz Member", role=Role.TENANT_MEMBER).membership.pk
    invite = create_invite(tenant=tenant, email="fuzz-invitee@acme.example", actor=None).pk
    # Sent long enough ago that a resend is not refused as too soon (a per-invite rule, 429).
    TeamInvite.objects.filter(pk=invite).update(updated_at=timezone.now() - timedelta(minutes=2))
    alert = make_alert(tenant).pk
    agents = {"id": agent.pk}
    objects = {
        "/api/v1/agents/{id}": agents, "/api/v1/agents/{id}/activity": agents,
        "/api/v1/agents/{id}/channels": agents, "/api/v1/agents/{id}/skills": agents,
        "/api/v1/agents/{id}/config": agents, "/api/v1/agents/{id}/metrics": agents,
        "/api/v1/agents/{id}/pause": agents, "/api/v1/agents/{id}/resume": agents,
        "/api/v1/agents/{id}/channels/{channelId}": {"id": agent.pk, "channelId": channel.pk},
        "/api/v1/agents/{id}/channels/{channelId}/verify": {"id": agent.pk, "channelId": channel.pk},
        "/api/v1/agents/{id}/skills/{skillId}": {"id": agent.pk, "skillId": installed},
        "/api/v1/api-keys/{id}": {"id": api_key},
        "/api/v1/platform/alerts/{id}/acknowledge": {"id": alert},
        "/api/v1/platform/alerts/{id}/resolve": {"id": alert},
        "/api/v1/platform/roles/{key}": {"key": "sales"},
        "/api/v1/platform/skills/{id}/approve": {"id": pending},
        "/api/v1/platform/skills/{id}/reject": {"id": pending},
        "/api/v1/roles/{key}": {"key": "sales"},
        "/api/v1/skills/{id}": {"id": skill},
        "/api/v1/team/{memberId}": {"memberId": member},
        "/api/v1/team/invites/{id}": {"id": invite},
        "/api/v1/team/invites/{id}/resend": {"id": invite},
    }
    for suffix in ("", "/health", "/reactivate", "/retry-provisioning", "/suspend", "/usage"):
        objects[f"/api/v1/platform/tenants/{{id}}{suffix}"] = {"id": tenant.pk}
    return {path: {name: str(value) for name, value in params.items()} for path, params in objects.items()}


@pytest.fixture
def fuzz_run(tenant_a, settings, monkeypatch):
    # No throttle or lockout answers for the fuzzer: counters of their own, limits out of reach.
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"aegis-fuzz-{uuid.uuid4().hex}"}}
    settings.LOGIN_LOCKOUT_THRESHOLD = 10**9
    for scope in list(SimpleRateThrottle.THROTTLE_RATES):
        monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, scope, "1000000000/min")
    admin = add_member(tenant=tenant_a, email="fuzz-admin@acme.example", password="correct-horse-battery",
                       name="Fuzz Admin", role=Role.TENANT_ADMIN)
    root = User.objects.create_user("fuzz-root@aegis.example", "correct-horse-battery", name="Fuzz Root",
                                    role=Role.PLATFORM_ADMIN)
    run = FuzzRun(tenant_token=str(issue_access_token(admin, mfa_verified=True)),
                  platform_token=str(issue_access_token(root, mfa_verified=True)),
                  path_objects=path_objects(tenant_a))

    def keep_traceback(sender, **kwargs):
        run.tracebacks.append(traceback.format_exc())

    # As Django's test client does: the end of a request must not close the test's connection,
    # which is inside the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    got_request_exception.connect(keep_traceback)
    try:
        yield run
    finally:
        got_request_exception.disconnect(keep_traceback)
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


# --- The tests ------------------------------------------------------------------------------------------


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_operation_keeps_the_contract(case, fuzz_run):
    response = fuzz_run.call(case)
    try:
        case.validate_response(response, checks=CHECKS)
    except FailureGroup as exc:
        for text in fuzz_run.tracebacks:
            exc.add_note(f"Raised in the view:\n{text}")
        raise


def test_every_templated_path_has_real_objects(tenant_a):
    templated = {path for path in DOCUMENT["paths"] if "{" in path}
    covered = set(path_objects(tenant_a))
    assert templated == covered, f"path_objects() should name objects for exactly these paths: {templated ^ covered}"
