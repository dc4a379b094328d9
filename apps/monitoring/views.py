"""Liveness and readiness probes for load balancers and orchestrators (no auth, no tenant)."""

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from health_check.views import HealthCheckView
from redis.asyncio import Redis as AsyncRedis


@never_cache
@require_GET
def healthz(request):
    """The process is up and serving; says nothing about its dependencies."""
    return JsonResponse({"status": "ok"})


class ReadinessView(HealthCheckView):
    """Ready for traffic: database, Redis (cache, channel layer) and the Celery broker answer.

    django-health-check runs the checks concurrently; `?format=json` or `Accept:
    application/json` gives JSON. A failing check answers 503 (the library says 500),
    which is what load balancers and Kubernetes expect of a not-ready instance.
    """

    checks = (
        "health_check.checks.Database",
        ("health_check.contrib.redis.Redis", {"client_factory": lambda: AsyncRedis.from_url(settings.REDIS_URL)}),
        (
            "health_check.contrib.redis.Redis",
            {"client_factory": lambda: AsyncRedis.from_url(settings.CELERY_BROKER_URL)},
        ),
    )

    async def get(self, request, *args, **kwargs):
        response = await super().get(request, *args, **kwargs)
        if response.status_code == 500:
            response.status_code = 503
        return response


readyz = ReadinessView.as_view()
