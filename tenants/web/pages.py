"""Helpers shared by the HTML views of both apps."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import redirect, render, resolve_url

from tenants.accounts.access import ALL_ROLES
from tenants.errors import ServiceError


def member_page(roles: frozenset[str] = ALL_ROLES):
    """Pages need a logged-in member (non-members never get here: the middleware 404s them)."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            membership = getattr(request, "membership", None)
            if membership is None:
                return redirect_to_login(request.get_full_path())
            if membership.role not in roles:
                return render(request, "403.html", {"reason": f"Your role ({membership.role}) "
                                                              "does not give access to this page."},
                              status=403)
            return view(request, *args, **kwargs)

        wrapped.allowed_roles = roles
        return wrapped

    return decorator


# What a page catches from a service: its refusals, and Django's field validation (full_clean).
PAGE_ERRORS = (ServiceError, ValidationError)


def page_error(exc: ServiceError | ValidationError) -> tuple[str, int]:
    """The message a page shows for a service's refusal, and the status to answer with."""
    if isinstance(exc, ServiceError):
        return exc.message, exc.status
    return " ".join(exc.messages), 400


def form_errors_from(form, exc: ServiceError | ValidationError) -> None:
    """Show a service's refusal next to the right form fields (or above the form)."""
    if isinstance(exc, ServiceError):
        for error in exc.errors:
            form.add_error(error["field"] if error["field"] in form.fields else None, error["message"])
    elif hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            target = field if field in form.fields else None
            for error in errors:
                form.add_error(target, error.message % (error.params or {}) if error.params else error.message)
    else:
        for message in exc.messages:
            form.add_error(None, message)


def redirect_after_post(request, to, *args, **kwargs):
    """The redirect that ends a successful form post (post/redirect/get).

    The upload script of static/js/portal.js sends its form with XMLHttpRequest, which would
    follow a 302 itself: the page it fetched in the background would show (and so consume) the
    flashed message, and the page the script then opens would have none. It gets
    {"location": url} instead and opens that URL itself.
    """
    url = resolve_url(to, *args, **kwargs)
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return JsonResponse({"location": url})
    return redirect(url)
