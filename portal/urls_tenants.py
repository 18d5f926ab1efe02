"""Every tenant host: pages and REST API v1."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from mlcore.urls import api_patterns as mlcore_api
from mlcore.urls import page_patterns as mlcore_pages
from tenants.urls import api_patterns as tenants_api
from tenants.urls import page_patterns as tenants_pages
from tenants.views.docs import ApiDocsView

urlpatterns = [
    # The API first, and mlcore's first within it (its online prediction route leads): Django
    # tries patterns in order, and walking ~70 page patterns cost the hot path ~5% of its time.
    # No page pattern starts with "api/" and the two API lists share no path, so order is free.
    path("api/v1/", include(mlcore_api + tenants_api)),
    *tenants_pages,
    *mlcore_pages,
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", ApiDocsView.as_view(url_name="api-schema"), name="api-docs"),
]

handler404 = "tenants.views.errors.page_not_found"
handler403 = "tenants.views.errors.permission_denied"
handler500 = "tenants.views.errors.server_error"
