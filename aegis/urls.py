from django.urls import include, path, re_path
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from aegis.api.errors import ErrorCode, json_error_response
from aegis.api.middleware import is_api_request
from apps.monitoring.views import healthz, readyz

from .admin import admin_site


@csrf_exempt  # also the catch-all below, which any method reaches: nothing to protect, only a 404 to give
def handler404(request, exception=None):
    """JSON 404 on /api/, Django's page elsewhere. Also the last pattern of /api/v1/, as with DEBUG on
    Django answers an unmatched path with its HTML "Page not found" page, not handler404."""
    if is_api_request(request):
        return json_error_response(request, 404, ErrorCode.NOT_FOUND, "No such endpoint.")
    return defaults.page_not_found(request, exception)


api_v1 = [
    path("", include("apps.accounts.urls")),
    path("", include("apps.agents.urls")),
    path("", include("apps.skills.marketplace_urls")),
    path("", include("apps.audit.tenant_urls")),
    path("", include("apps.tenants.workspace_urls")),
    path("", include("apps.agents.toolbox_urls")),
    path("platform/", include("aegis.platform_urls")),
    re_path(r"", handler404),  # last: what no pattern above matched
]

urlpatterns = [
    path("admin/", admin_site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
]


def handler500(request):
    if is_api_request(request):
        return json_error_response(request, 500, ErrorCode.INTERNAL_ERROR, "Server Error (500)")
    return defaults.server_error(request)


def handler400(request, exception):
    if is_api_request(request):
        return json_error_response(request, 400, ErrorCode.MALFORMED_REQUEST, "Bad request.")
    return defaults.bad_request(request, exception)


def handler403(request, exception):
    if is_api_request(request):
        return json_error_response(request, 403, ErrorCode.PERMISSION_DENIED, "Forbidden.")
    return defaults.permission_denied(request, exception)
