"""The platform console: Django admin behind a TOTP check, for platform admins only."""

from django_otp.admin import OTPAdminSite


class PlatformAdminSite(OTPAdminSite):
    site_header = "Aegis platform console"
    site_title = "Aegis"
    index_title = "Fleet administration"


admin_site = PlatformAdminSite(name="admin")
