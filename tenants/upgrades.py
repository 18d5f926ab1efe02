"""Upgrading every tenant schema in parallel, past the ones that fail.

django-tenants' `migrate_schemas --executor=multiprocessing` hands the tenants to
`multiprocessing.Pool.map` in chunks (TENANT_MULTIPROCESSING_CHUNKS): the first exception ends
the map, the rest of that tenant's chunk is never tried, the command dies with a traceback, and
the pool is torn down at exit with the remaining chunks unstarted. One bad schema half-way thus
leaves an unknown share of the others behind, and the exit names no tenant. Here each schema is
one task in a process pool: a failure is recorded with its reason and the others go on.

Order: the public schema, then the template new tenants are built from (a canary: a migration
that fails on the empty template stops the upgrade before any tenant is touched; once it is
migrated, its DDL fingerprint moves, so tenants created from then on already have the new
schema), then every tenant in parallel, then a sweep for tenants created meanwhile. A schema
whose django_migrations already holds every migration the template has is skipped without
loading the migration graph, so a re-run costs one query per finished tenant.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from django.core.management import call_command
from django.db import connection, connections
from django_tenants.utils import get_public_schema_name, get_tenant_base_schema

logger = logging.getLogger(__name__)


@dataclass
class SchemaResult:
    schema: str
    tenant: str  # slug
    status: str  # "migrated", "up to date" or "failed"
    started: float  # wall-clock (time.time()) when its migration began, in its worker
    seconds: float
    error: str = ""


@dataclass
class UpgradeReport:
    results: list[SchemaResult] = field(default_factory=list)
    halted: str = ""  # why no tenant was touched: the public schema or the template failed
    seconds: float = 0.0

    @property
    def failed(self) -> list[SchemaResult]:
        return [r for r in self.results if r.status == "failed"]

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)


def _reason(exc: Exception) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:500]


def _applied(schema: str) -> set[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [f'"{schema}".django_migrations'])
        if cursor.fetchone()[0] is None:
            return set()
        cursor.execute(f'SELECT app, name FROM "{schema}".django_migrations')  # noqa: S608
        return set(cursor.fetchall())


def _migrate_schema(schema: str, slug: str, wanted: frozenset, verbosity: int) -> SchemaResult:
    """In a pool process: migrate one schema; any error becomes the result, never the pool's."""
    started, began = time.time(), time.perf_counter()
    try:
        if wanted and wanted <= _applied(schema):
            return SchemaResult(schema, slug, "up to date", started, time.perf_counter() - began)
        call_command("migrate_schemas", tenant=True, schema_name=schema, executor="standard",
                     interactive=False, verbosity=verbosity)
        return SchemaResult(schema, slug, "migrated", started, time.perf_counter() - began)
    except Exception as exc:  # noqa: BLE001 - reported per schema; the other schemas go on
        logger.warning("tenant migration failed", extra={"schema": schema, "reason": _reason(exc)})
        return SchemaResult(schema, slug, "failed", started, time.perf_counter() - began, _reason(exc))
    finally:
        # A failed migration leaves its connection mid-transaction; the next schema gets a new one.
        connections.close_all()


def _tenant_schemas() -> dict[str, str]:
    """Schema name -> slug of every tenant, oldest first."""
    from tenants.models import Tenant

    connection.set_schema_to_public()
    return dict(Tenant.objects.exclude(schema_name=get_public_schema_name())
                .order_by("id").values_list("schema_name", "slug"))


def _run_pool(schemas: dict[str, str], wanted: frozenset, workers: int, verbosity: int,
              on_result: Callable[[SchemaResult], None]) -> list[SchemaResult]:
    connections.close_all()  # forked workers must not share the parent's connection
    results = []
    context = multiprocessing.get_context("fork")  # workers inherit the loaded apps and settings
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(_migrate_schema, schema, slug, wanted, verbosity): (schema, slug)
                   for schema, slug in schemas.items()}
        for future in as_completed(futures):
            try:
                result = future.result()
            except BrokenProcessPool as exc:  # a worker was killed (OOM, signal): the rest is unknown
                result = SchemaResult(*futures[future], "failed", time.time(), 0.0,
                                      f"worker process died: {exc}")
            results.append(result)
            on_result(result)
    return results


def _migrate_public_and_template(verbosity: int) -> str:
    """'' once both are migrated; otherwise why not, and then no tenant may be touched."""
    from tenants.services import template_schema_sync

    try:
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
    except Exception as exc:  # noqa: BLE001 - reported by the caller
        connections.close_all()
        return "the public schema failed to migrate: " + _reason(exc)
    try:
        template_schema_sync(verbosity=verbosity)
    except Exception as exc:  # noqa: BLE001 - reported by the caller
        connections.close_all()
        return "the tenant template failed to migrate: " + _reason(exc)
    return ""


def tenants_upgrade(*, workers: int = 2, verbosity: int = 0,
                    on_result: Callable[[SchemaResult], None] = lambda result: None) -> UpgradeReport:
    """Migrate public, the template, then every tenant schema on `workers` processes."""
    if workers < 1:
        raise ValueError("workers must be at least 1")
    began = time.perf_counter()
    report = UpgradeReport(halted=_migrate_public_and_template(verbosity))
    if report.halted:
        report.seconds = time.perf_counter() - began
        logger.error("upgrade halted", extra={"reason": report.halted})
        return report
    wanted = frozenset(_applied(get_tenant_base_schema()))
    schemas = _tenant_schemas()
    report.results = _run_pool(schemas, wanted, workers, verbosity, on_result)
    # Tenants created while the pool ran were built from the migrated template, but one whose
    # creation began before the template moved could have the old DDL: check the newcomers.
    newcomers = {s: slug for s, slug in _tenant_schemas().items() if s not in schemas}
    if newcomers:
        report.results += _run_pool(newcomers, wanted, workers, verbosity, on_result)
    connection.set_schema_to_public()
    report.seconds = time.perf_counter() - began
    logger.info("tenants upgraded", extra={"schemas": len(report.results), "failed": len(report.failed),
                                           "seconds": round(report.seconds, 1)})
    return report
