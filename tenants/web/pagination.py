"""Pages of a list: ?page= (from 1) and ?page_size= (default 50, larger values capped at 200).

DRF's paginator quietly falls back to the default for a page_size it cannot read (``null``, 0,
-3) and answers 404 for ``?page=0``. Here a value that is not a whole number of at least 1 is a
400 naming the parameter; a page after the last one is a 404 (docs/api.md, the OpenAPI schema).
"""

from __future__ import annotations

import re

from rest_framework.pagination import PageNumberPagination

from tenants.web.problems import Problem

_WHOLE_NUMBER = re.compile(r"^[0-9]+$")
_HUGE = 10**18  # past every last page and every page size cap; spares int() 4,000-digit strings


def positive_parameter(request, name: str) -> int | None:
    """The query parameter ``name`` as a whole number >= 1; None when absent; else a 400."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not _WHOLE_NUMBER.match(raw) or int(raw) < 1:
        raise Problem(400, f"{name} must be a whole number of at least 1.",
                      errors=[{"field": name, "message": "A whole number of at least 1 is required."}])
    return int(raw) if len(raw) < 19 else _HUGE


class PortalPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    invalid_page_message = "There is no page {page_number}: {message}"

    def get_page_size(self, request):
        size = positive_parameter(request, self.page_size_query_param)
        return self.page_size if size is None else min(size, self.max_page_size)

    def get_page_number(self, request, paginator):
        if request.query_params.get(self.page_query_param) in self.last_page_strings:
            return paginator.num_pages
        return positive_parameter(request, self.page_query_param) or 1
