"""Webhooks: tenant admins register endpoints; events are delivered signed, retried, logged."""
