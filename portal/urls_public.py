"""The bare base domain: landing page, workspace finder, operator console."""

from django.contrib import admin
from django.urls import path

from tenants.urls import public_patterns

admin.site.site_header = "ML Portal operator console"
admin.site.site_title = "Operator console"
admin.site.index_title = "Platform"

urlpatterns = [
    path("admin/", admin.site.urls),
    *public_patterns,
]

# The same error pages as on tenant hosts (a public host has no /api/, so always the pages).
handler404 = "tenants.views.errors.page_not_found"
handler403 = "tenants.views.errors.permission_denied"
handler500 = "tenants.views.errors.server_error"
