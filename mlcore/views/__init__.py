"""HTML pages of a tenant's workspace, one module per resource."""
