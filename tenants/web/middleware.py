"""Request pipeline: health probes, host -> tenant routing, and the membership gate.

Order in settings.MIDDLEWARE: HealthCheckMiddleware first (answers before any routing), then
TenantRoutingMiddleware (unknown host -> plain 404), then Django's session/auth, then
TenantAccessMiddleware (authentication by token or bound session, membership check first).
"""

from __future__ import annotations

import logging
import uuid
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.exceptions import DisallowedHost
from django.db import connection
from django.http import HttpResponse, HttpResponseNotFound, JsonResponse
from django.template import loader
from django.urls import set_urlconf
from django.utils.deprecation import MiddlewareMixin

from tenants.accounts import access, hosts
from tenants.auditing import audit
from tenants.limits import gate, quotas
from tenants.web.health import readiness
from tenants.web.problems import CONTENT_TYPE, problem_response

logger = logging.getLogger(__name__)


def not_found(request) -> HttpResponse:
    """The one 404 for unknown hosts, non-members and invisible objects alike."""
    if request.path.startswith("/api/"):
        return problem_response(404, "No such resource.")
    # An unknown host has no start page of its own: send people to the public site's.
    start_url = "/" if getattr(request, "tenant", None) is not None else hosts.public_url("/")
    body = loader.render_to_string("404.html", {"request_path": request.path, "start_url": start_url})
    return HttpResponseNotFound(body)


