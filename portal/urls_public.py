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
