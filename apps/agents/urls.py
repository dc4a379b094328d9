"""/api/v1/agents/..., /api/v1/activity (no trailing slashes)."""

from rest_framework.routers import SimpleRouter

from apps.agents.api.views import (
    UUID_PATH,
    ActivityViewSet,
    AgentActivityViewSet,
    AgentChannelViewSet,
    AgentSkillViewSet,
    AgentViewSet,
)

AGENT = rf"agents/(?P<id>{UUID_PATH})"

router = SimpleRouter(trailing_slash=False)
router.register("agents", AgentViewSet, basename="agent")
router.register(f"{AGENT}/channels", AgentChannelViewSet, basename="agent-channel")
router.register(f"{AGENT}/skills", AgentSkillViewSet, basename="agent-skill")
router.register(f"{AGENT}/activity", AgentActivityViewSet, basename="agent-activity")
router.register("activity", ActivityViewSet, basename="activity")

urlpatterns = router.urls
