"""GET agents/{id}/config: the resolver's effective configuration with the layer of each value."""

from __future__ import annotations

import pytest

from apps.agents.models import RoleOverride
from tests.api.agent_factories import in_tenant, make_agent, make_install, make_role, make_skill

pytestmark = pytest.mark.django_db


@pytest.fixture
def layered_agent(tenant_a):
    """Toolbox: calendar (google). Role `sales`: crm + web-search, low thinking, an emoji.
    Agent: powerful tier, web-search switched off, crm settings of its own."""
    make_role("sales", default_skills=["crm", "web-search"],
              default_settings={"thinking_mode": "low", "tools_profile": "messaging", "identity": {"emoji": "💼"}})
    calendar = make_skill("calendar", "1.2.0", name="Calendar")
    crm = make_skill("crm", "1.0.0", name="CRM")
    make_skill("crm", "1.1.0", name="CRM")  # the role follows the newest approved version
    search = make_skill("web-search", "3.1.0", name="Web search")
    agent = make_agent(tenant_a, "Ava", role="sales", model_tier="powerful")
    make_install(tenant_a, None, calendar, config={"provider": "google"})
    make_install(tenant_a, agent, search, enabled=False)
    make_install(tenant_a, agent, crm, config={"region": "eu"})
    return agent


def test_config_shows_each_value_with_the_layer_it_came_from(callers, layered_agent, settings):
    response = callers["tenant_member"].get(f"/api/v1/agents/{layered_agent.pk}/config")
    assert response.status_code == 200, response.content
    config = response.json()
    assert (config["agentId"], config["name"], config["role"]) == ("ava", "Ava", "sales")
    assert config["model"] == {"tier": "powerful", "tierSource": "agent",
                               "primary": settings.PLATFORM_MODEL_DEFAULTS["tiers"]["powerful"],
                               "fallbacks": settings.PLATFORM_MODEL_DEFAULTS["fallbacks"], "source": "platform"}
    assert config["thinkingMode"] == {"value": "low", "source": "role"}
    assert config["toolsProfile"] == {"value": "messaging", "source": "role"}
    assert config["identity"] == {"emoji": {"value": "💼", "source": "role"}}

    enabled = {skill["slug"]: skill for skill in config["skills"]}
    assert set(enabled) == {"calendar", "crm"}
    assert (enabled["calendar"]["source"], enabled["calendar"]["config"]) == ("toolbox", {"provider": "google"})
    assert (enabled["crm"]["source"], enabled["crm"]["version"]) == ("agent", "1.0.0")  # the agent's own pick
    assert enabled["crm"]["config"] == {"region": "eu"}
    assert [(s["slug"], s["source"], s["version"]) for s in config["disabledSkills"]] == [
        ("web-search", "agent", "3.1.0")]


def test_tenant_model_defaults_and_role_overrides_show_as_their_layers(callers, layered_agent, tenant_a):
    tenant_a.model_defaults = {"tiers": {"powerful": "openai/gpt-5"}, "thinking_default": "high"}
    tenant_a.save(update_fields=["model_defaults"])
    in_tenant(tenant_a, RoleOverride.objects.create, role_id="sales", default_skills=[],
              default_settings={"tools_profile": "full"})
    config = callers["tenant_admin"].get(f"/api/v1/agents/{layered_agent.pk}/config").json()
    assert (config["model"]["primary"], config["model"]["source"]) == ("openai/gpt-5", "tenant")
    # The override replaces the role's skills and the settings it names; the rest stay the role's.
    assert config["thinkingMode"] == {"value": "low", "source": "role"}
    assert config["toolsProfile"] == {"value": "full", "source": "role"}
    assert {skill["slug"] for skill in config["skills"]} == {"calendar", "crm"}

    plain = make_agent(tenant_a, "Plain", role="custom")
    config = callers["tenant_admin"].get(f"/api/v1/agents/{plain.pk}/config").json()
    assert config["thinkingMode"] == {"value": "high", "source": "tenant"}
    assert config["model"]["tierSource"] == "platform"


def test_switching_a_skill_back_on_through_the_api_moves_it_back(callers, layered_agent):
    admin = callers["tenant_admin"]
    search_id = next(s["skill"]["id"] for s in admin.get(f"/api/v1/agents/{layered_agent.pk}/skills").json()["data"]
                     if s["skill"]["slug"] == "web-search")
    assert admin.delete(f"/api/v1/agents/{layered_agent.pk}/skills/{search_id}").status_code == 204
    config = admin.get(f"/api/v1/agents/{layered_agent.pk}/config").json()
    assert config["disabledSkills"] == []
    assert {s["slug"]: s["source"] for s in config["skills"]}["web-search"] == "role"
