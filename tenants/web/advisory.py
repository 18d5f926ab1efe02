"""Session-level PostgreSQL advisory locks named by a string, for holds that span a request.

A lock is released by ``unlock``, or by PostgreSQL when the connection ends: a process killed
while holding one never leaves it held.
"""

from __future__ import annotations

import logging
import time

from django.db import DatabaseError, connection

logger = logging.getLogger(__name__)

_POLL_SECONDS = 0.02


def lock(name: str, *, wait: float) -> bool:
    """Take the lock called `name`, waiting up to `wait` seconds; False when it stayed taken."""
    deadline = time.monotonic() + wait
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [name])
            if cursor.fetchone()[0]:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_SECONDS)


def unlock(name: str) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [name])
    except DatabaseError:  # the connection is gone, and the lock with it
        logger.warning("advisory lock not released: connection lost", extra={"lock": name})
