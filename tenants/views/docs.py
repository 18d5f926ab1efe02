"""API docs: Swagger UI from our static files, its start-up script a file too (CSP)."""

from __future__ import annotations

from drf_spectacular.views import SpectacularSwaggerSplitView


class ApiDocsView(SpectacularSwaggerSplitView):
    template_name = "tenants/api_docs.html"
