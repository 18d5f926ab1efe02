"""HTTP plumbing shared by both apps: the safe API base, problem details, OpenAPI helpers, pagination, page helpers, middleware, health checks, charts."""
