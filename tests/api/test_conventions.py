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