class HealthCheckMiddleware:
    """/healthz and /readyz answer on any host, before tenant routing, and reveal nothing."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == "/healthz":
            return JsonResponse({"status": "ok"})
        if request.path == "/readyz":
            ok, checks = readiness()
            return JsonResponse({"status": "ok" if ok else "unavailable", "checks": checks},
                                status=200 if ok else 503)
        return self.get_response(request)


class TenantRoutingMiddleware(MiddlewareMixin):
    """Pick the schema and URL conf from the host. Unknown hosts get a plain 404, nothing else."""

    def process_request(self, request):
        connection.set_schema_to_public()
        # META, not request.headers: building the headers mapping costs more than the lookup, and
        # nothing else on the bearer-token API path needs it.
        request.request_id = request.META.get("HTTP_X_REQUEST_ID", "")[:64] or uuid.uuid4().hex
        try:
            hostname = request.get_host().split(":")[0].lower()
        except DisallowedHost:
            return not_found(request)
        base = settings.PORTAL_BASE_DOMAIN
        if hostname == base:
            tenant = access.tenant_for_host(hostname)
            if tenant is None:
                # The public tenant row is created by `setup_platform`; without it, say so.
                return HttpResponse("Platform not set up: run manage.py setup_platform", status=503)
        elif hostname.endswith("." + base):
            tenant = access.tenant_for_host(hostname)
            if tenant is None or tenant.is_public:
                return not_found(request)
        else:
            return not_found(request)
        tenant.domain_url = hostname
        request.tenant = tenant
        connection.set_tenant(tenant)
        if tenant.is_public:
            request.urlconf = settings.PUBLIC_SCHEMA_URLCONF
            set_urlconf(request.urlconf)

    def process_response(self, request, response):
        if (response.status_code == 404 and request.path.startswith("/api/")
                and not response.get("Content-Type", "").startswith(CONTENT_TYPE)):
            # A path no API route matches (/api/v1/datasets/null/): with DEBUG on, Django answers
            # its HTML debug page before handler404 is asked. The API answers problems only.
            response = not_found(request)
        request_id = getattr(request, "request_id", None)
        if request_id:
            response["X-Request-Id"] = request_id
        return response


def bearer_api_call(request) -> bool:
    """An API call with a bearer token on a tenant host.

    TenantAccessMiddleware authenticates it from the token alone: it never reads the session (a
    bad token is a 401, not a fall-back to the session cookie), and no page machinery (session,
    messages) is used on its way.
    """
    tenant = getattr(request, "tenant", None)
    return (tenant is not None and not tenant.is_public and request.path.startswith("/api/")
            and bool(request.META.get("HTTP_AUTHORIZATION")))


class PageSessionMiddleware(SessionMiddleware):
    """Django's SessionMiddleware, except for bearer-token API calls (see bearer_api_call).

    Why: the online prediction endpoint is a bearer-token API serving ~1,500 requests/s per two
    cores; loading a session store and parsing cookies it never reads costs a few % of that.
    A subclass, so Django's checks still see the session middleware installed.
    """

    def __call__(self, request):
        if bearer_api_call(request):
            return self.get_response(request)
        return super().__call__(request)


class PageAuthenticationMiddleware(AuthenticationMiddleware):
    """Django's AuthenticationMiddleware, except for bearer-token API calls, whose request.user
    TenantAccessMiddleware sets from the token (the lazy session user would never be read)."""

    def __call__(self, request):
        if bearer_api_call(request):
            return self.get_response(request)
        return super().__call__(request)


class PageMessageMiddleware(MessageMiddleware):
    """Django's MessageMiddleware, except for bearer-token API calls: flash messages are shown
    on pages only, and building the cookie + session storage (a signer per request) is the most
    expensive of the page middleware for a JSON call."""

    def __call__(self, request):
        if bearer_api_call(request):
            return self.get_response(request)
        return super().__call__(request)


class TenantAccessMiddleware:
    """Authenticate (bearer token on /api/, else the tenant-bound session) and check membership.

    Sets request.membership (None for anonymous), request.auth_method ("token"/"session") and
    request.api_token. A user who is authenticated but not a member of this tenant, or who holds a
    session or token of another tenant, gets 404 before any view runs.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.membership = None
        request.auth_method = None
        request.api_token = None
        tenant = getattr(request, "tenant", None)
        if tenant is None or tenant.is_public:
            self._public_host(request)
            return self.get_response(request)

        is_api = request.path.startswith("/api/")

        def gate_for(user_id: int, tenant_id: int, token_id: int | None = None) -> gate.GateResult:
            # The request's one Redis round trip: auth epochs, rate counting, usage counting,
            # the bearer token's last use.
            request.gate = gate.check(user_id, tenant_id, count_api=is_api, token_id=token_id)
            return request.gate

        if bearer_api_call(request):
            refused = self._authenticate_token(request, request.META["HTTP_AUTHORIZATION"], tenant, gate_for)
            if refused is not None:
                return refused
        elif request.user.is_authenticated:
            if request.session.get(access.SESSION_TENANT_KEY) != tenant.schema_name:
                return not_found(request)
            request.auth_method = "session"

        if request.user.is_authenticated:
            result = getattr(request, "gate", None) or gate_for(request.user.pk, tenant.id)
            membership = access.membership_for(user_id=request.user.pk, tenant=tenant,
                                               epochs=result.epochs)
            if membership is None:
                audit.bind_request(request)
                if request.auth_method == "session":
                    # Removed from this tenant (or deactivated): end the session here too.
                    request.session.flush()
                return not_found(request)
            request.membership = membership
            # The routing cache may hold this tenant from before a plan or override change.
            quotas.refresh_limits(tenant, epoch=result.tenant_epoch)
            if is_api:
                refused = self._over_rate_limit(request, tenant, membership, result)
                if refused is not None:
                    return refused
        audit.bind_request(request)
        return self.get_response(request)

    @staticmethod
    def _over_rate_limit(request, tenant, membership, result: gate.GateResult):
        limits = quotas.limits_cached(tenant, epoch=result.tenant_epoch)
        limit, count, whose = limits["api_requests_per_minute"], result.tenant_requests, "this workspace"
        own = membership.limits.get("api_requests_per_minute")
        if own is not None and result.member_requests > int(own) and (count <= limit):
            limit, count, whose = int(own), result.member_requests, "you"
        if count <= limit:
            return None
        request.audit_skip = True  # counted in Redis; one log entry per refused call would be a DoS lever
        ask = f" Ask {quotas.whom_to_ask(tenant, user_id=membership.user_id)} to raise your limit." \
            if whose == "you" else ""
        response = problem_response(
            429, f"Rate limit reached: {limit:,} API requests per minute for {whose}. "
                 f"Retry in {result.retry_after} s.{ask}", slug="rate-limited", limit=limit)
        response["Retry-After"] = str(result.retry_after)
        return response

    @staticmethod
    def _public_host(request) -> None:
        # A session opened on a tenant host is not accepted on the public site.
        bound = request.session.get(access.SESSION_TENANT_KEY) if hasattr(request, "session") else None
        if request.user.is_authenticated and bound not in (None, "public"):
            request.user = AnonymousUser()

    @staticmethod
    def _authenticate_token(request, header: str, tenant, gate_for):
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return problem_response(401, "Use 'Authorization: Bearer <token>' or log in.")
        try:
            info, _ = access.token_lookup(secret.strip(), gate_for)
        except access.TokenInvalid as exc:
            response = problem_response(401, f"Invalid token: {exc}.")
            response["WWW-Authenticate"] = 'Bearer realm="api"'
            return response
        if info.tenant_id != tenant.id:
            return not_found(request)
        user = get_user_model()(id=info.user_id, email=info.user_email, is_active=True)
        request.user = user
        request._cached_user = user
        request.auth_method = "token"
        request.api_token = info
        # DRF must not enforce CSRF for a bearer-token request.
        request._dont_enforce_csrf_checks = True
        return None


