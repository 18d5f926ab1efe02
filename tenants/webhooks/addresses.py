"""Where a webhook may be sent (SSRF): http(s) to public addresses only, unless the operator allows more.

A URL is checked when an endpoint is registered and again before every attempt (DNS may have
changed since). The delivery then connects to the very address that was checked, never resolving
the name a second time, so a name that resolves to a public address for the check and a private
one for the connection (DNS rebinding) cannot reach the platform's own network.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from tenants.errors import ServiceError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(ServiceError):
    status = 400
    code = "webhook-url-refused"

    def __init__(self, message: str):
        super().__init__(message, field="url")


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # the name in the URL (Host header, TLS server name)
    port: int
    path: str  # path and query
    address: str  # the checked IP address to connect to


def _allowed(address: Address) -> bool:
    if address.is_global and not address.is_multicast:
        return True
    if settings.PORTAL_WEBHOOK_ALLOW_PRIVATE:
        return True
    return any(address in ipaddress.ip_network(net, strict=False)
               for net in settings.PORTAL_WEBHOOK_ALLOWED_NETWORKS)


def _parse(url: str) -> tuple[str, str, int, str]:
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - read now: a bad port raises here
    except ValueError:
        raise AddressRefused("The webhook URL is not a valid URL (check the host and port).")
    if parts.scheme not in ("http", "https"):
        raise AddressRefused("A webhook URL must start with http:// or https://.")
    if not parts.hostname:
        raise AddressRefused("The webhook URL has no host.")
    if parts.username or parts.password:
        raise AddressRefused("Put no user name or password in a webhook URL; verify the signature instead.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, parts.hostname, port, path


def _resolve(host: str, port: int) -> list[Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise AddressRefused(f"The host {host} of the webhook URL does not resolve.")
    # An IPv6 zone (fe80::1%eth0) is link-local anyway; drop it so that ip_address can read it.
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def check_url(url: str) -> Target:
    """The URL's target if every address its host resolves to is allowed, else AddressRefused.

    Every address must pass, not just the first: the connection is made to the first one, but a
    name listing a public and a private address is refused outright rather than half-trusted.
    """
    scheme, host, port, path = _parse(url)
    addresses = _resolve(host, port)
    if not addresses:
        raise AddressRefused(f"The host {host} of the webhook URL does not resolve.")
    for address in addresses:
        if not _allowed(address):
            raise AddressRefused(
                f"The webhook URL points to {address}, a loopback, private, link-local or reserved "
                f"address; webhooks go to public addresses only (an operator may allow others with "
                f"PORTAL_WEBHOOK_ALLOWED_NETWORKS).")
    return Target(scheme=scheme, host=host, port=port, path=path, address=str(addresses[0]))
