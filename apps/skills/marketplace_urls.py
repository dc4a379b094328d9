"""/api/v1/skills: the marketplace, tenant side (no trailing slashes).

The router lists skills/categories and skills/mine before skills/{id}, and ids must be UUIDs, so
neither word is ever read as an id."""

from rest_framework.routers import SimpleRouter

from apps.skills.api.marketplace_views import MarketplaceViewSet

router = SimpleRouter(trailing_slash=False)
router.register("skills", MarketplaceViewSet, basename="marketplace-skill")

urlpatterns = router.urls
