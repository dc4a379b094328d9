from django.urls import include, path

urlpatterns = [
    path("auth/", include("apps.accounts.api.auth_urls")),
    path("", include("apps.accounts.api.team_urls")),
]
