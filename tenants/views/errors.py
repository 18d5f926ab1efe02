"""Error pages (the URLconf's handler404/403/500): problem details under /api/."""

from __future__ import annotations

import sys

from django.shortcuts import render

from tenants.web.outages import outage_response


def page_not_found(request, exception=None):
    from tenants.web.middleware import not_found

    return not_found(request)


def permission_denied(request, exception=None):
    if request.path.startswith("/api/"):
        from tenants.web.problems import problem_response

        return problem_response(403, str(exception) or "Forbidden.")
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


def server_error(request):
    # Django calls this inside its `except` block: the exception is still current.
    outage = outage_response(request, sys.exc_info()[1])
    if outage is not None:
        return outage
    if request.path.startswith("/api/"):
        from tenants.web.problems import problem_response

        return problem_response(500, "Something went wrong on our side; it has been logged.")
    return render(request, "500.html", status=500)
