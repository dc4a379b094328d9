"""The API's conventions hold for every error, not only those raised by views."""

import pytest


@pytest.mark.django_db
def test_unknown_api_url_gives_json_404_with_request_id(client):
    response = client.get("/api/v1/no-such-thing", HTTP_X_REQUEST_ID="req-123")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "NOT_FOUND", "message": "No such endpoint.", "details": {},
                                         "requestId": "req-123"}}
    assert response["X-Request-ID"] == "req-123"


@pytest.mark.django_db
def test_request_id_is_generated_when_absent_or_unsafe(client):
    response = client.get("/api/v1/no-such-thing", HTTP_X_REQUEST_ID="bad id with spaces")
    generated = response["X-Request-ID"]
    assert generated != "bad id with spaces" and len(generated) == 32
    assert response.json()["error"]["requestId"] == generated


@pytest.mark.django_db
def test_oversized_body_is_refused_with_413(client, settings):
    response = client.generic("POST", "/api/v1/auth/login", data="x" * (settings.API_MAX_BODY_BYTES + 1),
                              content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_user_defined_json_keeps_its_keys_both_ways():
    """Skill settings and their schemas are user-defined: camelCase conversion must not touch them."""
    from djangorestframework_camel_case.settings import api_settings
    from djangorestframework_camel_case.util import camelize, underscoreize

    options = api_settings.JSON_UNDERSCOREIZE
    body = {"skill_id": 1, "config": {"api_base_url": "x", "maxItems": 3}, "configuration": {"properties": {"a_b": {}}}}
    assert camelize(body, **options) == {"skillId": 1, "config": body["config"], "configuration": body["configuration"]}
    wire = {"skillId": 1, "config": {"maxItems": 3, "api_base": 1}}
    assert underscoreize(wire, **options) == {"skill_id": 1, "config": wire["config"]}


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), [
    ("TRACE", "/api/v1/auth/login"),  # anyone may call it (POST)
    ("PUT", "/api/v1/auth/login"),
    ("GET", "/api/v1/auth/login"),
    ("PUT", "/api/v1/agents"),  # a viewset: list and create only
    ("DELETE", "/api/v1/tenant"),  # an APIView: get and patch only
    ("POST", "/api/v1/auth/me"),
])
def test_a_method_the_endpoint_lacks_gives_405_for_every_caller(callers, method, path):
    """405 METHOD_NOT_ALLOWED (with Allow), not the 403 of a missing access rule nor a 401."""
    for role in ("anonymous", "tenant_admin", "tenant_member", "api_key:agents:write,tenant:write"):
        response = callers[role].generic(method, path, content_type="application/json")
        assert response.status_code == 405, (role, response.content)
        assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
        assert method not in response["Allow"]


@pytest.mark.django_db
def test_a_bad_credential_is_still_a_401_before_the_method_is_looked_at(client):
    response = client.generic("TRACE", "/api/v1/agents", HTTP_AUTHORIZATION="Bearer nonsense")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "TOKEN_INVALID"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/agents/", "/api/v1/agents//config", "/api/v1/roles/0",
                                  "/api/v1/no-such-thing"])
def test_unknown_api_url_is_json_in_development_too(client, settings, path):
    """With DEBUG on (`make run`), Django's HTML "Page not found" page must not answer under /api/v1/."""
    settings.DEBUG = True
    for method in ("GET", "POST", "DELETE"):
        response = client.generic(method, path, content_type="application/json")
        assert response.status_code == 404, (method, response.content[:200])
        assert response["Content-Type"] == "application/json", (method, response.content[:200])
        assert response.json()["error"]["code"] == "NOT_FOUND"
