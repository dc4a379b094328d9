"""/api/v1/platform/skills/review, /api/v1/platform/skills/{id}/approve|reject, /api/v1/platform/roles..."""

from rest_framework.routers import SimpleRouter

from apps.skills.api.platform_views import PlatformRoleViewSet, SkillReviewQueueViewSet, SkillReviewViewSet

router = SimpleRouter(trailing_slash=False)
router.register("skills/review", SkillReviewQueueViewSet, basename="platform-skill-review-queue")
router.register("skills", SkillReviewViewSet, basename="platform-skill")
router.register("roles", PlatformRoleViewSet, basename="platform-role")

urlpatterns = router.urls
