"""Backup and restore of one tenant: the signed archive (archive), the tenant schema's rows
(tables), the public rows (public_rows) and the two services (services)."""
