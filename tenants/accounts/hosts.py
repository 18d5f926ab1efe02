"""Absolute URLs of tenant hosts and the public site."""

from django.conf import settings


def _origin(host: str) -> str:
    port = settings.PORTAL_PUBLIC_PORT
    default = {"http": "80", "https": "443"}[settings.PORTAL_SCHEME]
    suffix = f":{port}" if port and port != default else ""
    return f"{settings.PORTAL_SCHEME}://{host}{suffix}"


def tenant_origin(tenant) -> str:
    return _origin(f"{tenant.slug}.{settings.PORTAL_BASE_DOMAIN}")


def tenant_url(tenant, path: str = "/") -> str:
    return tenant_origin(tenant) + path


def public_url(path: str = "/") -> str:
    return _origin(settings.PORTAL_BASE_DOMAIN) + path
