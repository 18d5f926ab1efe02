"""The bare base domain: landing page, workspace finder, operator console."""

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.models import Group
from django.urls import path
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenants.urls import public_patterns

admin.site.site_header = "ML Portal operator console"
admin.site.site_title = "Operator console"
admin.site.index_title = "Platform"

# The console shows what operators manage (plans, tenants, users, tokens). Lockout records, TOTP
# devices and permission groups are internals of the libraries behind sign-in: lockouts end by
# themselves (or `manage.py axes_reset`), devices are each user's own, and roles are memberships.
for _model in (Group, AccessAttempt, AccessLog, AccessFailureLog, TOTPDevice):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)

urlpatterns = [
    path("admin/", admin.site.urls),
    *public_patterns,
]

# The same error pages as on tenant hosts (a public host has no /api/, so always the pages).
handler404 = "tenants.views.errors.page_not_found"
handler403 = "tenants.views.errors.permission_denied"
handler500 = "tenants.views.errors.server_error"
