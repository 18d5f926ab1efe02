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
    embedded.prepare_var()  # the development secrets under var/, also when the servers are given
    if not database or not redis:
        urls = embedded.ensure()
        database = database or urls["DATABASE_URL"]
        redis = redis or urls["REDIS_URL"]
    return database, redis


def _admin_url(database: str) -> str:
    return urlunsplit(urlsplit(database)._replace(path="/postgres", scheme="postgresql"))


def drop_database(name: str) -> None:
    """Drop a database a run kept (bench_database(keep=True))."""
    import psycopg

    with psycopg.connect(_admin_url(_server_urls()[0]), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def bench_database(prefix: str = "bench", *, keep: bool = False, existing: str | None = None):
    """Create a fresh database, point DATABASE_URL at it, set up Django; drop it afterwards.

    keep: leave it in place (its name is printed) for a later run; existing: use that database,
    set up by an earlier run with keep, as it is (not migrated again, kept afterwards)."""
    import psycopg

    database, redis = _server_urls()
    name = existing or f"portal_{prefix}_{uuid.uuid4().hex[:8]}"
    keep = keep or bool(existing)
    parts = urlsplit(database)
    admin_url = _admin_url(database)
    if not existing:
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

        if not existing:
            call_command("setup_platform", verbosity=0)
        yield name
    finally:
        if ready:
            from django.db import connections

            connections.close_all()
        if keep:
            print(f"database kept: {name}", flush=True)
        else:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