# Views that are polled (job progress) or counted elsewhere (online predictions) opt out of the
# per-request access entry with this decorator; their significant actions are still recorded.
def audit_exempt(view):
    view.audit_exempt = True
    return view


class AuditAccessMiddleware:
    """The access log: one entry per authenticated request to tenant data that no service recorded.

    Sits before TenantAccessMiddleware, so it also sees the 404 given to non-members.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with audit.request_scope():
            response = self.get_response(request)
            tenant = getattr(request, "tenant", None)
            user = getattr(request, "user", None)
            if (tenant is not None and not tenant.is_public and user is not None
                    and user.is_authenticated and not audit.recorded_in_this_request()
                    and not getattr(request, "audit_skip", False) and not self._exempt(request)):
                self._record(request, response, tenant)
        return response

    @staticmethod
    def _exempt(request) -> bool:
        match = getattr(request, "resolver_match", None)
        func = getattr(match, "func", None)
        view_class = getattr(func, "view_class", None)
        return bool(getattr(func, "audit_exempt", False) or getattr(view_class, "audit_exempt", False))

    @staticmethod
    def _record(request, response, tenant) -> None:
        status = response.status_code
        safe = request.method in ("GET", "HEAD", "OPTIONS")
        if status in (401, 403, 404, 405):
            action, outcome = "access.denied", "denied"
        elif status >= 400:
            action, outcome = ("access.read" if safe else "access.write"), "failed"
        else:
            action, outcome = ("access.read" if safe else "access.write"), "allowed"
        object_type, object_id = "", ""
        match = getattr(request, "resolver_match", None)
        if match is not None:
            for key, value in match.kwargs.items():
                if key.endswith("_id"):
                    object_type, object_id = key[: -len("_id")], value
                    break
            if not object_type and match.url_name:
                object_type = match.url_name.removeprefix("api-")
        # Buffered (one INSERT committed before the response leaves, no chain lock): the tenant's
        # requests do not queue on its chain head (tenants/auditing/audit.py).
        audit.record_access(action, tenant=tenant, object_type=object_type, object_id=object_id,
                            outcome=outcome, details={"method": request.method,
                                                      "path": request.path[:300], "status": status})


class ContentSecurityPolicyMiddleware:
    """A strict Content-Security-Policy on every response: our own scripts, styles and images only.

    No 'unsafe-inline' anywhere, so the templates carry no inline script, handler or style
    attribute (behaviour is in static/js/portal.js, styles in static/css/portal.css). Forms may
    post to the tenant hosts too: the workspace finder on the public site redirects to one.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = self._policy()

    @staticmethod
    def _policy() -> str:
        port = settings.PORTAL_PUBLIC_PORT
        default = {"http": "80", "https": "443"}.get(settings.PORTAL_SCHEME, "")
        suffix = f":{port}" if port and port != default else ""
        tenants = f"{settings.PORTAL_SCHEME}://*.{settings.PORTAL_BASE_DOMAIN}{suffix}"
        directives = [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            f"form-action 'self' {tenants}",
            "frame-ancestors 'none'",
        ]
        if settings.PORTAL_SCHEME == "https":
            directives.append("upgrade-insecure-requests")
        return "; ".join(directives)

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", self.policy)
        # Also on answers given before XFrameOptionsMiddleware runs (unknown hosts, health probes).
        response.setdefault("X-Frame-Options", settings.X_FRAME_OPTIONS)
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
        return response


class TwoFactorMiddleware:
    """Keeps an admin of a tenant that requires two factors on the enrolment (or code) page.

    Only for sessions: API tokens are credentials of their own, created only by a verified
    session. Runs after TenantAccessMiddleware, which has set request.membership.
    """

    ALLOWED = ("/account/two-factor/", "/login/two-factor/", "/logout/", "/static/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        membership = getattr(request, "membership", None)
        if membership is None or getattr(request, "auth_method", None) != "session":
            return self.get_response(request)  # before the import: token calls are the hot path
        from tenants.accounts import two_factor

        tenant = getattr(request, "tenant", None)
        if (not two_factor.required_for(tenant=tenant, role=membership.role)
                or request.path.startswith(self.ALLOWED)
                or two_factor.session_verified(request)):
            return self.get_response(request)
        enrolled = two_factor.confirmed_device(request.user) is not None
        target = "/login/two-factor/" if enrolled else "/account/two-factor/"
        if request.path.startswith("/api/"):
            return problem_response(403, f"{tenant.name} requires two-factor sign-in for admins: "
                                         f"complete it at {target} first.")
        from django.shortcuts import redirect

        return redirect(f"{target}?next={quote(request.get_full_path())}")
