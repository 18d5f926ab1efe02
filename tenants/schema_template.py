"""New tenant schemas from the template's DDL, in constant time.

django-tenants can clone the template schema with a PL/pgSQL function, but that function scans the
catalogs of every schema, so creating a tenant gets slower as tenants accumulate (~0.2 s with two
tenants, over 1 s with a hundred). Instead, the template's structure is dumped once with pg_dump
(--schema-only), cached (process and Redis) under a fingerprint of the template's applied
migrations, and replayed into each new schema with the schema name substituted. Without a usable
pg_dump the clone function remains the fallback.
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import connection

logger = logging.getLogger(__name__)

_memo: dict[str, str] = {}


def _template() -> str:
    return settings.TENANT_BASE_SCHEMA


def fingerprint() -> str:
    """Changes whenever a migration is applied to the template."""
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*), coalesce(max(id), 0) FROM "{_template()}".django_migrations')  # noqa: S608
        count, top = cursor.fetchone()
    return f"{count}:{top}"


def _pg_dump() -> str | None:
    candidates = [getattr(settings, "PORTAL_PG_DUMP", "")]
    spec = importlib.util.find_spec("pgserver")  # its binaries, without importing it
    if spec and spec.submodule_search_locations:
        candidates.append(str(Path(spec.submodule_search_locations[0]) / "pginstall" / "bin" / "pg_dump"))
    candidates.append(shutil.which("pg_dump") or "")
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"), reverse=True)
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def _dump(binary: str) -> str:
    db = connection.settings_dict
    env = dict(os.environ, PGPASSWORD=db.get("PASSWORD") or "")
    options = db.get("OPTIONS") or {}
    if options.get("sslmode"):
        env["PGSSLMODE"] = options["sslmode"]
    if options.get("sslrootcert"):
        env["PGSSLROOTCERT"] = options["sslrootcert"]
    command = [binary, "--schema-only", "--no-owner", "--no-privileges", f"--schema={_template()}",
               "-U", db.get("USER") or "postgres", "-d", db["NAME"]]
    if db.get("HOST"):
        command += ["-h", db["HOST"]]
    if db.get("PORT"):
        command += ["-p", str(db["PORT"])]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip()[:500])
    return _only_ddl(result.stdout)


def _only_ddl(dump: str) -> str:
    """Keep the statements that build objects; drop session settings, comments, psql commands."""
    kept = []
    for line in dump.splitlines():
        if line.startswith(("--", "\\", "SET ", "SELECT pg_catalog.set_config")):
            continue
        kept.append(line)
    ddl = "\n".join(kept)
    return re.sub(rf"^CREATE SCHEMA {re.escape(_template())};$", "", ddl, flags=re.MULTILINE)


def template_ddl() -> str | None:
    """The template's DDL for its current migrations, or None when it cannot be had."""
    key = fingerprint()
    if key in _memo:
        return _memo[key]
    cache_key = f"schema-template-ddl:{key}"
    ddl = cache.get(cache_key)
    if ddl is None:
        binary = _pg_dump()
        if binary is None:
            return None
        try:
            ddl = _dump(binary)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            logger.warning("pg_dump of the tenant template failed; cloning instead", extra={"reason": str(exc)})
            return None
        cache.set(cache_key, ddl, None)
    _memo.clear()
    _memo[key] = ddl
    return ddl


def create_from_template(schema_name: str) -> bool:
    """Build `schema_name` from the template's DDL and copy its migration records."""
    ddl = template_ddl()
    if ddl is None:
        return False
    template = _template()
    quoted = f'"{schema_name}"'
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {quoted}")
        cursor.execute(ddl.replace(f"{template}.", f"{quoted}."))
        cursor.execute(f"INSERT INTO {quoted}.django_migrations (app, name, applied) "  # noqa: S608
                       f'SELECT app, name, applied FROM "{template}".django_migrations ORDER BY id')
    return True

