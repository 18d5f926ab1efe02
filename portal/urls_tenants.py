"""Every tenant host: pages and REST API v1."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from mlcore.urls import api_patterns as mlcore_api
from mlcore.urls import page_patterns as mlcore_pages
from tenants.urls import api_patterns as tenants_api
from tenants.urls import page_patterns as tenants_pages
from tenants.views import ApiDocsView

urlpatterns = [
    *tenants_pages,
    *mlcore_pages,
    path("api/v1/", include(tenants_api + mlcore_api)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", ApiDocsView.as_view(url_name="api-schema"), name="api-docs"),
]

handler404 = "tenants.views.page_not_found"
handler403 = "tenants.views.permission_denied"
handler500 = "tenants.views.server_error"
