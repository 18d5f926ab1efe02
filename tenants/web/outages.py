"""A dependency that is down (PostgreSQL, Redis) is a 503 with Retry-After, never a traceback.

Django converts an exception raised in any middleware or view into the URLconf's handler500
(tenants.views.errors.server_error), and DRF views hand theirs to exceptions.exception_handler; both
ask outage_response() first. Nothing here touches the database, the session or Redis, so the answer
works while they are down. Recovery needs nothing: Django drops an unusable connection at the end
of the request and redis-py reconnects from its pool on the next command.
"""

from __future__ import annotations

import logging

import psycopg
from django import db
from django.http import HttpResponse
from django.template import loader
from redis import exceptions as redis_exceptions

from tenants.web import problems

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
_DEPENDENCIES = (
    ((redis_exceptions.ConnectionError, redis_exceptions.TimeoutError), "Redis"),
    ((db.OperationalError, db.InterfaceError, psycopg.OperationalError, psycopg.InterfaceError),
     "the database"),
)


def dependency_down(exc: BaseException | None) -> str | None:
    """The name of the dependency whose outage raised exc, or None for any other error."""
    for types, name in _DEPENDENCIES:
        if isinstance(exc, types):
            return name
    return None


def outage_response(request, exc: BaseException | None) -> HttpResponse | None:
    """503 problem+json under /api/, else the static 'temporarily unavailable' page; None if exc
    is not an outage."""
    dependency = dependency_down(exc)
    if dependency is None:
        return None
    logger.warning("%s unavailable: answering 503", dependency, exc_info=exc,
                   extra={"path": request.path, "dependency": dependency})
    if request.path.startswith("/api/"):
        response = problems.problem_response(
            503, f"The service is temporarily unavailable ({dependency} cannot be reached). "
                 f"Retry in {RETRY_AFTER_SECONDS} s.", slug="service-unavailable")
    else:
        # No request: no context processors, so no session, user or database lookups.
        response = HttpResponse(loader.render_to_string("503.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    # Logged above, once; Django's request logger would add an error with the traceback.
    response._has_been_logged = True
    return response
