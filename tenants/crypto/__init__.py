"""Keys: master keys, per-tenant data keys (envelope encryption) and the signing key."""
