"""A throw-away database for benchmarks, on the configured or embedded PostgreSQL server."""

from __future__ import annotations

import os
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _server_urls() -> tuple[str, str]:
    from portal import embedded

    database = os.environ.get("DATABASE_URL")
    redis = os.environ.get("REDIS_URL")
    if not database or not redis:
        urls = embedded.ensure()
        database = database or urls["DATABASE_URL"]
        redis = redis or urls["REDIS_URL"]
    return database, redis


@contextmanager
def bench_database(prefix: str = "bench"):
    """Create a fresh database, point DATABASE_URL at it, set up Django; drop it afterwards."""
    import psycopg

    database, redis = _server_urls()
    name = f"portal_{prefix}_{uuid.uuid4().hex[:8]}"
    parts = urlsplit(database)
    admin_url = urlunsplit(parts._replace(path="/postgres", scheme="postgresql"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))
    os.environ["REDIS_URL"] = redis
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
    os.environ.setdefault("PORTAL_CACHE_PREFIX", f"portal-{prefix}")
    ready = False
    try:
        import django

        django.setup()  # inside: settings that fail to load still drop the database
        ready = True
        from django.core.management import call_command

        call_command("setup_platform", verbosity=0)
        yield name
    finally:
        if ready:
            from django.db import connections

            connections.close_all()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
