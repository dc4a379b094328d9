from django.urls import include, path

from apps.accounts.api.invite_views import InviteAcceptView

urlpatterns = [
    path("auth/invites/accept", InviteAcceptView.as_view(), name="invite-accept"),
    path("auth/", include("apps.accounts.api.auth_urls")),
    path("", include("apps.accounts.api.team_urls")),
]
