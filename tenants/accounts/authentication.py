"""DRF authentication that trusts what TenantAccessMiddleware already decided.

The middleware authenticates bearer tokens and tenant-bound sessions for pages and API alike, so
there is one place where credentials are checked. Session requests still get DRF's CSRF check.
"""

from rest_framework import authentication


class _CsrfCheck(authentication.SessionAuthentication):
    pass


class PortalAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        django_request = request._request
        method = getattr(django_request, "auth_method", None)
        if method is None or not django_request.user.is_authenticated:
            return None
        if method == "session":
            _CsrfCheck().enforce_csrf(request)
        return django_request.user, getattr(django_request, "api_token", None)

    def authenticate_header(self, request):
        # Makes DRF answer 401 (not 403) to anonymous requests.
        return 'Bearer realm="api"'
