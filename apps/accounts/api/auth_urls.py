"""/api/v1/auth/ (no trailing slashes)."""

from django.urls import path

from apps.accounts.api import auth_views as views
from apps.accounts.api.invite_views import InviteAcceptView

urlpatterns = [
    path("login", views.LoginView.as_view(), name="auth-login"),
    path("mfa/verify", views.MfaVerifyView.as_view(), name="auth-mfa-verify"),
    path("refresh", views.RefreshView.as_view(), name="auth-refresh"),
    path("logout", views.LogoutView.as_view(), name="auth-logout"),
    path("me", views.MeView.as_view(), name="auth-me"),
    path("password/change", views.PasswordChangeView.as_view(), name="auth-password-change"),
    path("password/forgot", views.PasswordForgotView.as_view(), name="auth-password-forgot"),
    path("password/reset", views.PasswordResetView.as_view(), name="auth-password-reset"),
    path("mfa/setup", views.MfaSetupView.as_view(), name="auth-mfa-setup"),
    path("mfa/enable", views.MfaEnableView.as_view(), name="auth-mfa-enable"),
    path("mfa/disable", views.MfaDisableView.as_view(), name="auth-mfa-disable"),
    path("mfa/recovery-codes", views.RecoveryCodesView.as_view(), name="auth-mfa-recovery-codes"),
    # Owned by the team/invites area (apps/accounts/api/invite_views.py).
    path("invites/accept", InviteAcceptView.as_view(), name="auth-invite-accept"),
]
