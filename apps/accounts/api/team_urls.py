"""/api/v1/team, /api/v1/team/invites, /api/v1/api-keys (no trailing slashes)."""

from rest_framework.routers import SimpleRouter

from apps.accounts.api.team_views import ApiKeyViewSet, TeamInviteViewSet, TeamMemberViewSet

router = SimpleRouter(trailing_slash=False)
# team/invites before team: its routes must be tried first (member ids are UUIDs anyway).
router.register("team/invites", TeamInviteViewSet, basename="team-invite")
router.register("team", TeamMemberViewSet, basename="team-member")
router.register("api-keys", ApiKeyViewSet, basename="api-key")

urlpatterns = router.urls
