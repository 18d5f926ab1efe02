"""Readiness: the database and Redis must both answer."""

from __future__ import annotations

import logging

from django.db import connection

from tenants.limits import gate

logger = logging.getLogger(__name__)


def readiness() -> tuple[bool, dict[str, str]]:
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception:  # any failure means "not ready"; the reason goes to the log only
        logger.warning("readiness: database check failed", exc_info=True)
        checks["database"] = "unavailable"
    try:
        gate.client().ping()
        checks["redis"] = "ok"
    except Exception:
        logger.warning("readiness: redis check failed", exc_info=True)
        checks["redis"] = "unavailable"
    return all(v == "ok" for v in checks.values()), checks
