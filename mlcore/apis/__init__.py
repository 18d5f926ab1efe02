"""REST API v1 of a tenant's data, one module per resource (routes: mlcore/urls.py)."""
